"""The permutation p-value of EvidentlyDriftMonitor is calibrated on exchangeable data and has power.

Calibration: 2,000 independent (reference, batch) draws from one distribution, each checked by a
freshly fitted monitor; the share of p-values at or below alpha must lie in the binomial 99%
interval of alpha (alpha = 0.05 with the default 19 draws, and 0.01 with 99).  The tables mix
the column kinds the loop sees: tied small integers, binary, continuous and categorical.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from monitors.data_drift import EvidentlyDriftMonitor

N_TRIALS = 2000


def mixed_table(g: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pixel": g.binomial(16, 0.3, n),
            "pixel_sparse": g.binomial(16, 0.05, n),
            "few": g.integers(0, 4, n),
            "binary": g.integers(0, 2, n),
            "continuous": g.normal(size=n),
            "skewed": g.exponential(size=n),
            "letter": g.choice(list("abc"), n, p=[0.6, 0.3, 0.1]),
        }
    )


def pixel_table(g: np.random.Generator, n: int, d: int = 64) -> pd.DataFrame:
    """Digit-like pixels: integers 0..16, each column with its own mean, a few constant columns."""
    means = np.linspace(0.0, 0.6, d)
    return pd.DataFrame(g.binomial(16, means, size=(n, d)), columns=[f"pixel_{i}" for i in range(d)])


@pytest.mark.slow  # ~1 min per level: 2,000 fits and checks
@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_rejection_rate_on_exchangeable_data_is_alpha(alpha):
    g = np.random.default_rng(2024)
    p_values = np.empty(N_TRIALS)
    for trial in range(N_TRIALS):
        monitor = EvidentlyDriftMonitor(alpha=alpha, seed=trial).fit(mixed_table(g, 45))
        p_values[trial] = monitor.check(mixed_table(g, 15)).details["p_value"]
    low, high = stats.binom.interval(0.99, N_TRIALS, alpha)
    rejections = int((p_values <= alpha).sum())
    assert low <= rejections <= high, f"{rejections} of {N_TRIALS} p-values <= {alpha}; 99% interval [{low}, {high}]"
    # The p-value of a clean batch is spread over (0, 1], not piled at 1 by ties.
    assert 0.35 < np.mean(p_values <= 0.5) < 0.65


def test_a_column_rescaled_three_times_gives_a_p_value_below_one_in_a_thousand():
    g = np.random.default_rng(11)
    monitor = EvidentlyDriftMonitor(alpha=0.001, max_draws=1999).fit(pixel_table(g, 360))
    batch = pixel_table(g, 120)
    batch["pixel_40"] = batch["pixel_40"] * 3
    result = monitor.check(batch)
    assert result.details["p_value"] < 1e-3 and result.alarm
    assert result.details["most_drifted_column"] == "pixel_40"


def test_a_shift_of_two_on_every_column_gives_a_p_value_below_one_in_a_thousand():
    g = np.random.default_rng(12)
    monitor = EvidentlyDriftMonitor(alpha=0.001, max_draws=1999).fit(pixel_table(g, 360))
    result = monitor.check(pixel_table(g, 120) + 2)
    assert result.details["p_value"] < 1e-3 and result.alarm and result.details["dataset_drift"]


def test_clean_digit_like_batches_rarely_page_at_a_small_level():
    g = np.random.default_rng(13)
    monitor = EvidentlyDriftMonitor(alpha=1 / 3000).fit(pixel_table(g, 360))
    results = [monitor.check(pixel_table(g, 120)) for _ in range(20)]
    assert not any(r.alarm for r in results)
    assert np.mean([r.details["n_draws"] for r in results]) < 200  # Besag-Clifford stops early on clean batches
