"""The Evidently workspace a monitor pass writes: one snapshot per pass, a drift-over-time dashboard, no duplicate on replay."""

from __future__ import annotations

import logging
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from monitors.data_drift import EvidentlyDriftMonitor
from trustops.monitoring.evidently_workspace import (
    COUNT_PANEL,
    DASHBOARD_TAB,
    DRIFT_METRIC,
    SHARE_PANEL,
    WORKSPACE_ENV,
    PassSnapshot,
    add_pass_snapshot,
    has_projects,
    project_id,
    record_pass,
    workspace_path,
)

COLUMNS = ["pixel_0_0", "pixel_0_1", "pixel_1_0", "pixel_1_1"]  # real names, not x0 ... x3


@pytest.fixture(scope="module")
def runs():
    """Two passes' Evidently runs: a clean one and one with three of four columns moved."""
    g = np.random.default_rng(7)
    monitor = EvidentlyDriftMonitor().fit(pd.DataFrame(g.normal(size=(300, 4)), columns=COLUMNS))
    keys = [PassSnapshot("digits", "3", 0, 2), PassSnapshot("digits", "3", 3, 5)]
    shifts = [[0, 0, 0, 0], [2, 2, 2, 0]]
    made = []
    for hour, (key, shift) in enumerate(zip(keys, shifts)):
        batch = pd.DataFrame(g.normal(size=(200, 4)) + shift, columns=COLUMNS)
        made.append(monitor.report_run(batch, timestamp=datetime(2026, 12, 1, 10 + hour), tags=key.tags,
                                       metadata=key.metadata, name=key.name))
    return list(zip(keys, made))


def _metrics(snapshot) -> list[tuple[dict, object]]:
    """(the metric's config, its result) for each metric of ``snapshot``."""
    return [(r.metric_value_location.metric.params, r) for r in snapshot.metric_results.values()]


def test_two_passes_give_two_snapshots_and_a_drift_dashboard_with_no_duplicate_on_replay(runs, tmp_path):
    from evidently.ui.workspace import Workspace

    for key, run in runs:
        assert add_pass_snapshot(run, key, tmp_path) is True
    # A pass killed before its watermark re-checks the same batches: same key, no second snapshot.
    assert add_pass_snapshot(runs[0][1], runs[0][0], tmp_path) is False
    workspace = Workspace(str(tmp_path))
    (project,) = workspace.list_projects()
    assert project.id == project_id("digits") and project.name == "digits" and "'digits'" in project.description
    snapshots = sorted((workspace.get_run(project.id, s) for s in workspace.list_runs(project.id)),
                       key=lambda s: s.timestamp)
    assert [s.metadata for s in snapshots] == [key.metadata for key, _ in runs]
    assert [s.timestamp for s in snapshots] == [datetime(2026, 12, 1, 10), datetime(2026, 12, 1, 11)]
    assert all("model_version=digits/3" in s.tags for s in snapshots)
    # The report's columns are the data's own names.
    for snapshot in snapshots:
        assert [c["column"] for c, _ in _metrics(snapshot) if c["type"].endswith(":ValueDrift")] == COLUMNS
    # The dashboard: share (line) and number (bars) of drifted columns, on one tab, made once.
    dashboard = workspace.get_dashboard(project.id)
    panels = {p.title: p for p in dashboard.panels}
    assert sorted(panels) == sorted([SHARE_PANEL, COUNT_PANEL])
    assert panels[SHARE_PANEL].plot_params["plot_type"] == "line" and panels[COUNT_PANEL].plot_params["plot_type"] == "bar"
    assert [(v.metric, v.metric_labels) for v in panels[SHARE_PANEL].values] == [(DRIFT_METRIC, {"value_type": "share"})]
    assert [(v.metric, v.metric_labels) for v in panels[COUNT_PANEL].values] == [(DRIFT_METRIC, {"value_type": "count"})]
    assert sorted(map(str, dashboard.tabs[0].panels)) == sorted(str(p.id) for p in dashboard.panels)
    assert [f.name for f in tmp_path.rglob("*.partial")] == []
    assert has_projects(tmp_path)


def test_the_points_the_dashboard_draws_are_each_pass_s_drift(runs, tmp_path):
    from evidently.ui.workspace import Workspace

    for key, run in runs:
        add_pass_snapshot(run, key, tmp_path)
    workspace = Workspace(str(tmp_path))
    pid = project_id("digits")
    by_first_step = {s.metadata["first_step"]: s for s in (workspace.get_run(pid, i) for i in workspace.list_runs(pid))}
    points = {}
    for first, snapshot in by_first_step.items():
        (result,) = [r for c, r in _metrics(snapshot) if f"{c['type']}" == DRIFT_METRIC]
        points[first] = (result.count.value, result.share.value)
    assert points["3"] == (3, 0.75)  # the moved columns
    count, share = points["0"]  # a clean batch: at most a chance drifted column at Evidently's 5% level
    assert count <= 1 and share == count / len(COLUMNS)


def test_a_workspace_that_cannot_be_written_is_a_warning_not_a_failure(runs, tmp_path, caplog):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the workspace should be")
    key, run = runs[0]
    with caplog.at_level(logging.WARNING, logger="trustops.monitoring.evidently_workspace"):
        assert record_pass(run, key, blocked) is None
    (line,) = [r.getMessage() for r in caplog.records]
    assert "Evidently workspace not updated" in line and key.name in line and "\n" not in line


def test_the_workspace_is_in_the_project_state_unless_the_environment_names_one(tmp_path, monkeypatch):
    monkeypatch.delenv(WORKSPACE_ENV, raising=False)
    assert workspace_path(tmp_path) == tmp_path / ".trustops" / "evidently"
    monkeypatch.setenv(WORKSPACE_ENV, str(tmp_path / "elsewhere"))
    assert workspace_path(tmp_path) == (tmp_path / "elsewhere").resolve()
    assert not has_projects(tmp_path / "elsewhere")
