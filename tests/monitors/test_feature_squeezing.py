"""FeatureSqueezingMonitor: an exact tail-share test; the squeezers; bad input."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch
from scipy import stats

import monitors.feature_squeezing as module
from monitors import MonitorConfigError, MonitorInputError
from monitors.feature_squeezing import FeatureSqueezingMonitor
from trustops.monitoring.squeezing import reduce_bit_depth, squeezing_scores


def test_docstring_example():
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 4 and result.failed == 0


def test_false_alarm_rate_is_at_most_alpha_on_exchangeable_scores():
    """2,000 fresh reference/batch pairs (seed 4) of heavy-tailed scores with ties; one-sided binomial test at 0.001.

    A count test is discrete, so it is conservative (3.3% at alpha = 5% here): never above alpha.
    """
    g = np.random.default_rng(4)
    alarms = 0
    for _ in range(2000):
        scores = np.round(g.exponential(0.05, size=180), 2)  # rounding makes ties at the cut
        alarms += FeatureSqueezingMonitor(alpha=0.05).fit(scores[:120]).check(scores[120:]).alarm
    assert stats.binomtest(alarms, 2000, 0.05, alternative="greater").pvalue > 1e-3
    assert alarms / 2000 > 0.02  # conservative, not blind


def test_p_value_is_the_hypergeometric_tail_of_the_count_above_the_pooled_cut():
    reference = np.arange(80) / 100  # 0.00 ... 0.79
    batch = np.array([0.9, 0.95, 0.99, 0.1, 0.2])
    result = FeatureSqueezingMonitor(alpha=0.01, tail_quantile=0.9).fit(reference).check(batch)
    cut = np.quantile(np.concatenate([reference, batch]), 0.9)
    above = int((np.concatenate([reference, batch]) > cut).sum())
    assert result.details["n_tail"] == 3
    assert result.details["p_value"] == pytest.approx(stats.hypergeom.sf(2, 85, above, 5))
    assert result.alarm == (result.score > result.threshold)


@pytest.mark.parametrize("options,match", [({"alpha": 0}, "0 < alpha < 1"), ({"tail_quantile": 1.0}, "0 < tail_quantile < 1")])
def test_bad_options(options, match):
    with pytest.raises(MonitorConfigError, match=match):
        FeatureSqueezingMonitor(**options)


@pytest.mark.parametrize("batch,match", [([-0.1, 0.2], ">= 0"), ([np.nan], "finite"), ([], "at least 1 row")])
def test_bad_scores(batch, match):
    with pytest.raises(MonitorInputError, match=match):
        FeatureSqueezingMonitor().fit([0.1, 0.2, 0.3]).check(batch)


def test_bit_depth_reduction_keeps_the_range_and_has_two_to_the_bits_levels():
    values = torch.linspace(-2, 18, 1001)
    squeezed = reduce_bit_depth(values, 2, (0.0, 16.0))
    assert squeezed.min() == 0 and squeezed.max() == 16
    assert sorted(set(squeezed.tolist())) == pytest.approx([0.0, 16 / 3, 32 / 3, 16.0])


def test_squeezing_scores_are_zero_for_a_model_that_ignores_detail_and_large_for_one_that_does_not():
    torch.manual_seed(0)
    inputs = torch.rand(50, 4) * 16

    class Coarse(torch.nn.Module):  # sees only whether a value is in the upper half: squeezing to 1 bit changes nothing
        def forward(self, x):
            return torch.stack([(x > 8).float().sum(1), (x <= 8).float().sum(1)], dim=1) * 10

    class Fine(torch.nn.Module):  # sees the fractional detail that squeezing removes
        def forward(self, x):
            return torch.stack([torch.sin(7 * x).sum(1), -torch.sin(7 * x).sum(1)], dim=1) * 10

    assert squeezing_scores(Coarse(), inputs, (0.0, 16.0)).max() < 1e-6
    assert squeezing_scores(Fine(), inputs, (0.0, 16.0)).mean() > 0.5
