"""PredictionShiftMonitor: golden stream, exact alarm convention, bad inputs, state."""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import monitors.prediction_shift as module
from monitors import MonitorConfigError, MonitorInputError, MonitorNotFittedError
from monitors.prediction_shift import PredictionShiftMonitor
from monitors.sequential import log_score

MIX = [0.5, 0.3, 0.2]


def test_docstring_example():
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 4 and result.failed == 0


def test_golden_stream_alarms_only_after_the_shift():
    g = np.random.default_rng(2024)
    monitor = PredictionShiftMonitor(alpha=0.001).fit(g.choice(3, size=5000, p=MIX))
    before = [g.choice(3, size=300, p=MIX) for _ in range(10)]
    stream = before + [g.choice(3, size=300, p=[0.3, 0.3, 0.4]) for _ in range(5)]
    alarms = [monitor.check(batch).alarm for batch in stream]
    assert alarms == [False] * 10 + [True] * 5


def test_false_alarm_rate_is_alpha_with_a_small_reference():
    """400 fresh pairs (seed 5) of a 120-row reference and a 40-row batch, 4 classes with a rare one.

    A goodness-of-fit test that takes the reference mix as known rejects far too often here; the
    homogeneity permutation test is exact.  Binomial test of the alarm count at level 0.001.
    """
    from scipy import stats

    g = np.random.default_rng(5)
    mix = [0.5, 0.3, 0.15, 0.05]
    alarms = sum(
        PredictionShiftMonitor(alpha=0.05, seed=i).fit(g.choice(4, size=120, p=mix)).check(g.choice(4, size=40, p=mix)).alarm
        for i in range(400)
    )
    assert stats.binomtest(alarms, 400, 0.05).pvalue > 1e-3


def test_probabilities_are_reduced_to_their_argmax():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    a = PredictionShiftMonitor().fit(probabilities).check(probabilities)
    b = PredictionShiftMonitor().fit(probabilities.argmax(1)).check(probabilities.argmax(1))
    assert a == b and a.details["p_value"] == pytest.approx(1.0)


def test_an_unseen_class_alarms():
    monitor = PredictionShiftMonitor(alpha=0.01).fit(np.repeat([0, 1], 200))
    result = monitor.check(np.repeat([0, 1, 2], 30))
    assert math.isfinite(result.score) and result.alarm and result.details["unseen_classes"] == 1


@given(p=st.floats(0, 1), alpha=st.floats(1e-12, 1, exclude_max=True, exclude_min=True))
def test_log_score_alarm_is_exactly_p_at_most_alpha_and_score_above_threshold(p, alpha):
    alarm, score, threshold = log_score(p, alpha)
    assert alarm == (p <= alpha) == (score > threshold)
    assert math.isfinite(score)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"alpha": 1.5}, "0 < alpha < 1"),
        ({"alpha": 0}, "0 < alpha < 1"),
        ({"n_classes": 1}, "`n_classes` must be an integer >= 2"),
        ({"alpha": 0.01, "max_draws": 50}, "max_draws` must be >= 99"),
        ({"method": "fisher"}, "'pearson', 'g_test'"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(MonitorConfigError, match=match):
        PredictionShiftMonitor(**kwargs)


@pytest.mark.parametrize(
    "batch,match",
    [
        ([0, 1, 1.5], "integer class indices"),
        ([0, -1], "integer class indices"),
        ([0, np.nan], "integer class indices"),
        ([], "at least 1"),
        (np.zeros((2, 2, 2)), r"shape-\(N,\)"),
        ([[0.5, 0.6], [0.5, 0.5]], "sum to 1"),
        ([0, 3], "n_classes=3"),
    ],
)
def test_bad_batches(batch, match):
    monitor = PredictionShiftMonitor(n_classes=3).fit([0, 1, 2, 1])
    with pytest.raises(MonitorInputError, match=match):
        monitor.check(batch)


def test_check_before_fit():
    with pytest.raises(MonitorNotFittedError, match="before fit"):
        PredictionShiftMonitor().check([0, 1])


def test_state_is_json_and_round_trips():
    g = np.random.default_rng(3)
    original = PredictionShiftMonitor(method="g_test").fit(g.choice(3, size=500, p=MIX))
    restored = PredictionShiftMonitor()
    restored.load_state_dict(json.loads(json.dumps(original.state_dict())))
    batch = g.choice(3, size=100)
    assert restored.check(batch) == original.check(batch)
    with pytest.raises(MonitorInputError, match="PredictionShiftMonitor cannot load this state: got version 99"):
        restored.load_state_dict({"version": 99})
