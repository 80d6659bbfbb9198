"""Durable file primitives: fsync'd appends, atomic replacement, an advisory lock.

A scheduled run can be killed at any instruction; these keep every file either in its
old or its new state (replacement) or with whole lines plus at most one torn last line
(append).  The reader skips a torn last line with a warning; the next append moves it to
``<file>.damaged`` before writing, so it is never silently lost.  A damaged line anywhere else
is not a crash's doing: reading stops with :class:`DamagedAlertFile`, naming the file and the
repair, and nothing is overwritten.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trustops.alerts.errors import DamagedAlertFile

try:
    import fcntl
except ImportError:  # not POSIX: runs are then not protected from each other
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)


def _fsync_dir(folder: Path) -> None:
    # A rename or a new file is durable only once its directory entry is.
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a reader sees the old or the new file, never a mix."""
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as temp:
            temp.write(text)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def json_lines(records: Iterable[dict[str, Any]]) -> str:
    """Strict JSON, one object per line, each line ending in a newline."""
    return "".join(json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n" for record in records)


def append_json_lines(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Append one JSON line per record and fsync before returning."""
    payload = json_lines(records)
    created = not path.exists()
    with open(path, "ab+") as file:
        file.seek(0, os.SEEK_END)
        if file.tell() > 0:
            _set_aside_torn_tail(path, file)
            file.seek(0, os.SEEK_END)
        file.write(payload.encode("utf-8"))
        file.flush()
        os.fsync(file.fileno())
    if created:
        _fsync_dir(path.parent)


def _set_aside_torn_tail(path: Path, file: Any) -> None:
    """Move an unterminated last line (a write torn by a crash) to ``<path>.damaged``, then cut it off."""
    file.seek(-1, os.SEEK_END)
    if file.read(1) == b"\n":
        return
    file.seek(0)
    data = file.read()  # only after a crash: reading the whole file once is fine
    cut = data.rfind(b"\n") + 1
    damaged = path.with_name(path.name + ".damaged")
    with open(damaged, "ab") as kept:
        kept.write(data[cut:] + b"\n")
        kept.flush()
        os.fsync(kept.fileno())
    file.truncate(cut)
    logger.warning("The last line of %s was torn by a crash; it is kept in %s and was not read", path, damaged)


def read_json_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects in ``path``, in order.

    A torn last line (no newline: a write cut short by a crash) is skipped with a warning;
    any other unreadable line raises :class:`DamagedAlertFile` before anything is yielded.
    """
    if not path.exists():
        return
    data = path.read_bytes()
    lines = data.split(b"\n")
    records = []
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
                           "write keeps it in %s.damaged", number, path, path.name)
        else:
            raise DamagedAlertFile(
                f"The alert file {path} is damaged at line {number} (not a JSON object); nothing was changed. "
                f"Run `trustops monitor --repair` (it moves the file aside to {path.name}.damaged-<time> and keeps "
                "its readable lines), or remove that line yourself."
            )
    yield from records


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if needed) for the block."""
    with open(path, "a") as handle:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
