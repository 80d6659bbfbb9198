"""Which alert conditions are ongoing, kept between runs in a small JSON file.

``state.json``::

    {"version": 1,
     "active": {"<condition key>": {"alert_id": "...", "kind": "out_of_control",
                                    "severity": "critical", "since": "<UTC ISO-8601>",
                                    "first_step": 41}}}

``first_step`` (the capture step since which the condition holds, ``null`` when unknown) is
absent from files written before it existed; readers use ``.get``.

It is rewritten atomically (temporary file, fsync, rename), so a crash leaves the old
or the new state, never a torn one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trustops.alerts._files import atomic_write_text
from trustops.alerts.alert import Alert, utc_isoformat
from trustops.errors import DataError

STATE_FILE = "state.json"
FORMAT_VERSION = 1


class ConditionState:
    """The ongoing conditions recorded in ``directory/state.json``."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / STATE_FILE

    def load(self) -> dict[str, dict[str, Any]]:
        """Condition key → what raised it; empty when there is no state file yet."""
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            active = data["active"]
            if not isinstance(active, dict):
                raise TypeError("'active' is not an object")
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DataError(
                f"The alert state file {self.path} is unreadable ({type(error).__name__}: {error}); nothing was "
                f"changed. Run `trustops monitor --repair` or move it aside (mv {self.path} {self.path}.damaged) to "
                "start afresh: every condition still active will alert once more."
            ) from None
        return active

    def save(self, active: dict[str, dict[str, Any]]) -> None:
        text = json.dumps({"version": FORMAT_VERSION, "active": active}, indent=1, sort_keys=True)
        atomic_write_text(self.path, text)

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
