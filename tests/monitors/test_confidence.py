"""ConfidenceMonitor: golden stream, limits, bad inputs, state."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest

import monitors.confidence as module
from monitors import MonitorConfigError, MonitorInputError, MonitorNotFittedError
from monitors.confidence import ConfidenceMonitor


def softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_docstring_example():
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 4 and result.failed == 0


def test_golden_stream_alarms_only_after_the_model_gets_unsure():
    g = np.random.default_rng(11)
    monitor = ConfidenceMonitor(alpha=1 / 3000).fit(softmax(3 * g.normal(size=(3000, 5))))
    before = [softmax(3 * g.normal(size=(200, 5))) for _ in range(10)]
    stream = before + [softmax(1.5 * g.normal(size=(200, 5))) for _ in range(5)]
    assert [monitor.check(batch).alarm for batch in stream] == [False] * 10 + [True] * 5


def test_p_value_is_the_share_of_splits_with_a_drop_at_least_as_large():
    """Exhaustive check on 4 + 2 values: 15 splits, of which exactly one (the observed) has the largest drop."""
    reference = np.array([[0.9, 0.1], [0.7, 0.3], [0.6, 0.4], [0.8, 0.2]])
    batch = np.array([[0.55, 0.45], [0.5, 0.5]])
    result = ConfidenceMonitor(alpha=0.05, max_draws=20_000, stop_after=20_000, seed=1).fit(reference).check(batch)
    assert result.details["p_value"] == pytest.approx(1 / 15, abs=0.006)  # Monte Carlo error of 20,000 draws
    assert result.details["confidence_drop"] == pytest.approx(0.75 - 0.525)
    assert result.alarm == (result.score > result.threshold) == (result.details["p_value"] <= 0.05)


def test_a_more_confident_batch_is_never_an_alarm():
    g = np.random.default_rng(5)
    monitor = ConfidenceMonitor(alpha=0.05).fit(softmax(g.normal(size=(500, 4))))
    result = monitor.check(softmax(6 * g.normal(size=(200, 4))))
    assert result.details["confidence_drop"] < 0 and not result.alarm and result.details["p_value"] > 0.5


@pytest.mark.slow
def test_false_alarm_rate_is_alpha_on_exchangeable_batches():
    """1,000 fresh reference/batch pairs (seed 9) from one skewed confidence law; binomial test at 0.001."""
    from scipy import stats

    g = np.random.default_rng(9)
    alarms = 0
    for _ in range(1000):
        monitor = ConfidenceMonitor(alpha=0.05, seed=int(g.integers(1 << 30))).fit(softmax(3 * g.normal(size=(60, 5))))
        alarms += monitor.check(softmax(3 * g.normal(size=(20, 5)))).alarm
    assert stats.binomtest(alarms, 1000, 0.05).pvalue > 1e-3


def test_fixed_minimum_confidence():
    reference = np.array([[0.9, 0.1], [0.8, 0.2]])
    monitor = ConfidenceMonitor(min_confidence=0.7).fit(reference)
    assert not monitor.check([[0.75, 0.25]]).alarm
    assert monitor.check([[0.65, 0.35]]).alarm


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"alpha": 0}, "0 < alpha < 1"),
        ({"alpha": 0.001, "max_draws": 500}, "max_draws` must be >= 999"),
        ({"stop_after": 0}, "`stop_after` must be an integer >= 1"),
        ({"min_confidence": 1.0}, "0 < min_confidence < 1"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(MonitorConfigError, match=match):
        ConfidenceMonitor(**kwargs)


@pytest.mark.parametrize(
    "batch,match",
    [
        ([[0.5, 0.5]], "3 columns"),
        ([0.5, 0.5, 0.0], "2-D"),
        ([[np.nan, 1.0, 0.0]], "finite"),
        ([[1.5, -0.5, 0.0]], r"\[0, 1\]"),
        ([[0.5, 0.4, 0.0]], "sum to 1"),
        (np.empty((0, 3)), "at least 1 row"),
    ],
)
def test_bad_batches(batch, match):
    monitor = ConfidenceMonitor().fit(softmax(np.random.default_rng(0).normal(size=(10, 3))))
    with pytest.raises(MonitorInputError, match=match):
        monitor.check(batch)


def test_reference_needs_two_rows_and_fit_comes_first():
    with pytest.raises(MonitorInputError, match="at least 2 row"):
        ConfidenceMonitor().fit([[0.5, 0.5]])
    with pytest.raises(MonitorNotFittedError):
        ConfidenceMonitor().check([[0.5, 0.5]])


def test_state_is_json_and_round_trips():
    g = np.random.default_rng(4)
    original = ConfidenceMonitor(alpha=0.02).fit(softmax(g.normal(size=(100, 4))))
    restored = ConfidenceMonitor()
    restored.load_state_dict(json.loads(json.dumps(original.state_dict())))
    batch = softmax(g.normal(size=(30, 4)))
    assert restored.check(batch) == original.check(batch)
