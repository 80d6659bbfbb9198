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
    monitor = AccuracyMonitor(tolerance=0.08).fit(labelled(g, 5000, 0.1))
    stream = [labelled(g, 400, 0.1) for _ in range(10)] + [labelled(g, 400, 0.3) for _ in range(5)]
    assert [monitor.check(batch).alarm for batch in stream] == [False] * 10 + [True] * 5


def test_tuple_mapping_probabilities_and_a_plain_reference_accuracy_agree():
    predictions, labels = np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2])
    probabilities = np.eye(3)[predictions]
    monitor = AccuracyMonitor(tolerance=0.1).fit(0.9)
    results = [
        monitor.check((predictions, labels)),
        monitor.check({"predictions": probabilities, "labels": labels}),
        monitor.check([list(predictions), list(labels)]),
    ]
    assert all(r == results[0] for r in results)
    assert results[0].details["accuracy"] == 0.75 and results[0].score == pytest.approx(0.15) and results[0].alarm


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"tolerance": -0.1}, "0 <= tolerance < 1"),
        ({"tolerance": 1}, "0 <= tolerance < 1"),
        ({"tolerance": "x"}, "finite real"),
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
    original = AccuracyMonitor(tolerance=0.02).fit(labelled(g, 300, 0.2))
    restored = AccuracyMonitor()
    restored.load_state_dict(json.loads(json.dumps(original.state_dict())))
    batch = labelled(g, 100, 0.25)
    assert restored.check(batch) == original.check(batch)
