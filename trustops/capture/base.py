"""What both capture backends share: modes, the descriptor, and the asynchronous writer.

The forward hooks hand each step to :meth:`CaptureWriter.write_step`, which only numbers
the step and queues its (already copied) tensors; a background thread groups queued steps
of one mode into chunks and hands them to the backend's ``_write_chunk``.  Inference
therefore never waits on a file system or the network unless the queue is full.

PREDICT step numbers (for backends with ``shared_modes``, the native one) come from step
leases (:mod:`trustops.capture.leases`): several processes may write one store at once and
every step still gets a number of its own; a writer waits on the store only when it claims a
lease (once per up to 4,096 steps, or after an idle flush interval).  EVAL steps, written by
training alone, are numbered on from the last committed step when a writer opens.
"""

from __future__ import annotations

import abc
import atexit
import json
import logging
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from trustops.capture.errors import CaptureConfigError, CaptureError, CaptureNotFoundError
from trustops.capture.leases import MAX_LEASE, MIN_LEASE, Lease, LeaseChain
from trustops.capture.store import CaptureStore, open_store

if TYPE_CHECKING:  # reading a capture's listing needs no torch (a no-op monitor pass never imports it)
    import torch

log = logging.getLogger(__name__)

MODES = ("eval", "predict")
DESCRIPTOR_KEY = "trustops-capture.json"
FORMAT_NAME = "trustops-capture"
#: A writer gives up its step lease after this many seconds, so it never holds the monitor back longer.
MAX_LEASE_AGE = 30.0


_open_writers: weakref.WeakSet[CaptureWriter] = weakref.WeakSet()


@atexit.register
def _close_open_writers() -> None:
    """Write what is still queued when the interpreter exits (a writer nobody closed)."""
    for writer in list(_open_writers):
        try:
            writer.close()
        except Exception as e:  # at exit there is no caller left to raise to
            log.error("Closing %r at exit failed: %s", writer, e)


def check_mode(mode: str) -> str:
    mode_name = getattr(mode, "name", mode)  # accept smdebug's ModeKeys too
    normalized = str(mode_name).lower()
    if normalized not in MODES:
        raise CaptureConfigError(f"`mode` must be one of {', '.join(MODES)}. Got: {mode!r}")
    return normalized


@dataclass(frozen=True)
class CapturedStep:
    """One captured forward pass.

    Attributes
    ----------
    mode
        ``"eval"`` (the training-time reference) or ``"predict"`` (inference).
    step
        Its number; steps of one mode increase monotonically across writer sessions.
    tensors
        Layer name -> tensor, e.g. ``inputs`` shape-(N, ...), ``penultimate`` shape-(N, D),
        ``outputs`` shape-(N, n_classes).
    meta
        What the writer attached (for the Lightning callback: epoch, batch index).
    """

    mode: str
    step: int
    tensors: Mapping[str, torch.Tensor]
    meta: Mapping[str, Any] = field(default_factory=dict)


class _Pending(NamedTuple):
    step: int
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]
    nbytes: int


def describe_model(identity: Mapping[str, Any]) -> str:
    """``'trustops-digits' (Classifier, 4,810 parameters, layer shapes 1f2e3d4c)`` for an error message."""
    what = f"{identity.get('class', '?')}, {identity.get('parameters', 0):,} parameters, layer shapes {identity.get('shapes', '?')}"
    return f"{identity['name']!r} ({what})" if identity.get("name") else f"({what})"


def read_descriptor(store: CaptureStore) -> dict[str, Any] | None:
    try:
        raw = store.get(DESCRIPTOR_KEY)
    except CaptureNotFoundError:
        return None
    try:
        descriptor = json.loads(raw)
    except ValueError:
        raise CaptureError(f"The capture descriptor {DESCRIPTOR_KEY} at {store.uri} is not valid JSON.") from None
    if descriptor.get("format") != FORMAT_NAME:
        raise CaptureError(f"{DESCRIPTOR_KEY} at {store.uri} is not a trustops capture descriptor.")
    return descriptor


class CaptureWriter(abc.ABC):
    """Numbers captured steps per mode and writes them asynchronously in chunks.

    Parameters
    ----------
    store
        A capture URI or store (see :func:`trustops.capture.store.open_store`).
    flush_interval
        Seconds a queued step may wait before it is written (bounds the monitor's latency).
    max_chunk_steps, max_chunk_bytes
        A chunk is cut when it reaches either size.
    max_pending_bytes
        When this much is queued, ``write_step`` blocks until the writer catches up.
    model
        The identity of the model whose steps this writer captures (see
        :func:`trustops.capture.hooks.model_identity`); recorded in the store's descriptor, and
        a store that belongs to a model with other layer shapes is refused at construction.
    store_options
        Passed to ``open_store`` when ``store`` is a URI (``endpoint_url``, ``retries``...).
    """

    backend: ClassVar[str]
    #: Modes whose steps are numbered through step leases (safe with several writing processes).
    shared_modes: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        store: str | CaptureStore,
        *,
        flush_interval: float = 0.5,
        max_chunk_steps: int = 4096,
        max_chunk_bytes: int = 32 << 20,
        max_pending_bytes: int = 256 << 20,
        model: Mapping[str, Any] | None = None,
        **store_options: Any,
    ) -> None:
        if not flush_interval > 0:
            raise CaptureConfigError(f"`flush_interval` must be > 0 seconds. Got: {flush_interval}")
        if max_chunk_steps < 1:
            raise CaptureConfigError(f"`max_chunk_steps` must be >= 1. Got: {max_chunk_steps}")
        if max_chunk_bytes < 1 or max_pending_bytes < 1:
            raise CaptureConfigError("`max_chunk_bytes` and `max_pending_bytes` must be >= 1.")
        self.store = open_store(store, **store_options)
        self.flush_interval = flush_interval
        self.max_chunk_steps = max_chunk_steps
        self.max_chunk_bytes = max_chunk_bytes
        self.max_pending_bytes = max_pending_bytes
        self.model = dict(model) if model else None
        self._check_store_backend()
        self._next_step = {mode: -1 if mode in self.shared_modes else self._last_committed_step(mode) + 1 for mode in MODES}
        self._chains = {mode: LeaseChain(self.store, mode) for mode in self.shared_modes}
        self._leases: dict[str, Lease] = {}
        self._lease_size = dict.fromkeys(self.shared_modes, MIN_LEASE)
        self._lease_claimed: dict[str, float] = {}
        self._last_use: dict[str, float] = {}
        self._releasing = 0
        self._cond = threading.Condition()
        self._pending: dict[str, list[_Pending]] = {mode: [] for mode in MODES}
        self._pending_bytes = 0
        self._enqueued = 0
        self._done = 0
        self._flush_requested = False
        self._closing = False
        self._closed = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._descriptor_written = False
        _open_writers.add(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.store!r})"

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- backend hooks -------------------------------------------------------------------
    @abc.abstractmethod
    def _last_committed_step(self, mode: str) -> int:
        """The highest committed step of ``mode`` in the store, -1 when there is none."""

    @abc.abstractmethod
    def _write_chunk(self, mode: str, steps: list[_Pending]) -> None:
        """Write consecutive steps of one mode; return only once they are committed."""

    def _descriptor(self) -> dict[str, Any]:
        descriptor = {"format": FORMAT_NAME, "backend": self.backend, "version": 1}
        return {**descriptor, "model": self.model} if self.model else descriptor

    def _check_model(self, descriptor: Mapping[str, Any] | None) -> None:
        theirs = (descriptor or {}).get("model")
        if not theirs or not self.model:
            return  # a store from before model identities, or a writer that did not say
        same_shapes = theirs.get("shapes") == self.model.get("shapes")
        same_name = not (theirs.get("name") and self.model.get("name")) or theirs["name"] == self.model["name"]
        if not (same_shapes and same_name):
            why = "another registered model" if same_shapes else "different layer shapes"
            raise CaptureConfigError(
                f"The capture store {self.store.uri} belongs to model {describe_model(theirs)}; a writer for model "
                f"{describe_model(self.model)} cannot add to it ({why}). Give each model its own store."
            )

    def _check_store_backend(self) -> None:
        descriptor = read_descriptor(self.store)
        self._check_model(descriptor)
        if descriptor is None and self.backend != "smdebug":
            # A trial SageMaker wrote has no descriptor; do not mix another format into it.
            if next(iter(self.store.list("index/")), None) is not None:
                raise CaptureConfigError(
                    f"{self.store.uri} already holds an smdebug trial; a {self.backend!r} writer cannot add to it. "
                    "Use backend='smdebug' or another URI."
                )
        if descriptor is not None and descriptor.get("backend") != self.backend:
            raise CaptureConfigError(
                f"{self.store.uri} already holds a {descriptor.get('backend')!r} capture; "
                f"a {self.backend!r} writer cannot add to it. Use backend={descriptor.get('backend')!r} or another URI."
            )

    # -- the hot path --------------------------------------------------------------------
    def next_step(self, mode: str) -> int:
        """The number the next step of ``mode`` will get (for a shared mode: most likely get)."""
        mode = check_mode(mode)
        if mode not in self._chains:
            return self._next_step[mode]
        lease = self._leases.get(mode)
        if lease is not None and self._next_step[mode] <= lease.end:
            return self._next_step[mode]
        head = self._chains[mode].head()
        return self._last_committed_step(mode) + 1 if head is None else head.end + 1

    # -- step leases (called with self._cond held) ---------------------------------------
    def _leased_step(self, mode: str) -> int:
        lease = self._leases.get(mode)
        now = time.monotonic()
        if lease is not None and (self._next_step[mode] > lease.end or now - self._lease_claimed[mode] > MAX_LEASE_AGE):
            exhausted = self._next_step[mode] > lease.end
            self._detach_lease(mode)
            self._chains[mode].release(lease, lease.used_through)
            # A writer that used up its lease is busy: the next lease is twice as large.
            self._lease_size[mode] = min(MAX_LEASE, self._lease_size[mode] * 2) if exhausted else MIN_LEASE
            lease = None
        while self._releasing:  # the writer thread is releasing an idle lease: the chain moves on from it
            self._cond.wait()
        if lease is None:
            lease = self._chains[mode].claim(self._lease_size[mode], floor=lambda: self._last_committed_step(mode) + 1)
            self._leases[mode] = lease
            self._lease_claimed[mode] = now
            self._next_step[mode] = lease.first
        step = self._next_step[mode]
        self._next_step[mode] = step + 1
        self._last_use[mode] = now
        return step

    def _detach_lease(self, mode: str) -> Lease:
        lease = self._leases.pop(mode)
        lease.used_through = self._next_step[mode] - 1
        return lease

    def _idle_leases(self) -> list[str]:
        now = time.monotonic()
        return [mode for mode in self._leases if now - self._last_use[mode] >= self.flush_interval]

    def _release_idle_leases(self) -> None:
        """Give up leases unused for a flush interval, so they stop holding back the monitor's horizon."""
        with self._cond:
            idle = [(mode, self._detach_lease(mode)) for mode in self._idle_leases()]
            self._lease_size.update(dict.fromkeys((mode for mode, _ in idle), MIN_LEASE))
            self._releasing += len(idle)
        for mode, lease in idle:
            try:
                self._chains[mode].release(lease, lease.used_through)
            except Exception as e:  # the lease then counts as abandoned once it is stale
                log.error("Could not release the %s step lease %d of %s: %s", mode, lease.link, self.store.uri, e)
            finally:
                with self._cond:
                    self._releasing -= 1
                    self._cond.notify_all()

    def write_step(self, mode: str, tensors: dict[str, torch.Tensor], meta: Mapping[str, Any] | None = None) -> int:
        """Queue one step and return its number.

        ``tensors`` (layer name -> tensor) is kept as given: neither the dict nor the tensors
        may be modified afterwards (the hooks hand over fresh copies).
        """
        if mode not in MODES:
            mode = check_mode(mode)
        if self._closing:
            raise CaptureError(f"{self!r} is closed.")
        if self._error is not None:
            self._raise_background_error()
        nbytes = 0
        for tensor in tensors.values():
            nbytes += tensor.nbytes
        with self._cond:
            while self._pending_bytes > self.max_pending_bytes and self._error is None and self._thread is not None:
                self._cond.wait()
            if mode in self._chains:
                try:
                    step = self._leased_step(mode)
                except CaptureError:
                    raise
                except Exception as e:  # e.g. a local path that cannot be created: the store's failure, not the caller's
                    raise CaptureError(f"Could not reserve a {mode} step number in {self.store.uri}: {e}") from e
            else:
                step = self._next_step[mode]
                self._next_step[mode] = step + 1
            queue = self._pending[mode]
            queue.append(_Pending(step, tensors, dict(meta) if meta else {}, nbytes))
            self._pending_bytes += nbytes
            self._enqueued += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"trustops-capture-{self.backend}", daemon=True)
                self._thread.start()
            if len(queue) >= self.max_chunk_steps or self._pending_bytes >= self.max_chunk_bytes:
                self._cond.notify_all()
        return step

    def flush(self) -> None:
        """Block until every step queued so far is committed to the store."""
        with self._cond:
            target = self._enqueued
            self._flush_requested = True
            self._cond.notify_all()
            while self._done < target and self._error is None and self._thread is not None:
                if not self._thread.is_alive():
                    raise CaptureError(f"The writer thread of {self!r} died; {target - self._done} step(s) were not written.")
                self._cond.wait(timeout=1.0)
        self._raise_background_error()

    def close(self) -> None:
        """Flush and stop the writer thread; idempotent."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            if self._thread is not None:
                self._thread.join()
            for mode in list(self._leases):
                lease = self._detach_lease(mode)
                try:
                    self._chains[mode].release(lease, lease.used_through)
                except Exception as e:  # the lease then counts as abandoned once it is stale
                    log.error("Could not release the %s step lease %d of %s: %s", mode, lease.link, self.store.uri, e)
            self._closed = True
            _open_writers.discard(self)

    def _raise_background_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise CaptureError(f"Writing captured steps to {self.store.uri} failed: {error}") from error

    # -- the writer thread ---------------------------------------------------------------
    def _take_chunks(self) -> list[tuple[str, list[_Pending]]]:
        chunks = []
        for mode in MODES:
            queued, self._pending[mode] = self._pending[mode], []
            chunk: list[_Pending] = []
            size = 0
            for item in queued:
                # A chunk holds consecutive steps: a writer's next lease need not follow on from its last.
                if chunk and (
                    len(chunk) >= self.max_chunk_steps
                    or size + item.nbytes > self.max_chunk_bytes
                    or item.step != chunk[-1].step + 1
                ):
                    chunks.append((mode, chunk))
                    chunk, size = [], 0
                chunk.append(item)
                size += item.nbytes
            if chunk:
                chunks.append((mode, chunk))
        return chunks

    def _should_write(self, deadline: float) -> bool:
        queued = self._pending["eval"] or self._pending["predict"]
        if not queued:
            return False
        return (
            self._flush_requested
            or self._closing
            or time.monotonic() >= deadline
            or self._pending_bytes >= self.max_chunk_bytes
            or any(len(v) >= self.max_chunk_steps for v in self._pending.values())
        )

    def _run(self) -> None:
        deadline = time.monotonic() + self.flush_interval
        while True:
            with self._cond:
                while not self._should_write(deadline) and not self._idle_leases():
                    if self._closing and not (self._pending["eval"] or self._pending["predict"]):
                        return
                    if self._flush_requested and self._done >= self._enqueued:
                        self._flush_requested = False
                        self._cond.notify_all()
                    queued = self._pending["eval"] or self._pending["predict"]
                    self._cond.wait(timeout=max(0.0, deadline - time.monotonic()) if queued else self.flush_interval)
                    if not queued:
                        deadline = time.monotonic() + self.flush_interval
                chunks = self._take_chunks()
                if chunks:
                    self._flush_requested = False
            if self._leases:
                self._release_idle_leases()
            for mode, chunk in chunks:
                try:
                    if not self._descriptor_written:
                        # Exclusive: of two writers that found the store empty, one describes it
                        # and the other checks it is compatible before writing anything.
                        if not self.store.create(DESCRIPTOR_KEY, json.dumps(self._descriptor()).encode()):
                            self._check_model(read_descriptor(self.store))
                        self._descriptor_written = True
                    self._write_chunk(mode, chunk)
                except BaseException as e:  # reported to the caller on its next call
                    log.error(
                        "Could not write %s steps %d-%d to %s: %s", mode, chunk[0].step, chunk[-1].step, self.store.uri, e
                    )
                    with self._cond:
                        self._error = e
                finally:
                    with self._cond:
                        self._pending_bytes -= sum(item.nbytes for item in chunk)
                        self._done += len(chunk)
                        self._cond.notify_all()
            deadline = time.monotonic() + self.flush_interval
