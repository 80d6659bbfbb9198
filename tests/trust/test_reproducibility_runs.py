"""A real reproducibility study on tiny settings (1 epoch, 2 pairs, 2 variants), read back from MLflow."""

from __future__ import annotations

import contextlib
import io
import statistics

import pandas as pd
import pytest

from trustops.runs.studies import run_reproducibility

EXPERIMENT = "trustops-reproducibility"


@pytest.fixture(scope="module")
def study(project):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run_reproducibility(["variant=relu,smelu-0.5", "n_pairs=2", "trainer.max_epochs=1"])
    return code, out.getvalue(), project.runs(EXPERIMENT, "reproducibility"), project.runs(EXPERIMENT, "reproducibility_summary")


def test_one_run_per_variant_with_pd_statistics(project, study):
    code, _, runs, _ = study
    assert code == 0
    assert sorted(r.data.params["variant"] for r in runs) == ["relu", "smelu-0.5"]
    client = project.client()
    for run in runs:
        params, metrics = run.data.params, run.data.metrics
        assert (params["n_pairs"], params["epochs"], params["dp"]) == ("2", "1", "False")
        assert params["activation"] == run.data.tags["activation"] == params["variant"].split("-")[0]
        assert float(params["beta"]) == (0.5 if params["variant"] == "smelu-0.5" else 1.0)
        # The summary statistics are those of the per-pair values logged on the same run.
        for form, pair_metric in (("relative_pd", "pair_relative_pd"), ("tv_pd", "pair_tv_pd")):
            values = [m.value for m in sorted(client.get_metric_history(run.info.run_id, pair_metric), key=lambda m: m.step)]
            assert len(values) == 2
            assert metrics[f"{form}_mean"] == pytest.approx(statistics.fmean(values), abs=1e-12)
            assert metrics[f"{form}_std"] == pytest.approx(statistics.stdev(values), abs=1e-12)
        # Different data orders give different models, so predictions differ (but stay in range).
        assert 0 < metrics["relative_pd_mean"] <= 2 and 0 < metrics["tv_pd_mean"] <= 1
        assert 0 < metrics["accuracy_mean"] <= 1
        assert "config/resolved.yaml" in project.artifact_paths(run.info.run_id, "config")


def test_summary_run_has_table_and_bar_plot(project, study):
    _, stdout, runs, summaries = study
    assert len(summaries) == 1
    summary = summaries[0]
    assert project.artifact_paths(summary.info.run_id, "reproducibility") == {
        "reproducibility/reproducibility.csv", "reproducibility/prediction_difference.png",
    }
    table = pd.read_csv(project.client().download_artifacts(summary.info.run_id, "reproducibility/reproducibility.csv"))
    for run in runs:
        row = table[table["variant"] == run.data.params["variant"]].iloc[0]
        assert row["relative_pd_mean"] == pytest.approx(run.data.metrics["relative_pd_mean"])
        assert row["tv_pd_std"] == pytest.approx(run.data.metrics["tv_pd_std"])
    png = project.client().download_artifacts(summary.info.run_id, "reproducibility/prediction_difference.png")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert "relative_pd_mean" in stdout and "smelu-0.5" in stdout
