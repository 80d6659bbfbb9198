"""``trustops monitor --repair``: move damaged monitor state aside and start it afresh; nothing is deleted.

Each damaged file goes to ``<name>.damaged-<UTC time>`` next to where it was.  What starts afresh:

* ``watermark.json``: the capture store is checked again from its start (charts skip the
  batches they already hold; conditions that cleared may alert again);
* ``charts/<monitor>.json``: that chart starts a new picture;
* ``alerts/state.json``: every condition still active alerts once more;
* ``alerts/pass.json``: the pass is judged from the saved conditions;
* ``alerts/outbox.jsonl``, ``alerts/delivered.jsonl``: the readable lines are kept (pending
  alerts stay pending), the damaged ones stay only in the moved-aside copy.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from trustops.monitoring.watermark import DamagedStateFile, Watermark, read_state_file

LOGS = ("outbox.jsonl", "delivered.jsonl")  # in the alerts folder: append-only JSON lines


def check_state(state: Path) -> None:
    """Raise :class:`DamagedStateFile` for the first damaged state file under ``state``, naming it and the repair.

    Cheap (small files, no imports beyond this module): collecting calls it, so a damaged file
    stops a pass before anything is checked or an MLflow run starts.  A torn last line of an
    alert log is a crash's doing and is tolerated (the alert manager sets it aside).
    """
    for path, check, _ in _state_files(state):
        if path.is_file():
            check(path)
    for name in LOGS:
        path = state / "alerts" / name
        if path.is_file() and (number := _first_damaged_line(path)):
            raise DamagedStateFile(
                f"The alert file {path} is damaged at line {number} (not a JSON object); nothing was changed. Run "
                f"`trustops monitor --repair` (it keeps the file as {name}.damaged-<time> and its readable lines in "
                "place), or remove that line yourself."
            )


def repair_state(state: Path) -> list[str]:
    """Move every damaged state file under ``state`` aside; one line per file repaired (none: nothing was damaged)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    repaired = []
    for path, check, consequence in _state_files(state):
        if not path.is_file():
            continue
        try:
            check(path)
        except DamagedStateFile:
            aside = path.with_name(f"{path.name}.damaged-{stamp}")
            os.replace(path, aside)
            repaired.append(f"{path} was damaged: moved to {aside}; {consequence}.")
    for name in LOGS:
        path = state / "alerts" / name
        if path.is_file() and _first_damaged_line(path):
            repaired.append(_keep_readable_lines(path, stamp))
    return repaired


def _state_files(state: Path):
    yield state / "watermark.json", _check_watermark, "the capture store is checked again from its start"
    for path in sorted((state / "charts").glob("*.json")):
        yield path, _check_chart, "this chart starts afresh"
    yield state / "alerts" / "state.json", _check_conditions, "every condition still active alerts once more"
    yield state / "alerts" / "pass.json", read_state_file, "the pass is judged from the saved conditions"


def _check_watermark(path: Path) -> None:
    try:
        Watermark(**read_state_file(path))
    except TypeError as error:
        raise DamagedStateFile(f"The monitor state file {path} is damaged ({error}); nothing was changed. Run "
                               "`trustops monitor --repair`.") from None


def _check_chart(path: Path) -> None:
    if "last_step" not in read_state_file(path):
        raise DamagedStateFile(f"The chart state {path} is damaged (no last_step); nothing was changed. Run "
                               "`trustops monitor --repair`.")


def _check_conditions(path: Path) -> None:
    if not isinstance(read_state_file(path).get("active"), dict):
        raise DamagedStateFile(f"The alert state file {path} is damaged (no 'active' object); nothing was changed. Run "
                               "`trustops monitor --repair`: every condition still active alerts once more.")


def _parses(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line.decode("utf-8")), dict)
    except (UnicodeDecodeError, ValueError):
        return False


def _first_damaged_line(path: Path) -> int | None:
    """The number of the first unreadable line that is not a torn last line (no newline), or ``None``."""
    lines = path.read_bytes().split(b"\n")
    for number, line in enumerate(lines[:-1], start=1):  # the part after the last newline may be torn
        if line.strip() and not _parses(line):
            return number
    return None


def _keep_readable_lines(path: Path, stamp: str) -> str:
    from trustops.alerts._files import atomic_write_text

    lines = [line for line in path.read_bytes().split(b"\n") if line.strip()]
    kept = [line.decode("utf-8") for line in lines if _parses(line)]
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    os.link(path, aside)  # the whole file stays, under the new name, before the readable lines replace it
    atomic_write_text(path, "".join(f"{line}\n" for line in kept))
    return (f"{path} had {len(lines) - len(kept)} damaged line(s): the whole file is kept as {aside}; its "
            f"{len(kept)} readable line(s) stay.")
