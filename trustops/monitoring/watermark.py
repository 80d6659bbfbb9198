"""Which captured inference steps were already monitored, and one monitor run at a time.

The watermark is the last PREDICT step whose metrics were charted and whose alerts are in the
durable outbox. It only moves forward after a run completes, so a crash means the next run
sees the same steps again, never that a batch is skipped. Chunks that cannot be read
(truncated or corrupt) are *quarantined*: reported once as a data-quality alert and listed,
so later runs pass over them without moving the watermark past data that was not looked at.

The watermark is one object of the model version's state store (a local folder or S3, see
:mod:`trustops.monitoring.state_store`) and moves only by compare-and-set, so of two passes
that started from the same watermark, on one machine or two, exactly one moves it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from trustops.errors import TrustopsError
from trustops.monitoring.state_store import (
    ANY,
    LOCK_KEY,
    MonitorRunInProgress,
    StateStore,
    split_location,
)

__all__ = ["WATERMARK_KEY", "DamagedStateFile", "MonitorRunInProgress", "Watermark", "exclusive_run", "parse_state",
           "read_state_file"]

WATERMARK_KEY = "watermark.json"


class DamagedStateFile(TrustopsError, ValueError):
    """A monitor state file cannot be read; nothing was overwritten."""


def _move_aside_hint(where: str) -> str:
    mv = "aws s3 mv" if where.startswith("s3://") else "mv"
    return f"{mv} {where} {where}.damaged"


def damaged(where: str, reason: str, consequence: str = "") -> DamagedStateFile:
    """The error for a damaged state object: names it, the repair, and what starting afresh means."""
    return DamagedStateFile(
        f"The monitor state file {where} is damaged ({reason}); nothing was changed. Run `trustops monitor --repair`, "
        f"or move it aside yourself ({_move_aside_hint(where)}) and run again{consequence or ''}."
    )


def parse_state(data: bytes, where: str) -> dict:
    """The JSON object in ``data`` (the object ``where``), or :class:`DamagedStateFile` naming it and the repair."""
    try:
        values = json.loads(data.decode("utf-8"))
        if not isinstance(values, dict):
            raise ValueError(f"expected a JSON object, found {type(values).__name__}")
        return values
    except (ValueError, UnicodeDecodeError) as error:
        raise damaged(where, str(error), ": a watermark starts the capture store over (batches are checked again), a "
                                         "chart starts a new picture") from None


def read_state_file(path: Path) -> dict:
    """The JSON object in the file ``path``, or :class:`DamagedStateFile` naming the file and the repair."""
    return parse_state(path.read_bytes(), str(path))


@dataclass
class Watermark:
    capture_uri: str
    last_step: int | None = None
    quarantined: list[str] = field(default_factory=list)  # chunk keys reported as unreadable

    @classmethod
    def load(cls, where: Path | str | StateStore, capture_uri: str) -> Watermark:
        """The watermark in the file ``where`` (a path ending in ``watermark.json``) or in the store ``where``."""
        return cls.fetch(where, capture_uri)[0]

    @classmethod
    def fetch(cls, where: Path | str | StateStore, capture_uri: str) -> tuple[Watermark, str | None]:
        """The watermark and the version token a compare-and-set :meth:`save` needs (``None``: none saved yet)."""
        store, key = _watermark_object(where)
        stored = store.read(key)
        if stored is None:
            return cls(capture_uri=capture_uri), None
        values = parse_state(stored.data, store.where(key))
        if values.get("capture_uri") != capture_uri:  # a new store starts from its beginning
            return cls(capture_uri=capture_uri), stored.version
        try:
            return cls(**values), stored.version
        except TypeError as error:
            raise damaged(store.where(key), str(error)) from None

    def save(self, where: Path | str | StateStore, *, expect: str | None | object = ANY) -> str:
        """Write the watermark; ``expect`` (the version :meth:`fetch` gave) makes it a compare-and-set.

        Raises :class:`~trustops.monitoring.state_store.StateConflict` when another writer moved
        it since, and writes nothing then.
        """
        store, key = _watermark_object(where)
        return store.write(key, json.dumps(asdict(self)).encode("utf-8"), expect=expect)


def _watermark_object(where: Path | str | StateStore) -> tuple[StateStore, str]:
    if isinstance(where, StateStore):
        return where, WATERMARK_KEY
    return split_location(where)


@contextmanager
def exclusive_run(where: Path | str | StateStore) -> Iterator[None]:
    """Hold the per-model run lock; a second concurrent run fails at once with :class:`MonitorRunInProgress`.

    ``where`` is the lock file's path (``state / "run.lock"``) or the state store, whose lock
    is ``run.lock``: an ``flock`` in a local folder, a lease object on S3.
    """
    if isinstance(where, StateStore):
        store, key = where, LOCK_KEY
    else:
        store, key = split_location(os.fspath(where))
    with store.lease(key):
        yield
