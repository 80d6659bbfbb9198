"""InputExpectationsMonitor on tiny tables: range, labels, missing values, bad inputs, state."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pandas as pd
import pytest

import monitors.input_expectations as module
from monitors import MonitorConfigError, MonitorInputError, MonitorNotFittedError
from monitors.input_expectations import InputExpectationsMonitor


def table(g, n, scale=1.0, classes=(0, 1)):
    frame = pd.DataFrame(scale * g.uniform(0, 1, size=(n, 2)), columns=["a", "b"])
    return frame.assign(label=np.resize(classes, n))


def test_docstring_example():
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 4 and result.failed == 0


def test_stream_with_labels_alarms_on_range_and_unknown_classes():
    g = np.random.default_rng(0)
    monitor = InputExpectationsMonitor(label_column="label").fit(table(g, 200))
    clean = [monitor.check(table(g, 20, scale=0.95)) for _ in range(2)]
    out_of_range = monitor.check(table(g, 20, scale=3.0))
    new_class = monitor.check(table(g, 20, scale=0.95, classes=(0, 1, 2)))
    assert [r.alarm for r in clean] == [False, False] and all(r.score == 0.0 for r in clean)
    assert out_of_range.alarm
    assert "expect_column_values_to_be_between[a]" in out_of_range.details["failed_expectations"]
    assert new_class.alarm and "expect_column_values_to_be_in_set[label]" in new_class.details["failed_expectations"]
    assert out_of_range.score == out_of_range.details["n_failed"] / out_of_range.details["n_evaluated"]


def test_missing_values_and_extra_columns_are_failed_expectations():
    g = np.random.default_rng(1)
    monitor = InputExpectationsMonitor().fit(table(g, 50).drop(columns="label"))
    batch = table(g, 10, scale=0.9).drop(columns="label")
    batch.loc[2, "a"] = np.nan
    result = monitor.check(batch.assign(extra=1.0))
    failed = result.details["failed_expectations"]
    assert result.alarm
    assert "expect_column_values_to_not_be_null[a]" in failed and "expect_table_columns_to_match_set" in failed
    assert result.details["n_evaluated"] == 8  # the label stand-in's expectations are not counted


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"label_column": ""}, "label_column"),
        ({"feature_columns": "a"}, "feature_columns"),
        ({"feature_columns": ["a", "label"], "label_column": "label"}, "must not contain the label"),
        ({"range_margin": -0.1}, "range_margin"),
        ({"min_rows": 0}, "min_rows >= 1"),
        ({"max_class_kl": -1}, "max_class_kl"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(MonitorConfigError, match=match):
        InputExpectationsMonitor(**kwargs)


@pytest.mark.parametrize(
    "batch,match",
    [
        (np.zeros((3, 2)), "pandas DataFrame"),
        (pd.DataFrame(), "empty"),
        (pd.DataFrame({"a": [0.1], "b": [0.2]}), "no label column 'label'"),
    ],
)
def test_bad_batches(batch, match):
    monitor = InputExpectationsMonitor(label_column="label").fit(table(np.random.default_rng(0), 20))
    with pytest.raises(MonitorInputError, match=match):
        monitor.check(batch)


def test_bad_references():
    with pytest.raises(MonitorInputError, match="finite numbers"):
        InputExpectationsMonitor().fit(pd.DataFrame({"a": [0.0, np.nan]}))
    with pytest.raises(MonitorInputError, match="lacks the feature columns"):
        InputExpectationsMonitor(feature_columns=["z"]).fit(pd.DataFrame({"a": [0.0]}))
    with pytest.raises(MonitorNotFittedError):
        InputExpectationsMonitor().check(pd.DataFrame({"a": [0.0]}))


def test_state_is_json_and_round_trips():
    g = np.random.default_rng(3)
    original = InputExpectationsMonitor(label_column="label", range_margin=0.1).fit(table(g, 40))
    restored = InputExpectationsMonitor()
    restored.load_state_dict(json.loads(json.dumps(original.state_dict())))
    batch = table(g, 10, scale=1.2)
    assert restored.check(batch) == original.check(batch)
