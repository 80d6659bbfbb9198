"""``trustops monitor --repair``: move damaged monitor state aside and start it afresh; nothing is deleted.

Each damaged object goes to ``<name>.damaged-<UTC time>`` next to where it was, in the state's
folder or under its S3 prefix (see :mod:`trustops.monitoring.state_store`).  What starts afresh:

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
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from trustops.monitoring.state_store import StateStore, open_state
from trustops.monitoring.watermark import WATERMARK_KEY, DamagedStateFile, Watermark, damaged, parse_state

LOGS = ("alerts/outbox.jsonl", "alerts/delivered.jsonl")  # append-only JSON lines


def check_state(state: Path | str | StateStore) -> None:
    """Raise :class:`DamagedStateFile` for the first damaged state object under ``state``, naming it and the repair.

    Cheap (small objects, no imports beyond the state store): collecting calls it, so a damaged
    object stops a pass before anything is checked or an MLflow run starts.  A torn last line of
    an alert log is a crash's doing and is tolerated (the alert manager sets it aside).
    """
    store = open_state(state)
    for key, check, _ in _state_objects(store):
        if (stored := store.read(key)) is not None:
            check(stored.data, store.where(key))
    for key in LOGS:
        stored = store.read(key)
        if stored is not None and (number := _first_damaged_line(stored.data)):
            name = key.rpartition("/")[2]
            raise DamagedStateFile(
                f"The alert file {store.where(key)} is damaged at line {number} (not a JSON object); nothing was changed. "
                f"Run `trustops monitor --repair` (it keeps the file as {name}.damaged-<time> and its readable lines in "
                "place), or remove that line yourself."
            )


def repair_state(state: Path | str | StateStore) -> list[str]:
    """Move every damaged state object under ``state`` aside; one line per object repaired (none: nothing was damaged)."""
    store = open_state(state)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    repaired = []
    for key, check, consequence in _state_objects(store):
        if (stored := store.read(key)) is None:
            continue
        try:
            check(stored.data, store.where(key))
        except DamagedStateFile:
            aside = f"{key}.damaged-{stamp}"
            store.copy(key, aside)  # kept whole under the new name before the old one goes
            store.delete(key, expect=stored.version)
            repaired.append(f"{store.where(key)} was damaged: moved to {store.where(aside)}; {consequence}.")
    for key in LOGS:
        stored = store.read(key)
        if stored is not None and _first_damaged_line(stored.data):
            repaired.append(_keep_readable_lines(store, key, stored.data, stored.version, stamp))
    return repaired


Check = Callable[[bytes, str], object]


def _state_objects(store: StateStore) -> Iterator[tuple[str, Check, str]]:
    yield WATERMARK_KEY, _check_watermark, "the capture store is checked again from its start"
    for key in store.list("charts/"):
        if key.endswith(".json") and "/" not in key.removeprefix("charts/"):
            yield key, _check_chart, "this chart starts afresh"
    yield "alerts/state.json", _check_conditions, "every condition still active alerts once more"
    yield "alerts/pass.json", parse_state, "the pass is judged from the saved conditions"


def _check_watermark(data: bytes, where: str) -> None:
    try:
        Watermark(**parse_state(data, where))
    except TypeError as error:
        raise damaged(where, str(error)) from None


def _check_chart(data: bytes, where: str) -> None:
    if "last_step" not in parse_state(data, where):
        raise DamagedStateFile(f"The chart state {where} is damaged (no last_step); nothing was changed. Run "
                               "`trustops monitor --repair`.")


def _check_conditions(data: bytes, where: str) -> None:
    if not isinstance(parse_state(data, where).get("active"), dict):
        raise DamagedStateFile(f"The alert state file {where} is damaged (no 'active' object); nothing was changed. Run "
                               "`trustops monitor --repair`: every condition still active alerts once more.")


def _parses(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line.decode("utf-8")), dict)
    except (UnicodeDecodeError, ValueError):
        return False


def _first_damaged_line(data: bytes) -> int | None:
    """The number of the first unreadable line that is not a torn last line (no newline), or ``None``."""
    lines = data.split(b"\n")
    for number, line in enumerate(lines[:-1], start=1):  # the part after the last newline may be torn
        if line.strip() and not _parses(line):
            return number
    return None


def _keep_readable_lines(store: StateStore, key: str, data: bytes, version: str, stamp: str) -> str:
    lines = [line for line in data.split(b"\n") if line.strip()]
    kept = [line for line in lines if _parses(line)]
    aside = f"{key}.damaged-{stamp}"
    store.copy(key, aside)  # the whole file stays, under the new name, before the readable lines replace it
    store.write(key, b"".join(line + b"\n" for line in kept), expect=version)
    return (f"{store.where(key)} had {len(lines) - len(kept)} damaged line(s): the whole file is kept as "
            f"{store.where(aside)}; its {len(kept)} readable line(s) stay.")
