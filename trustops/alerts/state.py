"""Which alert conditions are ongoing, kept between runs in a small JSON file.

``state.json``::

    {"version": 1,
     "active": {"<condition key>": {"alert_id": "...", "kind": "out_of_control",
                                    "severity": "critical", "since": "<UTC ISO-8601>",
                                    "first_step": 41}}}

``first_step`` (the capture step since which the condition holds, ``null`` when unknown) is
absent from files written before it existed; readers use ``.get``.

It is rewritten atomically (temporary file, fsync, rename; or one S3 put), so a crash leaves
the old or the new state, never a torn one.  Each save is a compare-and-set against the
version the last :meth:`ConditionState.load` read, so a concurrent writer's change is never
silently overwritten (:class:`~trustops.monitoring.state_store.StateConflict` instead).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trustops.alerts.alert import Alert, utc_isoformat
from trustops.errors import DataError
from trustops.monitoring.state_store import ANY, StateStore, open_state

STATE_FILE = "state.json"
FORMAT_VERSION = 1


class ConditionState:
    """The ongoing conditions recorded in ``directory/state.json`` (a folder, an ``s3://`` location or a state store)."""

    def __init__(self, directory: str | Path | StateStore) -> None:
        self.store = open_state(directory)
        self._version: str | None | object = ANY  # nothing loaded yet: a save writes unconditionally

    @property
    def path(self) -> Path | str:
        folder = self.store.local_folder()
        return folder / STATE_FILE if folder is not None else self.store.where(STATE_FILE)

    def load(self) -> dict[str, dict[str, Any]]:
        """Condition key → what raised it; empty when there is no state file yet."""
        stored = self.store.read(STATE_FILE)
        self._version = None if stored is None else stored.version
        if stored is None:
            return {}
        try:
            data = json.loads(stored.data.decode("utf-8"))
            active = data["active"]
            if not isinstance(active, dict):
                raise TypeError("'active' is not an object")
        except (ValueError, KeyError, TypeError) as error:
            mv = "aws s3 mv" if str(self.path).startswith("s3://") else "mv"
            raise DataError(
                f"The alert state file {self.path} is unreadable ({type(error).__name__}: {error}); nothing was "
                f"changed. Run `trustops monitor --repair` or move it aside ({mv} {self.path} {self.path}.damaged) to "
                "start afresh: every condition still active will alert once more."
            ) from None
        return active

    def save(self, active: dict[str, dict[str, Any]]) -> None:
        """Replace the state, if it is still what the last :meth:`load` read (else ``StateConflict``, nothing written)."""
        text = json.dumps({"version": FORMAT_VERSION, "active": active}, indent=1, sort_keys=True)
        self._version = self.store.write(STATE_FILE, text.encode("utf-8"), expect=self._version)

    @staticmethod
    def entry(alert: Alert) -> dict[str, Any]:
        """What is remembered about the alert that opened a condition."""
        return {
            "alert_id": alert.id,
            "kind": alert.kind.value,
            "severity": alert.severity.value,
            "since": utc_isoformat(alert.time),
            "first_step": alert.first_step if alert.first_step is not None else alert.step,
        }
