"""EvidentlyDriftMonitor: golden stream, Evidently's decision, constant columns, HTML report, bad inputs, state."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pandas as pd
import pytest

import monitors.data_drift as module
from monitors import MonitorConfigError, MonitorInputError, MonitorNotFittedError
from monitors.data_drift import EvidentlyDriftMonitor

COLUMNS = ["a", "b", "c", "d"]


def table(g, n, shift=0.0):
    return pd.DataFrame(g.normal(size=(n, 4)) + shift, columns=COLUMNS)


@pytest.fixture(scope="module")
def fitted():
    g = np.random.default_rng(10)
    return EvidentlyDriftMonitor().fit(table(g, 300)), g


def test_docstring_example():
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 4 and result.failed == 0


def test_golden_stream_alarms_only_after_the_shift(fitted):
    monitor, g = fitted
    stream = [table(g, 150) for _ in range(3)] + [table(g, 150, shift=[1.0, 1.0, 1.0, 0.0]) for _ in range(2)]
    results = [monitor.check(batch) for batch in stream]
    assert [r.alarm for r in results] == [False] * 3 + [True] * 2
    assert all(r.alarm == r.details["dataset_drift"] == (r.score > r.threshold) for r in results)
    assert results[-1].details["n_drifted_columns"] >= 3
    assert set("abc") <= set(results[-1].details["drifted_columns"].split(", "))


def test_exactly_at_drift_share_is_drift_as_in_evidently():
    g = np.random.default_rng(0)
    monitor = EvidentlyDriftMonitor(drift_share=0.5).fit(g.normal(size=(200, 2)))
    result = monitor.check(g.normal(size=(200, 2)) + [3.0, 0.0])
    assert result.score == 0.5 and result.details["dataset_drift"] and result.alarm


def test_a_constant_reference_column_does_not_crash(fitted):
    g = np.random.default_rng(1)
    reference = table(g, 100).assign(constant=1.0, flag="x")
    monitor = EvidentlyDriftMonitor().fit(reference)
    result = monitor.check(table(g, 50).assign(constant=1.0, flag="x"))
    assert result.details["n_columns"] == 6 and not result.alarm
    assert monitor.check(table(g, 50).assign(constant=2.0, flag="y")).details["n_drifted_columns"] >= 1


def test_html_report_of_the_last_checked_batch(fitted, tmp_path):
    monitor, g = fitted
    html = monitor.report_html(table(g, 100, shift=[1.0, 0.0, 0.0, 0.0]))
    assert "<html" in html.lower() and "drift" in html.lower()
    path = monitor.save_html(tmp_path / "drift.html")
    saved = path.read_text(encoding="utf-8")  # widget ids are random per render, so compare content, not bytes
    assert "drift" in saved.lower() and abs(len(saved) - len(monitor.report_html())) < 1000


def test_html_report_needs_a_checked_batch():
    monitor = EvidentlyDriftMonitor().fit(np.random.default_rng(0).normal(size=(20, 2)))
    with pytest.raises(MonitorInputError, match="No batch has been checked"):
        monitor.report_html()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"drift_share": 0}, "0 < drift_share <= 1"),
        ({"drift_share": 1.5}, "0 < drift_share <= 1"),
        ({"method": ""}, "Evidently stat test"),
        ({"column_threshold": -1}, "column_threshold"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(MonitorConfigError, match=match):
        EvidentlyDriftMonitor(**kwargs)


@pytest.mark.parametrize(
    "batch,match",
    [
        (pd.DataFrame({"a": [1.0], "b": [1.0], "c": [1.0]}), r"Missing: \['d'\]"),
        (pd.DataFrame({c: [1.0] for c in [*COLUMNS, "e"]}), r"unexpected: \['e'\]"),
        (pd.DataFrame({c: [np.nan if c == "b" else 1.0] for c in COLUMNS}), r"missing values.*\['b'\]"),
        (pd.DataFrame({c: [np.inf if c == "c" else 1.0] for c in COLUMNS}), r"finite.*\['c'\]"),
        (pd.DataFrame({c: [] for c in COLUMNS}, dtype=float), "at least one row"),
        (pd.DataFrame({c: ["x" if c == "a" else 1.0] for c in COLUMNS}), r"\['a'\] must be numeric"),
    ],
)
def test_bad_tables(fitted, batch, match):
    monitor, _ = fitted
    with pytest.raises(MonitorInputError, match=match):
        monitor.check(batch)


@pytest.mark.parametrize(
    "batch,match",
    [
        (np.zeros((5, 3)), "must have 2 columns, as in the reference"),
        (np.array([[0.0, np.nan]]), "finite"),
        (np.zeros(4), "2-D"),
        (pd.DataFrame({"a": [0.0], "b": [1.0]}), r"Missing: \['x0', 'x1'\]"),
    ],
)
def test_bad_arrays(batch, match):
    monitor = EvidentlyDriftMonitor().fit(np.random.default_rng(0).normal(size=(20, 2)))
    with pytest.raises(MonitorInputError, match=match):
        monitor.check(batch)


def test_check_before_fit():
    with pytest.raises(MonitorNotFittedError):
        EvidentlyDriftMonitor().check(np.zeros((3, 2)))


def test_state_is_json_and_round_trips():
    g = np.random.default_rng(2)
    reference = table(g, 80).assign(flag=g.choice(["x", "y"], size=80), count=g.integers(0, 5, size=80))
    original = EvidentlyDriftMonitor(drift_share=0.3).fit(reference)
    restored = EvidentlyDriftMonitor()
    restored.load_state_dict(json.loads(json.dumps(original.state_dict())))
    batch = table(g, 40, shift=0.5).assign(flag=g.choice(["x", "y"], size=40), count=g.integers(0, 5, size=40))
    assert restored.check(batch) == original.check(batch)
