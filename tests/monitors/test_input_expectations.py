"""InputExpectationsMonitor on tiny tables: ranges, labels, missing values, bad inputs, state.

Agreement with a Great Expectations run of the same suite: test_input_expectations_great_expectations.py.
"""

from __future__ import annotations

import doctest
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

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
        ({"min_rows": 0}, "`min_rows` must be an integer >= 1"),
        ({"max_class_kl": -1}, "max_class_kl"),
        ({"value_range": (1.0, 0.0)}, "low <= high"),
        ({"value_range": (0.0,)}, "pair of finite numbers"),
        ({"value_range": (0.0, np.inf)}, "pair of finite numbers"),
        ({"value_range": "0-16"}, "pair of finite numbers"),
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


def test_check_does_not_run_great_expectations(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "great_expectations", None)  # importing it would now fail
    g = np.random.default_rng(4)
    monitor = InputExpectationsMonitor(label_column="label").fit(table(g, 50))
    assert monitor.check(table(g, 10, scale=5.0)).alarm


def test_each_feature_gets_its_own_range_widened_by_its_spread():
    g = np.random.default_rng(5)
    reference = pd.DataFrame({"narrow": g.normal(0, 0.01, 500), "wide": g.normal(0, 100, 500)})
    monitor = InputExpectationsMonitor(range_margin=2.0).fit(reference)
    low, high = monitor.state_dict()["state"]["fitted"]["low"], monitor.state_dict()["state"]["fitted"]["high"]
    std = reference.std(ddof=0).to_numpy()
    assert low == pytest.approx(reference.min().to_numpy() - 2 * std)
    assert high == pytest.approx(reference.max().to_numpy() + 2 * std)
    # 5 is far outside the narrow column's range and well inside the wide one's.
    result = monitor.check(pd.DataFrame({"narrow": [0.0, 5.0], "wide": [5.0, 0.0]}))
    assert result.details["failed_expectations"] == "expect_column_values_to_be_between[narrow]"


def test_declared_value_range_replaces_the_learned_one():
    g = np.random.default_rng(6)
    reference = pd.DataFrame(g.integers(0, 5, size=(100, 3)), columns=["p0", "p1", "p2"])
    declared = InputExpectationsMonitor(value_range=(0, 16)).fit(reference)
    learned = InputExpectationsMonitor().fit(reference)
    batch = pd.DataFrame({"p0": [16, 0], "p1": [0, 0], "p2": [3, 17]})
    assert declared.check(batch).details["failed_expectations"] == "expect_column_values_to_be_between[p2]"
    assert "expect_column_values_to_be_between[p0]" in learned.check(batch).details["failed_expectations"]


def test_clean_digit_like_batches_rarely_fall_outside_the_learned_ranges():
    g = np.random.default_rng(7)
    means = np.linspace(0.02, 0.6, 64)
    columns = [f"pixel_{i}" for i in range(64)]
    draw = lambda n: pd.DataFrame(g.binomial(16, means, size=(n, 64)), columns=columns)
    monitor = InputExpectationsMonitor().fit(draw(360))
    alarms = sum(monitor.check(draw(120)).alarm for _ in range(100))
    assert alarms <= 5


@given(
    values=hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=20),
                      elements=st.floats(-1e6, 1e6)),
    margin=st.floats(0.0, 5.0),
)
def test_the_reference_always_meets_its_own_learned_ranges(values, margin):
    frame = pd.DataFrame(values, columns=[f"x{i}" for i in range(values.shape[1])])
    monitor = InputExpectationsMonitor(range_margin=margin).fit(frame)
    assert not monitor.check(frame).alarm


def test_an_old_single_range_state_is_refused_with_a_hint():
    state = {"version": 1, "config": {"label_column": None, "feature_columns": None, "range_margin": 0.0,
                                      "min_rows": 1, "max_class_kl": 0.05},
             "fitted": {"feature_columns": ["a"], "value_range": [0.0, 1.0], "classes": None}}
    with pytest.raises(MonitorInputError, match="fit the monitor again"):
        InputExpectationsMonitor().load_state_dict(state)
