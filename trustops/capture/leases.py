"""Step leases: PREDICT step numbers that stay unique when several processes write one store.

Each writer takes its step numbers from a *lease*, a block of consecutive numbers it alone
may use.  Leases form a chain, one object per link::

    predict/leases/<shard>/<link>.json   {"first": 40, "size": 64, "writer": "<uuid>", "host": ..., "pid": ...,
                                          "created": <unix time>, "used_through": null}

Link ``n + 1`` starts where link ``n`` ends: right after its ``used_through`` step when its
owner has released it, else after its whole ``size``.  A writer claims the next link by
creating its object *exclusively* (``O_EXCL``-style on a local folder, ``PutObject`` with
``If-None-Match: *`` on S3): of two writers that computed the same link, one wins and the
other reads the chain again.  Two writers therefore never hold overlapping blocks, and within
a block the owner numbers steps itself, without a round trip per step.

A writer releases its lease (rewrites its own object with ``used_through``) when it goes
idle for a flush interval, when the lease is older than ``max_lease_age`` and when it
closes; an idle writer thus stops holding back the monitor after about one flush interval,
and a lone writer's numbers continue without gaps across sessions.  Numbers a lease held but
never used are *void*: no step will ever have them.

:func:`committed_horizon` is what the monitor may read up to: the highest step ``h`` such that
every step up to ``h`` is committed, void, or reserved by a writer that is gone (its process
on this host has exited) or stale (its lease is older than ``stale_after`` seconds).  Without
it, a monitor pass could move its watermark past a step that a slower writer reserved and
commits later, and never look at it.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from trustops.capture.errors import CaptureError
from trustops.capture.store import CaptureStore

SHARD_SIZE = 100_000
#: A lease is never larger than this many steps (it grows by doubling from ``MIN_LEASE``).
MAX_LEASE = 4096
MIN_LEASE = 16
#: A lease older than this (seconds) counts as abandoned for :func:`committed_horizon`.
STALE_AFTER = 600.0
_HOST = socket.gethostname()


def lease_prefix(mode: str) -> str:
    return f"{mode}/leases/"


def lease_key(mode: str, link: int) -> str:
    return f"{lease_prefix(mode)}{link // SHARD_SIZE:06d}/{link:012d}.json"


def _link_of(key: str) -> int:
    return int(key.rsplit("/", 1)[-1].removesuffix(".json"))


@dataclass
class Lease:
    """One link of the chain: steps ``first .. first + size - 1`` belong to ``writer``."""

    link: int
    first: int
    size: int
    writer: str
    host: str
    pid: int
    created: float
    used_through: int | None = None  # set when released: the last step the owner used

    @property
    def released(self) -> bool:
        return self.used_through is not None

    @property
    def end(self) -> int:
        """The last step number this lease can hold."""
        return self.used_through if self.used_through is not None else self.first + self.size - 1

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes, key: str) -> Lease:
        try:
            return cls(**json.loads(raw))
        except (ValueError, TypeError):
            raise CaptureError(f"The step lease {key} is not valid JSON or lacks fields.") from None

    def writer_gone(self) -> bool:
        """Whether the owning process is known to have exited (only knowable on this host)."""
        if self.host != _HOST:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        try:  # an exited child its parent has not reaped yet is a zombie: gone all the same
            with open(f"/proc/{self.pid}/stat") as stat:
                return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
        except (OSError, IndexError):
            return False


class LeaseChain:
    """Reads and extends one mode's lease chain in a store (a writer keeps one)."""

    def __init__(self, store: CaptureStore, mode: str) -> None:
        self.store = store
        self.mode = mode
        self.writer_id = uuid.uuid4().hex
        self._last_key: str | None = None  # the newest lease key seen: later listings start after it

    def _read(self, key: str) -> Lease:
        return Lease.from_json(self.store.get(key), key)

    def head(self) -> Lease | None:
        """The newest lease, or ``None`` when the chain is empty."""
        for key in self.store.list(lease_prefix(self.mode), start_after=self._last_key):
            if key.endswith(".json"):
                self._last_key = key
        return None if self._last_key is None else self._read(self._last_key)

    def claim(self, size: int, *, floor: Callable[[], int]) -> Lease:
        """Claim the next link for ``size`` steps; ``floor()`` is the first step a chain-less store may use."""
        for _ in range(1000):
            head = self.head()
            if head is None:
                link, first = 0, floor()
            else:
                link, first = head.link + 1, head.end + 1
            lease = Lease(link, first, size, self.writer_id, _HOST, os.getpid(), time.time())
            key = lease_key(self.mode, link)
            if self.store.create(key, lease.to_json()):
                self._last_key = key
                return lease
            # Another writer took this link: read the chain again from it.
        raise CaptureError(f"Could not claim a step lease in {self.store.uri} after 1000 attempts.")

    def release(self, lease: Lease, used_through: int) -> None:
        """Mark ``lease`` released; steps after ``used_through`` in it are void."""
        lease.used_through = used_through
        self.store.put(lease_key(self.mode, lease.link), lease.to_json())


def committed_horizon(
    store: CaptureStore,
    mode: str,
    committed: Callable[[int], Iterable[int]],
    *,
    after: int | None = None,
    stale_after: float = STALE_AFTER,
    now: float | None = None,
) -> int | None:
    """The highest step ``h`` such that every step ``<= h`` is settled (see the module docstring).

    Parameters
    ----------
    committed
        ``committed(a)``: the committed step numbers ``>= a``, ascending.
    after
        Steps up to ``after`` are known to be settled (the monitor's watermark): leases that
        end there are not read.
    stale_after
        Seconds after which a lease whose steps are still uncommitted counts as abandoned.

    Returns ``None`` when nothing was ever committed or reserved.
    """
    now = time.time() if now is None else now
    keys = [key for key in store.list(lease_prefix(mode)) if key.endswith(".json")]
    if not keys:  # a store written before leases existed, or by one writer at a time: all committed
        last = None
        for last in committed(0 if after is None else after + 1):
            pass
        return last if last is not None else after
    recent: list[Lease] = []
    for key in reversed(keys):  # newest first: only recent leases can hold unsettled steps
        lease = Lease.from_json(store.get(key), key)
        recent.append(lease)
        if now - lease.created > stale_after or (after is not None and lease.first <= after + 1):
            break
    recent.reverse()
    # Each lease is settled when it is stale, its writer is gone, or all its used steps are
    # committed; the first unsettled one bounds the horizon at its first uncommitted step.
    done = set(committed(recent[0].first))
    last_committed = max(done, default=None)
    for lease in recent:
        if now - lease.created > stale_after or lease.writer_gone():
            continue
        for step in range(lease.first, lease.end + 1):
            if step not in done:
                return step - 1
    chain_end = recent[-1].end
    return chain_end if last_committed is None else max(chain_end, last_committed)
