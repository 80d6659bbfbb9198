"""Progress for long jobs: tqdm bars on a terminal, nothing when output goes to a file or pipe.

Every bar draws on stderr, appears only once its job has run for ``DELAY_S`` seconds (so
quick jobs and tests print nothing), and is off when stderr is not a terminal (tqdm's
``disable=None``).  ``TRUSTOPS_PROGRESS=0`` turns all of it off, ``=1`` forces it on.

>>> from trustops.progress import progress
>>> sum(progress(range(3), desc="demo"))
3
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

DELAY_S = 2.0
# ZenML copies every write to stderr into the step's stored logs; fewer redraws, fewer copies.
MIN_INTERVAL_S = 0.5
STEP_LAUNCHER_LOGGER = "zenml.orchestrators.step_launcher"


def _disable() -> bool | None:
    """tqdm's ``disable``: ``None`` lets tqdm turn bars off when stderr is not a terminal."""
    setting = os.environ.get("TRUSTOPS_PROGRESS", "").strip().lower()
    if setting in ("0", "false", "off", "no"):
        return True
    if setting in ("1", "true", "on", "yes"):
        return False
    return None


def progress_bar(*, desc: str, total: int | None = None, unit: str = "it", leave: bool = False, **options: Any):
    """A tqdm bar to advance by hand (``bar.update(1)``, ``bar.set_postfix(...)``); use it as a context manager."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=leave, disable=_disable(), delay=DELAY_S,
                mininterval=MIN_INTERVAL_S, miniters=1, file=sys.stderr, dynamic_ncols=True, **options)


def progress(iterable: Iterable[T], *, desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """Iterate over ``iterable``, with a bar labelled ``desc`` when the loop takes a while on a terminal.

    ``total`` defaults to ``len(iterable)`` where that exists.
    """
    with progress_bar(desc=desc, total=total if total is not None else _length(iterable), unit=unit) as bar:
        for item in iterable:
            yield item
            bar.update(1)


def _length(iterable: Iterable[Any]) -> int | None:
    try:
        return len(iterable)  # type: ignore[arg-type]
    except TypeError:
        return None


class _StepBanners(logging.Filter):
    """Keeps only ZenML's "Step `name` has started." / "... has finished in ..." lines, on a terminal."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        is_banner = message.startswith("Step `") and ("has started" in message or "has finished in" in message)
        return is_banner and _disable() is not True and (_disable() is False or _isatty(sys.stdout))


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def step_banners() -> Iterator[None]:
    """Print which pipeline step is running (ZenML's own step start/finish lines) while inside.

    trustops keeps ZenML's INFO logging off; this lets through only the step lines, and
    only on a terminal.  Wrap a long pipeline run in it, not a loop of short ones.
    """
    launcher = logging.getLogger(STEP_LAUNCHER_LOGGER)
    banners = _StepBanners()
    level = launcher.level
    launcher.setLevel(logging.INFO)
    launcher.addFilter(banners)
    try:
        yield
    finally:
        launcher.removeFilter(banners)
        launcher.setLevel(level)
