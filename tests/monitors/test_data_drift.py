"""EvidentlyDriftMonitor: golden stream, p-value and Evidently's decision, constant columns, HTML report, bad inputs, state.

The fast path's agreement with Evidently is in test_data_drift_evidently.py; calibration and
power of the p-value in test_data_drift_calibration.py.
"""

from __future__ import annotations

import doctest
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import monitors.data_drift as module
from monitors import MonitorConfigError, MonitorInputError, MonitorNotFittedError
from monitors.data_drift import EvidentlyDriftMonitor

COLUMNS = ["a", "b", "c", "d"]


def table(g, n, shift=0.0):
    return pd.DataFrame(g.normal(size=(n, 4)) + shift, columns=COLUMNS)


@pytest.fixture(scope="module")
def fitted():
    g = np.random.default_rng(10)
    return EvidentlyDriftMonitor(alpha=0.001).fit(table(g, 300)), g


def test_docstring_example():
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 4 and result.failed == 0


def test_golden_stream_alarms_only_after_the_shift(fitted):
    monitor, g = fitted
    stream = [table(g, 150) for _ in range(3)] + [table(g, 150, shift=[1.0, 1.0, 1.0, 0.0]) for _ in range(2)]
    results = [monitor.check(batch) for batch in stream]
    assert [r.alarm for r in results] == [False] * 3 + [True] * 2
    assert [r.details["dataset_drift"] for r in results] == [False] * 3 + [True] * 2
    assert all(r.alarm == (r.score > r.threshold) == (r.details["p_value"] <= 0.001) for r in results)
    assert results[-1].details["p_value"] == 1 / 1000  # the smallest p-value of max_draws = 999
    assert results[-1].details["n_drifted_columns"] >= 3
    assert set("abc") <= set(results[-1].details["drifted_columns"].split(", "))
    assert results[-1].details["most_drifted_column"] in "abc"


def test_score_and_threshold_are_minus_log10_of_p_and_alpha(fitted):
    monitor, g = fitted
    result = monitor.check(table(g, 100))
    assert result.threshold == pytest.approx(3.0)
    assert result.score == pytest.approx(-np.log10(result.details["p_value"]))
    assert 0 < result.details["p_value"] <= 1 and result.details["n_draws"] <= 999


@pytest.mark.parametrize("p_value,alpha", [(0.05, 0.05), (0.1, 0.1), (1 / 3000, 1 / 3000), (0.3, 0.3), (0.7, 0.7)])
def test_a_p_value_equal_to_alpha_alarms(p_value, alpha):
    alarm, score, threshold = module.log_score(p_value, alpha)
    assert alarm and score > threshold


@given(p=st.floats(1e-12, 1.0), alpha=st.floats(1e-6, 0.999))
def test_alarm_is_p_at_most_alpha_and_score_above_threshold(p, alpha):
    alarm, score, threshold = module.log_score(p, alpha)
    assert alarm == (p <= alpha) == (score > threshold)


def test_one_rescaled_column_is_found_among_many_quiet_ones():
    g = np.random.default_rng(4)
    reference = pd.DataFrame(g.integers(0, 17, size=(360, 16)), columns=[f"p{i}" for i in range(16)])
    batch = pd.DataFrame(g.integers(0, 17, size=(120, 16)), columns=reference.columns)
    batch["p3"] = batch["p3"] * 3
    result = EvidentlyDriftMonitor(alpha=0.001).fit(reference).check(batch)
    assert result.alarm and result.details["most_drifted_column"] == "p3"
    assert not result.details["dataset_drift"]  # one column of 16 is below Evidently's drift share


def test_the_same_seed_gives_the_same_p_values_and_another_seed_other_draws():
    g = np.random.default_rng(5)
    reference, batches = table(g, 200), [table(g, 60) for _ in range(3)]
    run = lambda seed: [EvidentlyDriftMonitor(seed=seed, alpha=0.01).fit(reference).check(b).details for b in batches]
    first, again, other = run(0), run(0), run(1)
    assert first == again
    assert [d["p_value"] for d in first] != [d["p_value"] for d in other]


def test_exactly_at_drift_share_is_drift_as_in_evidently():
    g = np.random.default_rng(0)
    monitor = EvidentlyDriftMonitor(drift_share=0.5).fit(g.normal(size=(200, 2)))
    result = monitor.check(g.normal(size=(200, 2)) + [3.0, 0.0])
    assert result.details["share_drifted_columns"] == 0.5 and result.details["dataset_drift"] and result.alarm


def test_a_constant_reference_column_does_not_crash(fitted):
    g = np.random.default_rng(1)
    reference = table(g, 100).assign(constant=1.0, flag="x")
    monitor = EvidentlyDriftMonitor().fit(reference)
    result = monitor.check(table(g, 50).assign(constant=1.0, flag="x"))
    assert result.details["n_columns"] == 6 and not result.alarm and not result.details["dataset_drift"]
    moved = monitor.check(table(g, 50).assign(constant=2.0, flag="y"))
    assert moved.details["n_drifted_columns"] >= 1 and moved.alarm


def test_only_constant_columns_give_p_value_one():
    monitor = EvidentlyDriftMonitor().fit(pd.DataFrame({"c": [1.0] * 30, "s": ["x"] * 30}))
    result = monitor.check(pd.DataFrame({"c": [1.0] * 10, "s": ["x"] * 10}))
    assert result.details["p_value"] == 1.0 and not result.alarm and result.details["most_drifted_column"] == ""


def test_html_report_of_a_batch_and_of_the_last_checked_batch(fitted, tmp_path):
    monitor, g = fitted
    html = monitor.report_html(table(g, 100, shift=[1.0, 0.0, 0.0, 0.0]))
    assert "<html" in html.lower() and "drift" in html.lower()
    saved = monitor.save_html(tmp_path / "drift.html").read_text(encoding="utf-8")  # the same batch's run
    assert "drift" in saved.lower() and abs(len(saved) - len(html)) < 1000  # widget ids are random per render
    monitor.check(table(g, 80))
    assert "drift" in monitor.save_html(tmp_path / "checked.html").read_text(encoding="utf-8").lower()


def test_check_does_not_call_evidently(fitted, monkeypatch):
    monitor, g = fitted
    monkeypatch.setattr(module, "_evidently", lambda: pytest.fail("check built an Evidently Report"))
    monitor.check(table(g, 50))


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
        ({"method": "psi"}, "one of 'ks', 'chisquare'"),
        ({"column_threshold": -1}, "column_threshold"),
        ({"alpha": 0}, "0 < alpha < 1"),
        ({"alpha": 1.0}, "0 < alpha < 1"),
        ({"alpha": 0.001, "max_draws": 998}, r"draws_for_level\(alpha\) = 999"),
        ({"max_draws": 18}, r"max_draws.*>= draws_for_level\(alpha\) = 19"),
        ({"max_draws": 50.0}, "must be an integer"),
        ({"seed": -1}, "`seed` must be an integer >= 0"),
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


def test_a_method_must_fit_the_column_types():
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0], "s": ["a", "b", "a"]})
    with pytest.raises(MonitorInputError, match=r"'ks' does not apply to the categorical columns \['s'\]"):
        EvidentlyDriftMonitor(method="ks").fit(frame)
    with pytest.raises(MonitorInputError, match=r"'chisquare' does not apply to the numeric columns \['x'\]"):
        EvidentlyDriftMonitor(method="chisquare").fit(frame)
    EvidentlyDriftMonitor(method="jensenshannon").fit(frame)


def test_check_before_fit():
    with pytest.raises(MonitorNotFittedError):
        EvidentlyDriftMonitor().check(np.zeros((3, 2)))


def test_state_is_json_and_round_trips():
    g = np.random.default_rng(2)
    reference = table(g, 80).assign(flag=g.choice(["x", "y"], size=80), count=g.integers(0, 5, size=80))
    original = EvidentlyDriftMonitor(drift_share=0.3, alpha=0.01, seed=7).fit(reference)
    batch = table(g, 40, shift=0.2).assign(flag=g.choice(["x", "y"], size=40), count=g.integers(0, 5, size=40))
    original.check(batch)  # the generator has moved on; the restored one continues from there
    restored = EvidentlyDriftMonitor()
    restored.load_state_dict(json.loads(json.dumps(original.state_dict())))
    assert restored.config == original.config
    assert [restored.check(batch) for _ in range(2)] == [original.check(batch) for _ in range(2)]


def test_a_version_1_state_loads_with_the_new_defaults():
    g = np.random.default_rng(3)
    reference = EvidentlyDriftMonitor(drift_share=0.3).fit(table(g, 50)).state_dict()["state"]["reference"]
    # the layout version 1 wrote: options before the p-value, the reference table, no generator
    state = {"version": 1, "config": {"drift_share": 0.3, "method": None, "column_threshold": None}, "reference": reference}
    restored = EvidentlyDriftMonitor()
    restored.load_state_dict(state)
    assert restored.config["alpha"] == 0.05 and restored.check(table(g, 20)).threshold == pytest.approx(-np.log10(0.05))
