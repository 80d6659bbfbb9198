"""Sequential Monte Carlo p-values (Besag & Clifford 1991): stop resampling once the answer is clear.

A live monitor charts a p-value against a small probability limit (say 1/3,000), which a plain
permutation test reaches only with thousands of permutations per batch.  Most clean batches are
nowhere near that limit, and Besag and Clifford's sequential rule stops as soon as ``h``
resampled statistics have reached the observed one:

* stopped after ``l`` draws with ``h`` exceedances: ``p = h / l``;
* all ``max_draws`` drawn with ``g < h`` exceedances: ``p = (g + 1) / (max_draws + 1)``.

Under exchangeability ``P(p <= u) <= u`` for every ``u`` (Besag & Clifford, "Sequential Monte
Carlo p-values", Biometrika 78(2), 1991), exactly as for the full test, and the smallest value,
``1 / (max_draws + 1)``, is the same.  On clean traffic (p roughly uniform) the expected number of
draws is about ``h (1 + ln(max_draws / h))``: about 60 instead of 3,000 for ``h = 10``.

Ties count against the observed statistic (``>=``), as in :mod:`monitors.mmd.pvalues`.

>>> import numpy as np
>>> g = np.random.default_rng(0)
>>> null = lambda n: g.normal(size=n)
>>> result = sequential_p_value(0.1, null, max_draws=2999)
>>> result.p_value > 0.1, result.n_draws < 100
(True, True)
>>> sequential_p_value(10.0, null, max_draws=2999).p_value == 1 / 3000
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from dataclasses import dataclass

import numpy as np

DEFAULT_STOP_AFTER = 10
_SMALLEST_P = 5e-324  # the smallest positive double: keeps -log10(p) finite
FIRST_BLOCK = 32
LARGEST_BLOCK = 512


@dataclass(frozen=True)
class SequentialPValue:
    """A sequential Monte Carlo p-value and how many resampled statistics it took."""

    p_value: float
    n_draws: int
    exceedances: int


def draws_for_level(level: float) -> int:
    """The fewest draws with which a p-value can reach ``level``: ``ceil(1 / level) - 1``."""
    return max(1, math.ceil(1.0 / level - 1e-9) - 1)


def sequential_p_value(
    observed: float,
    draw: Callable[[int], np.ndarray],
    *,
    max_draws: int,
    stop_after: int = DEFAULT_STOP_AFTER,
) -> SequentialPValue:
    """Besag-Clifford p-value of ``observed`` against resampled statistics from ``draw``.

    Parameters
    ----------
    observed
        The statistic of the observed labelling; larger means more evidence against the null.
    draw
        ``draw(n)`` returns shape-(n,) statistics of ``n`` fresh, independent resamplings
        (permutations, sign flips...).  It is called with growing block sizes.
    max_draws
        The most resampled statistics; the smallest reachable p-value is ``1 / (max_draws + 1)``.
    stop_after
        ``h``: stop once this many resampled statistics reach ``observed`` (``>= 1``).
    """
    if max_draws < 1 or stop_after < 1:
        raise ValueError(f"`max_draws` and `stop_after` must be >= 1. Got: {max_draws}, {stop_after}")
    if math.isnan(observed):
        raise ValueError("The observed statistic is NaN.")
    drawn = exceeded = 0
    block = FIRST_BLOCK
    while drawn < max_draws:
        size = min(block, max_draws - drawn)
        stats = np.asarray(draw(size), dtype=np.float64).reshape(-1)
        if stats.shape[0] != size:
            raise ValueError(f"`draw({size})` returned {stats.shape[0]} statistics.")
        hits = np.flatnonzero(stats >= observed)
        if exceeded + hits.size >= stop_after:
            # Stop exactly at the draw that brought the h-th exceedance.
            position = int(hits[stop_after - exceeded - 1])
            return SequentialPValue(stop_after / (drawn + position + 1), drawn + position + 1, stop_after)
        exceeded += hits.size
        drawn += size
        block = min(2 * block, LARGEST_BLOCK)
    return SequentialPValue((exceeded + 1) / (max_draws + 1), max_draws, exceeded)


def log_score(p_value: float, alpha: float) -> tuple[bool, float, float]:
    """``(alarm, score, threshold)`` with ``score = -log10 p``, ``threshold = -log10 alpha``.

    ``alarm`` is ``p <= alpha`` (a probability limit: the chance of an alarm on an in-control
    batch is at most ``alpha``); where the logarithms would disagree with it (p equal to or within
    an ulp of alpha) the score is nudged by one ulp so that ``alarm == (score > threshold)`` holds exactly.
    """
    threshold = -math.log10(alpha)
    score = -math.log10(max(p_value, _SMALLEST_P))
    alarm = p_value <= alpha
    if alarm and not score > threshold:
        score = math.nextafter(threshold, math.inf)
    elif not alarm and score > threshold:
        score = threshold
    return alarm, score, threshold


def resampling_options(alpha: Any, max_draws: Any, stop_after: Any) -> tuple[float, int, int]:
    """Validated ``(alpha, max_draws, stop_after)``; ``max_draws=None`` means just enough to reach ``alpha``.

    Too few draws for ``alpha`` is refused: no batch could ever reach the limit.
    """
    from monitors import _inputs

    alpha = _inputs.probability(alpha, "alpha")
    needed = draws_for_level(alpha)
    max_draws = needed if max_draws is None else _inputs.integer(max_draws, "max_draws", minimum=1)
    if max_draws < needed:
        raise _inputs.MonitorConfigError(
            f"`max_draws` must be >= {needed} for alpha={alpha:.4g}: the smallest p-value is "
            f"1 / (max_draws + 1) = {1 / (max_draws + 1):.4g}, so no batch could ever reach the limit. Got: {max_draws}"
        )
    return alpha, max_draws, _inputs.integer(stop_after, "stop_after", minimum=1)


def mean_drop_p_value(
    reference: np.ndarray, batch: np.ndarray, *, max_draws: int, stop_after: int, generator: np.random.Generator
) -> SequentialPValue:
    """One-sided permutation p-value that the batch's mean is *lower* than the reference's.

    Statistic: ``mean(reference part) - mean(batch part)`` over random splits of the pooled
    values (exact under exchangeability, whatever the values' distribution).
    """
    pooled = np.concatenate([reference, batch]).astype(np.float64)
    total, size = pooled.sum(), batch.size
    n_reference = reference.size

    def drop(batch_sum: np.ndarray) -> np.ndarray:
        return (total - batch_sum) / n_reference - batch_sum / size

    observed = float(drop(np.asarray(batch.sum(dtype=np.float64)))[()])

    def draw(count: int) -> np.ndarray:
        keys = generator.random((count, pooled.size))
        chosen = np.argpartition(keys, size - 1, axis=1)[:, :size]  # a uniform random subset per row
        return drop(pooled[chosen].sum(axis=1))

    return sequential_p_value(observed, draw, max_draws=max_draws, stop_after=stop_after)
