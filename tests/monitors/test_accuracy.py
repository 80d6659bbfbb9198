"""AccuracyMonitor: golden stream, input forms, bad inputs, state."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest

import monitors.accuracy as module
from monitors import MonitorConfigError, MonitorInputError, MonitorNotFittedError
from monitors.accuracy import AccuracyMonitor


def labelled(g, n, error_rate, n_classes=10):
    labels = g.integers(0, n_classes, size=n)
    return np.where(g.random(n) < error_rate, (labels + 1) % n_classes, labels), labels


def test_docstring_example():
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 4 and result.failed == 0


def test_golden_stream_alarms_only_after_accuracy_drops():
    g = np.random.default_rng(8)
    monitor = AccuracyMonitor(alpha=1 / 3000).fit(labelled(g, 5000, 0.1))
    stream = [labelled(g, 400, 0.1) for _ in range(10)] + [labelled(g, 400, 0.3) for _ in range(5)]
    assert [monitor.check(batch).alarm for batch in stream] == [False] * 10 + [True] * 5


def test_tuple_mapping_probabilities_and_a_plain_reference_accuracy_agree():
    predictions, labels = np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2])
    probabilities = np.eye(3)[predictions]
    monitor = AccuracyMonitor(alpha=0.05).fit(0.9)
    results = [
        monitor.check((predictions, labels)),
        monitor.check({"predictions": probabilities, "labels": labels}),
        monitor.check([list(predictions), list(labels)]),
    ]
    assert all(r == results[0] for r in results)
    # a plain reference accuracy is taken as exact: binomial P(X <= 3 | n=4, p=0.9) = 1 - 0.9**4
    assert results[0].details["accuracy"] == 0.75 and results[0].details["p_value"] == pytest.approx(1 - 0.9**4)
    assert not results[0].alarm


def test_p_value_is_fishers_exact_test_and_an_equal_accuracy_never_alarms():
    from scipy import stats

    reference = (np.array([1] * 90 + [0] * 10), np.ones(100, dtype=int))  # 90 of 100 correct
    monitor = AccuracyMonitor(alpha=0.01).fit(reference)
    worse = monitor.check((np.array([1] * 30 + [0] * 10), np.ones(40, dtype=int)))  # 30 of 40
    expected = stats.fisher_exact([[30, 10], [90, 10]], alternative="less").pvalue
    assert worse.details["p_value"] == pytest.approx(expected, rel=1e-9)
    same = monitor.check((np.array([1] * 36 + [0] * 4), np.ones(40, dtype=int)))  # 36 of 40: as accurate
    assert same.details["p_value"] > 0.4 and not same.alarm


def test_min_drop_keeps_a_tiny_significant_drop_quiet():
    g = np.random.default_rng(3)
    monitor = AccuracyMonitor(alpha=0.05, min_drop=0.2).fit(labelled(g, 20_000, 0.1))
    result = monitor.check(labelled(g, 20_000, 0.15))
    assert result.details["p_value"] < 1e-6 and not result.alarm and result.score == 0.0


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"min_drop": -0.1}, "0 <= min_drop < 1"),
        ({"min_drop": 1}, "0 <= min_drop < 1"),
        ({"alpha": "x"}, "finite real"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(MonitorConfigError, match=match):
        AccuracyMonitor(**kwargs)


@pytest.mark.parametrize(
    "batch,match",
    [
        (([0, 1, 1], [0, 1]), "same length. Got: 3 predictions and 2 labels"),
        ({"predictions": [0, 1]}, "Missing: \\['labels'\\]"),
        (np.array([0, 1]), "tuple or a mapping"),
        (([0, 1], [[0, 1], [1, 0]]), "labels must be shape-\\(N,\\)"),
        (([0, np.nan], [0, 1]), "integer class indices"),
        (([0, 1], [0, -1]), "integer class indices"),
        (([], []), "at least 1"),
    ],
)
def test_bad_batches(batch, match):
    monitor = AccuracyMonitor().fit(([0, 1], [0, 1]))
    with pytest.raises(MonitorInputError, match=match):
        monitor.check(batch)


def test_check_before_fit():
    with pytest.raises(MonitorNotFittedError):
        AccuracyMonitor().check(([0], [0]))


def test_state_is_json_and_round_trips():
    g = np.random.default_rng(1)
    original = AccuracyMonitor(alpha=0.02).fit(labelled(g, 300, 0.2))
    restored = AccuracyMonitor()
    restored.load_state_dict(json.loads(json.dumps(original.state_dict())))
    batch = labelled(g, 100, 0.25)
    assert restored.check(batch) == original.check(batch)
