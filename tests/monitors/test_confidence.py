"""ConfidenceMonitor: golden stream, limits, bad inputs, state."""

from __future__ import annotations

import doctest
import json
import math

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
    monitor = ConfidenceMonitor(k=4).fit(softmax(3 * g.normal(size=(3000, 5))))
    before = [softmax(3 * g.normal(size=(200, 5))) for _ in range(10)]
    stream = before + [softmax(1.5 * g.normal(size=(200, 5))) for _ in range(5)]
    assert [monitor.check(batch).alarm for batch in stream] == [False] * 10 + [True] * 5


def test_limit_is_k_standard_errors_below_the_reference_mean():
    reference = np.array([[0.9, 0.1], [0.7, 0.3], [0.6, 0.4], [0.8, 0.2]])
    batch = np.array([[0.55, 0.45], [0.5, 0.5]])
    result = ConfidenceMonitor(k=2).fit(reference).check(batch)
    s = np.std([0.9, 0.7, 0.6, 0.8], ddof=1)
    assert result.details["limit"] == pytest.approx(0.75 - 2 * s * math.sqrt(1 / 2 + 1 / 4))
    assert result.score == pytest.approx(0.75 - 0.525)
    assert result.threshold == pytest.approx(2 * s * math.sqrt(1 / 2 + 1 / 4))
    assert result.alarm == (result.score > result.threshold)


def test_fixed_minimum_confidence():
    reference = np.array([[0.9, 0.1], [0.8, 0.2]])
    monitor = ConfidenceMonitor(min_confidence=0.7).fit(reference)
    assert not monitor.check([[0.75, 0.25]]).alarm
    assert monitor.check([[0.65, 0.35]]).alarm


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"k": 0}, "k > 0"),
        ({"k": -1}, "k > 0"),
        ({"k": math.inf}, "finite"),
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
    original = ConfidenceMonitor(k=2.5).fit(softmax(g.normal(size=(100, 4))))
    restored = ConfidenceMonitor()
    restored.load_state_dict(json.loads(json.dumps(original.state_dict())))
    batch = softmax(g.normal(size=(30, 4)))
    assert restored.check(batch) == original.check(batch)
