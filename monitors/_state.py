"""State round trips for monitors whose state is their options plus a small fitted summary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from monitors.errors import MonitorInputError

STATE_VERSION = 1


class ConfigAndFittedState:
    """``state_dict`` / ``load_state_dict`` for monitors keeping ``_config`` and a ``_fitted`` dict.

    The subclass provides ``_configure(**config)``, which validates and stores its options.
    """

    _config: dict[str, Any]
    _fitted: dict[str, Any] | None

    def state_dict(self) -> dict[str, Any]:
        """Options and the fitted summary, as JSON-able Python."""
        fitted = None if self._fitted is None else dict(self._fitted)
        return {"version": STATE_VERSION, "config": dict(self._config), "fitted": fitted}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("version") != STATE_VERSION or not {"config", "fitted"} <= set(state):
            raise MonitorInputError(f"Not a {type(self).__name__} state (version {STATE_VERSION}). Got keys: {sorted(state)}")
        self._configure(**state["config"])
        self._fitted = None if state["fitted"] is None else dict(state["fitted"])
