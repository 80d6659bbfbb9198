"""The vectorised fast path of EvidentlyDriftMonitor decides as Evidently 0.7 does.

Per column (Hypothesis): the test Evidently's ``_get_default_stattest`` picks, its score and its
decision, against Evidently's own stat-test functions.  Per table: the drifted-column set and the
dataset-drift decision against a full ``Report([DataDriftPreset()])`` (slow, so few tables).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitors import drift_tests
from monitors.data_drift import EvidentlyDriftMonitor


def evidently():
    """Evidently's stat-test registry and column types, imported when a test runs (not at collection: 3 s)."""
    from evidently.legacy.calculations.stattests import registry
    from evidently.legacy.core import ColumnType

    return registry, ColumnType

KINDS = ("binary", "three", "five", "six", "pixels", "continuous", "constant", "letters", "two_letters", "one_letter")


def column(g: np.random.Generator, kind: str, n: int, shift: float) -> np.ndarray:
    """One column of ``n`` values of a kind; ``shift`` in [0, 1] moves its distribution."""
    if kind == "binary":
        return (g.random(n) < 0.3 + 0.4 * shift).astype(np.int64) * 16
    if kind in ("three", "five", "six"):
        k = {"three": 3, "five": 5, "six": 6}[kind]
        return np.minimum(k - 1, g.integers(0, k, n) + (g.random(n) < shift))
    if kind == "pixels":
        return np.minimum(16, g.binomial(16, 0.2 + 0.3 * shift, n))
    if kind == "continuous":
        return g.normal(shift, 1.0 + shift, n)
    if kind == "constant":
        return np.full(n, 3.0)
    if kind == "letters":
        return g.choice(list("abcdefg"), n, p=np.r_[0.4 - 0.3 * shift, np.full(6, (0.6 + 0.3 * shift) / 6)])
    if kind == "two_letters":
        return g.choice(["yes", "no"], n, p=[0.5 + 0.4 * shift, 0.5 - 0.4 * shift])
    return np.full(n, "only")


def evidently_column(reference: pd.Series, batch: pd.Series, numerical: bool) -> tuple[str, float, bool]:
    evidently_registry, ColumnType = evidently()
    kind = ColumnType.Numerical if numerical else ColumnType.Categorical
    test = evidently_registry.get_stattest(reference, batch, kind, None)
    result = test(reference, batch, kind, None)
    return test.name, float(result.drift_score), bool(result.drifted)


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    n_reference=st.sampled_from([5, 40, 360, 1000, 1001, 1500]),
    n_batch=st.sampled_from([3, 20, 120, 400]),
    shift=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
    seed=st.integers(0, 2**16),
)
def test_each_column_gets_evidentlys_test_score_and_decision(kind, n_reference, n_batch, shift, seed):
    g = np.random.default_rng(seed)
    reference = pd.Series(column(g, kind, n_reference, 0.0), name="c")
    batch = pd.Series(column(g, kind, n_batch, shift), name="c")
    numerical = kind not in ("letters", "two_letters", "one_letter")
    pooled = drift_tests.PooledColumns.from_frames(
        reference.to_frame(), batch.to_frame(), numeric=["c"] if numerical else [], categorical=[] if numerical else ["c"]
    )
    (fast,) = drift_tests.evidently_decisions(pooled)
    name, score, drifted = evidently_column(reference, batch, numerical)
    assert fast.method == name
    assert fast.score == pytest.approx(score, rel=1e-9, abs=1e-12)
    assert fast.drifted == drifted


@pytest.mark.parametrize("method", ["ks", "wasserstein", "jensenshannon"])
@pytest.mark.parametrize("kind", ["pixels", "continuous", "six"])
def test_a_chosen_method_scores_numeric_columns_as_evidently(method, kind):
    g = np.random.default_rng(hash((method, kind)) % 2**32)
    reference, batch = pd.Series(column(g, kind, 300, 0.0)), pd.Series(column(g, kind, 90, 0.2))
    pooled = drift_tests.PooledColumns.from_frames(
        reference.to_frame("c"), batch.to_frame("c"), numeric=["c"], categorical=[]
    )
    (fast,) = drift_tests.evidently_decisions(pooled, method=method, threshold=0.07)
    evidently_registry, ColumnType = evidently()
    test = evidently_registry.get_registered_stattest(method, ColumnType.Numerical)
    result = test(reference, batch, ColumnType.Numerical, 0.07)
    assert (fast.score, fast.drifted) == (pytest.approx(result.drift_score, rel=1e-9), result.drifted)


def varied_table(g: np.random.Generator, n: int, shift: float, kinds: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.DataFrame({f"{kind}_{i}": column(g, kind, n, shift * (i % 3) / 2) for i, kind in enumerate(kinds)})
    return frame


SLOW = pytest.mark.slow  # a few seconds of Evidently Report per table
TABLES = [
    # name, reference rows, batch rows, shift, column kinds
    pytest.param("pixels_small_reference", 360, 120, 0.3, ("pixels",) * 6 + ("binary", "three", "constant", "five", "six"), marks=SLOW),
    pytest.param("mixed_small_reference", 200, 60, 0.6, KINDS),
    pytest.param("mixed_clean", 300, 100, 0.0, KINDS, marks=SLOW),
    pytest.param("mixed_large_reference", 1500, 200, 0.4, KINDS, marks=SLOW),
    pytest.param("tiny", 12, 4, 1.0, ("continuous", "pixels", "letters", "binary"), marks=SLOW),
]


@pytest.mark.parametrize("name,n_reference,n_batch,shift,kinds", TABLES, ids=lambda v: v if isinstance(v, str) else None)
def test_drifted_columns_and_dataset_drift_equal_evidentlys_report(name, n_reference, n_batch, shift, kinds):
    g = np.random.default_rng(len(name))
    reference = varied_table(g, n_reference, 0.0, kinds)
    batch = varied_table(g, n_batch, shift, kinds)
    if "letters_7" in batch:
        batch.loc[0, "letters_7"] = "unseen"  # a category the reference never had
    monitor = EvidentlyDriftMonitor(drift_share=0.3).fit(reference)
    fast = monitor.check(batch).details
    slow = monitor._evidently_decision(batch)
    assert set(fast["drifted_columns"].split(", ")) - {""} == set(slow["drifted_columns"])
    assert (fast["n_drifted_columns"], fast["dataset_drift"]) == (slow["n_drifted_columns"], slow["dataset_drift"])
    assert fast["share_drifted_columns"] == pytest.approx(slow["share_drifted_columns"])


def test_report_run_is_labelled_and_its_html_draws_the_same_run_without_running_evidently_again(monkeypatch):
    from datetime import datetime

    g = np.random.default_rng(11)
    columns = ["pixel_0_0", "pixel_0_1", "pixel_1_0"]
    monitor = EvidentlyDriftMonitor().fit(pd.DataFrame(g.normal(size=(200, 3)), columns=columns))
    batch = pd.DataFrame(g.normal(size=(100, 3)) + [2.0, 0.0, 0.0], columns=columns)
    runs = []
    real_run = monitor._evidently_run
    monkeypatch.setattr(monitor, "_evidently_run", lambda frame, **labels: runs.append(labels) or real_run(frame, **labels))
    when = datetime(2026, 12, 1, 9, 30)
    run = monitor.report_run(batch, timestamp=when, tags=["t"], metadata={"first_step": "4"}, name="pass")
    html = monitor.report_html()
    assert len(runs) == 1 and "pixel_0_0" in html
    snapshot = run.to_snapshot_model()
    assert (snapshot.timestamp, snapshot.tags, snapshot.metadata, snapshot.name) == (when, ["t"], {"first_step": "4"}, "pass")
    drifted = [r.metric_value_location.metric.params for r in snapshot.metric_results.values()]
    assert [p["column"] for p in drifted if p["type"].endswith(":ValueDrift")] == columns
    assert monitor.check(batch).details["drifted_columns"] == "pixel_0_0"


def _counted_and_drawn(run) -> tuple[dict, dict]:
    """The run's dataset-level count of drifted columns, and each drawn column's drift score."""
    metrics = run.dict()["metrics"]
    (counted,) = [m["value"] for m in metrics if m["config"]["type"].endswith("DriftedColumnsCount")]
    drawn = {m["config"]["column"]: m["value"] for m in metrics if m["config"]["type"].endswith("ValueDrift")}
    return counted, drawn


@pytest.mark.parametrize("n_reference", [300, 1500])  # Evidently's K-S test, and above 1,000 rows its Wasserstein distance
def test_a_table_wider_than_the_limit_counts_every_column_and_draws_only_the_most_drifted(n_reference):
    # Seeded: three of ten normal columns move by 2, 1 and 0.6 sigma (150 rows): each is drifted by
    # Evidently's test and by the check's K-S evidence (p < 1e-4), whose order follows the sizes.
    g = np.random.default_rng(12)
    columns = [f"c{j}" for j in range(10)]
    monitor = EvidentlyDriftMonitor().fit(pd.DataFrame(g.normal(size=(n_reference, 10)), columns=columns))
    shift = np.zeros(10)
    shift[[3, 7, 5]] = [2.0, 1.0, 0.6]
    batch = pd.DataFrame(g.normal(size=(150, 10)) + shift, columns=columns)
    assert monitor.most_drifted_columns(batch, 4)[:3] == ["c3", "c7", "c5"]

    full = monitor.report_run(batch, max_columns=None)
    full_html = monitor.report_html()
    capped = monitor.report_run(batch, metadata={"first_step": "4"}, max_columns=2)
    capped_html = monitor.report_html()

    full_count, full_drawn = _counted_and_drawn(full)
    capped_count, capped_drawn = _counted_and_drawn(capped)
    assert list(full_drawn) == columns and full_count["count"] == monitor.check(batch).details["n_drifted_columns"] >= 3
    assert capped_count == full_count  # the count still covers every column: the dashboard's trend keeps its meaning
    assert list(capped_drawn) == ["c3", "c7"]  # most drifted first
    assert capped_drawn == {column: full_drawn[column] for column in ("c3", "c7")}  # Evidently's own scores, as in the preset
    assert capped.to_snapshot_model().metadata == {"first_step": "4", "columns_drawn": "2 most drifted of 10"}
    assert full.to_snapshot_model().metadata == {}
    assert "c3" in capped_html and len(capped_html) < len(full_html)


@pytest.mark.parametrize("max_columns", [0, -1, 2.5, True])
def test_a_bad_column_limit_is_refused_by_name(max_columns):
    from monitors.errors import MonitorConfigError

    g = np.random.default_rng(13)
    monitor = EvidentlyDriftMonitor().fit(pd.DataFrame(g.normal(size=(50, 3)), columns=["a", "b", "c"]))
    with pytest.raises(MonitorConfigError, match=r"`max_columns` must be an integer >= 1"):
        monitor.report_run(pd.DataFrame(g.normal(size=(20, 3)), columns=["a", "b", "c"]), max_columns=max_columns)
