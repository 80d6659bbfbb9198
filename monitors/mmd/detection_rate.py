"""The detection rate: the fraction of repeated small tests that reject, with a binomial interval.

This is the LADIS procedure of the AWS write-up on latent-space adversarial detection with
SageMaker Model Monitor and Debugger: run the two-sample test ``n_tests`` times, each on
``n_samples`` rows drawn at random from the reference and ``n_samples`` from the batch, and
report how often it rejects.  On clean held-out data the same procedure gives the baseline
rate, which should be close to ``alpha``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from scipy.special import betaincinv
from torch import Tensor


@dataclass(frozen=True)
class DetectionRate:
    """What :meth:`MMDAdversarialMonitor.detection_rate` found.

    Attributes
    ----------
    rate
        ``rejections / n_tests``.
    n_tests, n_samples
        Number of tests, and rows drawn from each side for every test.
    rejections
        Tests with ``p_value <= alpha``.
    p_values
        The ``n_tests`` p-values, in the order the tests were drawn.
    alpha
        The significance level of each test.
    confidence_interval
        Clopper-Pearson (exact binomial) interval for the rejection probability.  The tests share
        one reference and one batch, so they are not quite independent; read the interval as
        the Monte-Carlo uncertainty given those two data sets.
    confidence_level
        Coverage of ``confidence_interval``.
    """

    rate: float
    n_tests: int
    n_samples: int
    rejections: int
    p_values: tuple[float, ...]
    alpha: float
    confidence_interval: tuple[float, float]
    confidence_level: float


def clopper_pearson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact two-sided binomial interval for ``successes`` of ``trials``."""
    tail = (1.0 - confidence) / 2.0
    low = 0.0 if successes == 0 else float(betaincinv(successes, trials - successes + 1, tail))
    high = 1.0 if successes == trials else float(betaincinv(successes + 1, trials - successes, 1.0 - tail))
    return low, high


def summarize(p_values: Tensor, *, alpha: float, n_samples: int, confidence: float) -> DetectionRate:
    """A :class:`DetectionRate` from the shape-(n_tests,) p-values."""
    rejections = int((p_values <= alpha).sum())
    n_tests = int(p_values.numel())
    return DetectionRate(
        rate=rejections / n_tests,
        n_tests=n_tests,
        n_samples=n_samples,
        rejections=rejections,
        p_values=tuple(float(p) for p in p_values),
        alpha=alpha,
        confidence_interval=clopper_pearson(rejections, n_tests, confidence),
        confidence_level=confidence,
    )


def draw_subsets(n_rows: int, n_tests: int, size: int, generator: torch.Generator | None = None) -> Tensor:
    """Shape-(n_tests, size) row indices, each row a uniform draw without replacement from ``range(n_rows)``."""
    return torch.stack([torch.randperm(n_rows, generator=generator)[:size] for _ in range(n_tests)])
