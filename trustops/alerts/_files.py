"""The JSON-lines format of the outbox and the delivery log: writing lines, and reading them back strictly.

Where the lines are kept, and how a write stays whole through a crash (fsync'd appends with a
torn last line set aside in a local folder, whole-object compare-and-set on S3), is the monitor
state store's part (:mod:`trustops.monitoring.state_store`).  Reading skips a torn last line
with a warning; a damaged line anywhere else is not a crash's doing: reading stops with
:class:`DamagedAlertFile`, naming the file and the repair, and nothing is overwritten.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from trustops.alerts.errors import DamagedAlertFile

logger = logging.getLogger(__name__)


def json_lines(records: Iterable[dict[str, Any]]) -> str:
    """Strict JSON, one object per line, each line ending in a newline."""
    return "".join(json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n" for record in records)


def parse_json_lines(data: bytes, where: str) -> list[dict[str, Any]]:
    """The JSON objects in ``data``, the JSON-lines object ``where`` (a file path or an ``s3://`` URI), in order.

    A torn last line (no newline: a write cut short by a crash) is skipped with a warning;
    any other unreadable line raises :class:`DamagedAlertFile` before anything is returned.
    """
    lines = data.split(b"\n")
    records = []
    name = where.rpartition("/")[2]
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            record = None
        if isinstance(record, dict):
            records.append(record)
        elif number == len(lines):  # after the last newline: a torn final write
            logger.warning("Skipping the torn last line %d of %s (a write cut short by a crash); the next "
                           "write keeps it in %s.damaged", number, where, name)
        else:
            raise DamagedAlertFile(
                f"The alert file {where} is damaged at line {number} (not a JSON object); nothing was changed. "
                f"Run `trustops monitor --repair` (it moves the file aside to {name}.damaged-<time> and keeps "
                "its readable lines), or remove that line yourself."
            )
    return records
