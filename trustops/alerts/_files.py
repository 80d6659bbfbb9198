"""Durable file primitives: fsync'd appends, atomic replacement, an advisory lock.

A scheduled run can be killed at any instruction; these keep every file either in its
old or its new state (replacement) or with whole lines plus at most one torn last line
(append), which the reader skips.
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
            file.seek(-1, os.SEEK_END)
            if file.read(1) != b"\n":  # a torn line from a crash: keep it on a line of its own
                payload = "\n" + payload
        file.write(payload.encode("utf-8"))
        file.flush()
        os.fsync(file.fileno())
    if created:
        _fsync_dir(path.parent)


def read_json_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects in ``path``, in order; an unreadable line is skipped with a warning."""
    if not path.exists():
        return
    with open(path, encoding="utf-8", errors="replace") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if not isinstance(record, dict):
                logger.warning("Skipping unreadable line %d of %s (a write torn by a crash?)", number, path)
                continue
            yield record


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
