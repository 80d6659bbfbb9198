"""The MMD test is exact at small samples: pooled standardization, and the sequential p-value.

Reference-only standardization made reference and batch non-exchangeable: at 50 rows a side in
32-D it rejected 8.0% of clean tests at alpha = 0.05.  Each test here checks the rejection
rate on clean data against alpha with a two-sided binomial test at level 0.001 (seeded, so the
outcome is fixed; the level says how surprising a failure would be for a correct test).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats

from monitors.mmd_adversarial import MMDAdversarialMonitor
from monitors.mmd.kernel import median_bandwidth
from monitors.sequential import draws_for_level, sequential_p_value

N_TESTS = 1500
FEATURES = 32


def skewed(rows: int, seed: int) -> torch.Tensor:
    """Right-skewed, unevenly scaled features, like ReLU activations: standardization matters."""
    generator = torch.Generator().manual_seed(seed)
    scales = torch.logspace(-1, 1, FEATURES, dtype=torch.float64)
    return torch.relu(torch.randn(rows, FEATURES, generator=generator, dtype=torch.float64)) ** 2 * scales


def assert_rate_near(rejections: int, n: int, alpha: float) -> None:
    test = stats.binomtest(rejections, n, alpha)
    assert test.pvalue > 1e-3, f"rejected {rejections}/{n} = {rejections / n:.4f}, alpha {alpha}"


@pytest.mark.slow
@pytest.mark.parametrize("n_samples", [20, 50, 100, 200])
def test_pooled_test_is_exact_at_small_samples(n_samples):
    """1,500 clean tests of n vs n rows drawn from two 20,000-row pools of one distribution."""
    monitor = MMDAdversarialMonitor(class_matching=False, n_permutations=199, seed=n_samples).fit(skewed(20_000, 1))
    rate = monitor.detection_rate(skewed(20_000, 2), n_tests=N_TESTS, n_samples=n_samples)
    p_values = np.asarray(rate.p_values)
    for alpha in (0.01, 0.05, 0.10):
        assert_rate_near(int((p_values <= alpha).sum()), N_TESTS, alpha)


def test_pooled_statistic_is_the_naive_mmd2_on_pooled_scaling():
    reference, batch = skewed(60, 3), skewed(30, 4) * 1.3
    monitor = MMDAdversarialMonitor(class_matching=False, seed=0, dtype="float64").fit(reference)
    pooled = torch.cat([reference, batch])
    std = pooled.std(0, correction=0)
    scaled = (pooled - pooled.mean(0)) / torch.where(std > 0, std, torch.ones_like(std))
    sigma = median_bandwidth(scaled)

    def kernel(a, b):
        squared = torch.cdist(a, b) ** 2
        return sum(torch.exp(-squared / (2 * (sigma * 2.0**k) ** 2)) for k in range(-2, 3))

    x, y = scaled[:60], scaled[60:]
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    expected = ((kxx.sum() - kxx.trace()) / (60 * 59) + (kyy.sum() - kyy.trace()) / (30 * 29) - 2 * kxy.mean()).item()
    assert monitor.check(batch).score == pytest.approx(expected, abs=1e-12)


@pytest.mark.slow
def test_sequential_check_is_valid_and_stops_early_on_clean_batches():
    """400 clean checks of 60 rows against a 300-row reference, each with a fresh reference."""
    p_values, draws = [], []
    for seed in range(400):
        reference, batch = skewed(300, 10_000 + seed), skewed(60, 20_000 + seed)
        monitor = MMDAdversarialMonitor(class_matching=False, n_permutations=999, stop_after=10, seed=seed)
        result = monitor.fit(reference).check(batch)
        assert result.alarm == (result.score > result.threshold) == (result.details["p_value"] <= 0.05)
        p_values.append(result.details["p_value"])
        draws.append(result.details["n_draws"])
    p_values = np.asarray(p_values)
    for alpha in (0.05, 0.10):
        assert_rate_near(int((p_values <= alpha).sum()), len(p_values), alpha)
    assert np.median(draws) < 60  # about h (1 + ln(P / h)) ~ 56 on average, far below 999


def test_sequential_check_reaches_the_smallest_p_value_on_a_shift():
    reference, batch = skewed(300, 1), skewed(60, 2) * 2.0
    result = MMDAdversarialMonitor(class_matching=False, n_permutations=2999, stop_after=10, seed=0).fit(reference).check(batch)
    assert result.details["n_draws"] == 2999
    assert result.details["p_value"] == pytest.approx(1 / 3000)
    assert result.alarm and result.score == pytest.approx(-math.log10(1 / 3000))


def test_sequential_p_value_matches_the_besag_clifford_rule():
    stream = itertools.count()  # statistics 0, 1, 2, ...: 95, 96 and 97 (draws 96 to 98) reach the observed 94.5

    def draw(size):
        return np.array([next(stream) for _ in range(size)])

    stopped = sequential_p_value(94.5, draw, max_draws=200, stop_after=3)
    assert (stopped.n_draws, stopped.exceedances, stopped.p_value) == (98, 3, 3 / 98)
    never = sequential_p_value(1e9, lambda size: np.zeros(size), max_draws=50)
    assert (never.n_draws, never.p_value) == (50, 1 / 51)
    assert draws_for_level(1 / 3000) == 2999 and draws_for_level(0.05) == 19
