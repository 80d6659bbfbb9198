"""Which captured inference steps were already monitored, and one monitor run at a time.

The watermark is the last PREDICT step whose metrics were charted and whose alerts are in the
durable outbox. It only moves forward after a run completes, so a crash means the next run
sees the same steps again, never that a batch is skipped. Chunks that cannot be read
(truncated or corrupt) are *quarantined*: reported once as a data-quality alert and listed,
so later runs pass over them without moving the watermark past data that was not looked at.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from trustops.errors import TrustopsError


class MonitorRunInProgress(TrustopsError, RuntimeError):
    """Another monitor run holds the lock for this model and capture store: this one is skipped."""

    exit_code = 3  # a skip, not a failure: cron mail and schedulers can tell the two apart


class DamagedStateFile(TrustopsError, ValueError):
    """A monitor state file cannot be read; nothing was overwritten."""


def read_state_file(path: Path) -> dict:
    """The JSON object in ``path``, or :class:`DamagedStateFile` naming the file and the repair."""
    try:
        values = json.loads(path.read_text())
        if not isinstance(values, dict):
            raise ValueError(f"expected a JSON object, found {type(values).__name__}")
        return values
    except (ValueError, UnicodeDecodeError) as error:
        raise DamagedStateFile(
            f"The monitor state file {path} is damaged ({error}); nothing was changed. Run `trustops monitor "
            f"--repair`, or move it aside yourself (mv {path} {path}.damaged) and run again: a watermark starts the "
            "capture store over (batches are checked again), a chart starts a new picture."
        ) from None


@dataclass
class Watermark:
    capture_uri: str
    last_step: int | None = None
    quarantined: list[str] = field(default_factory=list)  # chunk keys reported as unreadable

    @classmethod
    def load(cls, path: Path, capture_uri: str) -> Watermark:
        if not path.is_file():
            return cls(capture_uri=capture_uri)
        values = read_state_file(path)
        if values.get("capture_uri") != capture_uri:  # a new store starts from its beginning
            return cls(capture_uri=capture_uri)
        try:
            return cls(**values)
        except TypeError as error:
            raise DamagedStateFile(f"The monitor state file {path} is damaged ({error}); nothing was changed. Run "
                                   f"`trustops monitor --repair`, or move it aside (mv {path} {path}.damaged) and run "
                                   "again.") from None

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        with partial.open("w") as handle:
            json.dump(asdict(self), handle)
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(path)


@contextmanager
def exclusive_run(lock_path: Path) -> Iterator[None]:
    """Hold the per-model run lock; a second concurrent run fails at once with a clear error."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MonitorRunInProgress(
                f"Another monitor run is in progress (lock {lock_path}); this run is skipped. "
                "Schedules never start two runs at once; if no run is active, the lock is released automatically."
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
