"""`trustops server`: pipelines log to it over HTTP, the ZenML stack follows it, and its UI compares the runs."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import pytest

from tests.team.conftest import run_cli, tracking_server

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.trains_model]

CHROMIUM = "/usr/bin/chromium"
EXPERIMENT = "team-server"
MODEL = "team-digits"


@pytest.fixture(scope="module")
def served(team_project):
    """A running server with two real training runs (ReLU and SmeLU, one epoch) logged over HTTP."""
    with tracking_server(team_project) as url:
        result = run_cli(
            team_project, "train", "-m", "model.activation=relu,smelu", "trainer=smoke",
            f"tracking.experiment_name={EXPERIMENT}", f"tracking.registered_model_name={MODEL}",
            env={"MLFLOW_TRACKING_URI": url},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        yield url, result


def server_client(url):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=url, registry_uri=url)


def test_training_logs_to_the_server_over_http(served, team_project):
    url, result = served
    assert f"Experiment '{EXPERIMENT}' in {url}" in result.stdout or url in result.stdout
    client = server_client(url)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment.artifact_location.startswith("mlflow-artifacts:")  # artifacts go through the server's proxy
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["activation"] for r in runs) == ["relu", "smelu"]
    for run in runs:
        assert run.info.status == "FINISHED"
        assert {"test_accuracy", "dp_epsilon"} <= set(run.data.metrics) and "accuracy" not in run.data.metrics  # one name
        assert run.data.tags["dp"] == "true" and run.data.tags["data_hash"]
        assert run.data.tags["model_version"].startswith(f"{MODEL}/")
        config = Path(client.download_artifacts(run.info.run_id, "config/resolved.yaml", str(team_project.root / "dl" / run.info.run_id)))
        assert "activation" in config.read_text()
    assert sorted(int(v.version) for v in client.search_model_versions(f"name='{MODEL}'")) == [1, 2]
    # The proxy wrote the artifacts to the server's destination, the project's .trustops/mlartifacts.
    stored = team_project.root / ".trustops" / "mlartifacts" / experiment.experiment_id
    assert {r.info.run_id for r in runs} <= {p.name for p in stored.iterdir()}


def test_the_zenml_tracker_follows_the_tracking_uri(served, team_project):
    url, _ = served
    remote = run_cli(team_project, "stack", env={"MLFLOW_TRACKING_URI": url})
    assert remote.returncode == 0, remote.stderr[-2000:]
    assert f"logs to {url}" in remote.stdout
    local = run_cli(team_project, "stack")  # the setting changed back: re-registered in place
    assert local.returncode == 0, local.stderr[-2000:]
    assert "logs to sqlite:///" in local.stdout and "trustops_mlflow (mlflow)" in local.stdout


def test_compare_reads_the_runs_from_the_server(served, team_project):
    url, _ = served
    out = team_project.root / "compare"
    result = run_cli(team_project, "compare", "--experiment", EXPERIMENT, "--markdown", str(out / "runs.md"),
                     "--csv", str(out / "runs.csv"), env={"MLFLOW_TRACKING_URI": url})  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    for expected in ("relu", "smelu", "accuracy", "dp_epsilon", f"{MODEL}/1", f"{MODEL}/2"):
        assert expected in result.stdout
    assert "| activation |" in (out / "runs.md").read_text()


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"Chromium is not installed at {CHROMIUM} (apt-get install chromium; .ci/run does)")
def test_the_mlflow_ui_compares_the_runs_in_a_real_browser(served, tmp_path, artifacts_dir, record_property):
    from playwright.sync_api import sync_playwright

    url, _ = served
    client = server_client(url)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    query = urllib.parse.urlencode(
        {"runs": json.dumps([r.info.run_id for r in runs]), "experiments": json.dumps([experiment.experiment_id])}
    )
    screenshot = artifacts_dir / "mlflow-compare-runs.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
            viewport={"width": 1600, "height": 1400},
        )  # fmt: skip
        try:
            page = browser.new_page()
            page.goto(f"{url}/#/compare-runs?{query}", wait_until="domcontentloaded", timeout=60_000)
            for run in runs:
                page.get_by_text(run.info.run_name, exact=False).first.wait_for(timeout=60_000)
            page.get_by_text("dp_epsilon", exact=True).first.wait_for(timeout=30_000)
            text = page.inner_text("body")
            page.screenshot(path=str(screenshot), full_page=True)
            page.get_by_text("dp_epsilon", exact=True).first.scroll_into_view_if_needed()
            page.screenshot(path=str(screenshot.with_name("mlflow-compare-runs-metrics.png")))
        finally:
            browser.close()
    record_property("screenshot", str(screenshot))
    print(f"screenshot of the MLflow run comparison: {screenshot}")
    for run in runs:
        assert run.info.run_name in text
    for metric in ("test_accuracy", "dp_epsilon"):
        assert metric in text
    for run in runs:  # the values themselves, as the UI rounds them
        assert any(f"{run.data.metrics['test_accuracy']:.{digits}f}" in text for digits in (2, 3, 4)), run.data.metrics["test_accuracy"]
    assert screenshot.stat().st_size > 10_000
