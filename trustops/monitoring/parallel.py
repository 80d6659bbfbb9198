"""Check a pass's batches on every core, with the same p-values as one process would give.

The check stage's cost is the monitors' arithmetic, batch after batch (the ``monitor_scaling``
benchmark), and the batches are independent once the monitors are fitted.  So a pass with many
batches forks worker processes that inherit the fitted monitors, and sends each worker the
views of one batch (activations, probabilities, the input table, squeezing scores: a few
hundred kilobytes); this process keeps reading captures and computing the next views meanwhile.

Each batch's resampling is seeded from its capture step and the monitor's name
(:func:`trustops.monitoring.batch_check.batch_seed`), in every process alike: a batch's p-value does not depend on which
batches came before it or where it was checked, so serial and parallel passes decide the same
(``tests/steps/test_parallel_checks.py``).

Workers ignore SIGINT and SIGTERM (this process ends them) and exit when this process is gone,
so a killed pass leaves no orphan behind.
"""

from __future__ import annotations

import collections
import concurrent.futures
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from monitors import Monitor
from trustops.monitoring.batch_check import BatchCheck, Traffic, batch_views, check_batch

WORKERS_ENV = "TRUSTOPS_MONITOR_WORKERS"
#: Fewer batches than this are checked in this process: forking costs more than it saves.
MIN_BATCHES_FOR_WORKERS = 8
#: Batches sent ahead of the one being collected, per worker: enough to keep workers busy, bounded memory.
IN_FLIGHT_PER_WORKER = 4

_fitted: dict[str, Monitor] = {}  # the fitted monitors, inherited by forked workers


def monitor_workers() -> int:
    """Worker processes for the check stage: ``TRUSTOPS_MONITOR_WORKERS``, else the cores this process may use."""
    configured = os.environ.get(WORKERS_ENV)
    if configured:
        try:
            return max(1, int(configured))
        except ValueError:
            from trustops.errors import ConfigError

            raise ConfigError(f"{WORKERS_ENV} must be a whole number of worker processes. Got: {configured!r}") from None
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def check_stream(
    monitors: dict[str, Monitor], items: Iterable[Any], *, batches: int, workers: int | None = None
) -> Iterator[tuple[Any, BatchCheck | None]]:
    """``(item, check)`` for each :class:`Traffic` in ``items``, in order; other items pass through with ``None``."""
    workers = monitor_workers() if workers is None else workers
    if workers < 2 or batches < MIN_BATCHES_FOR_WORKERS or not monitors:
        for item in items:
            yield item, (check_batch(monitors, item.step.step, batch_views(monitors, item)) if isinstance(item, Traffic) else None)
        return
    yield from _check_in_workers(monitors, items, workers)


def _check_in_workers(monitors: dict[str, Monitor], items: Iterable[Any], workers: int) -> Iterator[tuple[Any, BatchCheck | None]]:
    global _fitted
    _fitted = monitors
    pending: collections.deque = collections.deque()
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("fork"), initializer=_worker_started, initargs=(os.getpid(),)
    )
    try:
        for item in items:
            if isinstance(item, Traffic):
                views = {name: _portable(view) for name, view in batch_views(monitors, item).items()}
                pending.append((item, pool.submit(_check_in_worker, item.step.step, views)))
            else:
                pending.append((item, None))
            while len(pending) > workers * IN_FLIGHT_PER_WORKER:
                yield _finished(pending.popleft())
        while pending:
            yield _finished(pending.popleft())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _fitted = {}


def _finished(entry: tuple[Any, concurrent.futures.Future | None]) -> tuple[Any, BatchCheck | None]:
    item, future = entry
    return item, None if future is None else future.result()


def _check_in_worker(step: int, views: dict[str, Any]) -> BatchCheck:
    return check_batch(_fitted, step, {name: _restored(view) for name, view in views.items()})


def _worker_started(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    torch.set_num_threads(1)

    def exit_with_parent() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)  # the pass was killed: nothing of this worker's is kept

    threading.Thread(target=exit_with_parent, daemon=True).start()


class _TensorRows:
    """A tensor as its own NumPy copy: pickling a view of a capture chunk would send the whole chunk."""

    __slots__ = ("array",)

    def __init__(self, tensor: torch.Tensor) -> None:
        self.array = tensor.detach().cpu().numpy().copy()


def _portable(view: Any) -> Any:
    if isinstance(view, torch.Tensor):
        return _TensorRows(view)
    if isinstance(view, tuple):
        return tuple(_portable(part) for part in view)
    if isinstance(view, dict):  # several layers (the combined MMD test)
        return {key: _portable(part) for key, part in view.items()}
    return view


def _restored(view: Any) -> Any:
    if isinstance(view, _TensorRows):
        return torch.from_numpy(view.array)
    if isinstance(view, tuple):
        return tuple(_restored(part) for part in view)
    if isinstance(view, dict):
        return {key: _restored(part) for key, part in view.items()}
    return view
