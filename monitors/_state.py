"""The one state format of every monitor, and the reading of the layouts written before it.

:meth:`~monitors.base.Monitor.state_dict` returns an envelope::

    {"format": "trustops.monitor", "version": 3, "monitor": <registered name>,
     "config": <the constructor options>, "state": <what the monitor learned and where it stands>}

Versions 1 and 2 were per-monitor layouts without ``format``: the options under ``config`` and
the rest beside them (a chart also wrote ``chart``, its name).  Each monitor class lists the
layouts it wrote in ``_legacy_state_keys`` and :func:`unpack` turns such a dictionary into the
envelope's ``(config, state)``, after the class's ``_migrate_legacy_config`` has updated the options.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from monitors.errors import MonitorStateError

if TYPE_CHECKING:
    from monitors.base import Monitor

FORMAT = "trustops.monitor"
STATE_VERSION = 3
_ENVELOPE = ("format", "version", "monitor", "config", "state")


def pack(monitor: Monitor, state: Mapping[str, Any]) -> dict[str, Any]:
    """The envelope of ``monitor``'s options and ``state``."""
    return {"format": FORMAT, "version": STATE_VERSION, "monitor": monitor.name, "config": monitor.config, "state": dict(state)}


def unpack(cls: type[Monitor], saved: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(config, state)`` of a saved state of ``cls``: the envelope, or an older layout migrated.

    Raises
    ------
    MonitorStateError
        If ``saved`` is another monitor's state, of an unknown version, or lacks what its version holds;
        the message names what was given and what ``cls`` loads.
    """
    if not isinstance(saved, Mapping):
        _refuse(cls, f"a {type(saved).__name__}")
    if "format" in saved:
        given = {key: saved.get(key) for key in ("format", "version", "monitor")}
        if given != {"format": FORMAT, "version": STATE_VERSION, "monitor": cls.name} or not set(_ENVELOPE) <= set(saved):
            _refuse(cls, f"format {given['format']!r}, version {given['version']!r}, monitor {given['monitor']!r}, keys {sorted(saved)}")
        config, state = dict(saved["config"]), dict(saved["state"])
    else:
        version = saved.get("version")
        keys = cls._legacy_state_keys.get(version) if isinstance(version, int) else None
        owner = saved.get("chart", cls.name)  # only the charts' layout named its monitor
        if keys is None or not keys <= set(saved) or owner != cls.name:
            named = f"monitor {owner!r}, " if "chart" in saved else ""
            _refuse(cls, f"{named}version {version!r}, keys {sorted(saved)}")
        config = cls._migrate_legacy_config(version, dict(saved["config"]))
        state = {key: value for key, value in saved.items() if key not in {"version", "chart", "config"}}
    expected = set(cls._option_names())
    if set(config) != expected:
        _refuse(cls, f"options {sorted(config)} (this monitor's options are {sorted(expected)})")
    return config, state


def _refuse(cls: type[Monitor], given: str) -> None:
    legacy = ", ".join(str(version) for version in sorted(cls._legacy_state_keys)) or "none"
    raise MonitorStateError(
        f"{cls.__name__} cannot load this state: got {given}. {cls.__name__} loads {cls.name!r} states of format "
        f"{FORMAT!r} version {STATE_VERSION}, or its older layouts (versions {legacy})."
    )


class FittedDictState:
    """The state of monitors whose fitted summary is one plain dictionary, ``_fitted`` (``None`` before ``fit``)."""

    _fitted: dict[str, Any] | None
    _legacy_state_keys = {1: frozenset({"config", "fitted"})}

    def _inner_state(self) -> dict[str, Any]:
        return {"fitted": None if self._fitted is None else dict(self._fitted)}

    def _load_inner_state(self, state: Mapping[str, Any]) -> None:
        self._fitted = None if state["fitted"] is None else dict(state["fitted"])
