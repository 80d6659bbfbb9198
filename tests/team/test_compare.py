"""`trustops compare`: real training runs in a local store, side by side in the terminal, Markdown and CSV."""

from __future__ import annotations

import csv

import pytest

from tests.team.conftest import new_project, run_cli
from trustops.compare import LABELS, compare_runs, select_runs

EXPERIMENT = "compare"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Three real runs (one epoch): ReLU twice (the same configuration) and SmeLU."""
    project = new_project(tmp_path_factory.mktemp("compare"))
    result = run_cli(project, "train", "-m", "model.activation=relu,smelu,relu", "trainer=smoke",
                     f"tracking.experiment_name={EXPERIMENT}", "tracking.registered_model_name=compare-digits")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    client = project.client()
    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id], order_by=["attributes.start_time ASC"])
    assert [r.data.tags["activation"] for r in runs] == ["relu", "smelu", "relu"]
    return project, runs


@pytest.mark.e2e
@pytest.mark.trains_model
def test_chosen_runs_side_by_side_in_terminal_markdown_and_csv(trained, tmp_path):
    project, runs = trained
    chosen = [runs[0].info.run_id, runs[1].info.run_id]
    result = run_cli(project, "compare", *chosen, "--transpose", "--markdown", str(tmp_path / "t.md"), "--csv", str(tmp_path / "t.csv"))
    assert result.returncode == 0, result.stderr[-2000:]
    header, rule, *body = result.stdout.splitlines()[:len(LABELS) + 3]
    assert runs[0].info.run_name in header and runs[1].info.run_name in header
    table = {line.split("  ")[0]: line for line in body}
    for label in ("run id", "activation", "dp", "data hash", "model version", "accuracy", "dp_epsilon"):
        assert label in table
    assert "relu" in table["activation"] and "smelu" in table["activation"]
    assert "compare-digits/1" in table["model version"] and "compare-digits/2" in table["model version"]
    assert f"{runs[0].data.metrics['test_accuracy']:.4f}" in table["accuracy"]

    # The default: one row per run, quantities across, shortened to the terminal's width.
    runs_down = run_cli(project, "compare", *chosen, "--csv", str(tmp_path / "down.csv"), env={"COLUMNS": "140"})
    assert runs_down.returncode == 0, runs_down.stderr[-2000:]
    header, rule, *lines = runs_down.stdout.splitlines()
    assert header.split()[:2] == ["run", "run"] and "accuracy" in header
    assert max(len(line) for line in [header, rule, *lines[:2]]) <= 140
    assert [line.split()[1] for line in lines[:2]] == [run_id[:12] for run_id in chosen]
    down = list(csv.DictReader(open(tmp_path / "down.csv")))
    assert [row["run id"] for row in down] == chosen
    assert [row["activation"] for row in down] == ["relu", "smelu"]

    rows = list(csv.reader(open(tmp_path / "t.csv")))
    assert rows[0] == ["field", runs[0].info.run_name, runs[1].info.run_name]
    assert rows[1] == ["run id", *chosen]
    by_field = {row[0]: row[1:] for row in rows}
    assert set(LABELS) <= set(by_field)
    assert by_field["activation"] == ["relu", "smelu"]
    assert float(by_field["dp_epsilon"][0]) == pytest.approx(runs[0].data.metrics["dp_epsilon"])
    assert by_field["data hash"][0] == runs[0].data.tags["data_hash"][:10]
    markdown = (tmp_path / "t.md").read_text()
    assert markdown.startswith(f"|  | {runs[0].info.run_name} | {runs[1].info.run_name} |")
    assert "| dp | true | true |" in markdown


@pytest.mark.e2e
@pytest.mark.trains_model
def test_latest_per_config_keeps_the_newest_run_of_each_configuration(trained):
    project, runs = trained
    result = run_cli(project, "compare", "--experiment", EXPERIMENT, "--latest-per-config", "--csv", str(project.root / "l.csv"))
    assert result.returncode == 0, result.stderr[-2000:]
    ids = [row["run id"] for row in csv.DictReader(open(project.root / "l.csv"))]  # one row per run
    assert sorted(ids) == sorted([runs[2].info.run_id, runs[1].info.run_id])  # the newer ReLU run and the SmeLU run


def test_every_job_lines_up_in_the_shared_rows(tmp_path):
    """Runs as the other jobs log them (detect, reproducibility, monitor) fill the same rows."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("jobs", artifact_location=(tmp_path / "a").as_uri())
    detect = client.create_run(experiment, run_name="detect-x", tags={"trustops_job": "detect", "activation": "relu", "dp": "true",
                                                                      "model_version": "m/3", "dp_epsilon": "7.9"})  # fmt: skip
    for key, value in {"clean_accuracy": 0.9, "attack_success_rate": 0.8, "detection_rate": 1.0, "baseline_detection_rate": 0.05}.items():
        client.log_metric(detect.info.run_id, key, value)
    pd_run = client.create_run(experiment, run_name="repro", tags={"trustops_job": "reproducibility", "activation": "smelu"})
    for key, value in {"relative_pd_mean": 0.06, "tv_pd_mean": 0.03, "accuracy_mean": 0.85}.items():
        client.log_metric(pd_run.info.run_id, key, value)
    monitor = client.create_run(experiment, run_name="monitor", tags={"trustops_job": "monitor", "model_version": "m/3"})
    for step, signal in enumerate([0, 1, 1, 0]):
        client.log_metric(monitor.info.run_id, "mmd_adversarial.chart_signal", signal, step=step)
    client.log_metric(monitor.info.run_id, "mean_confidence.chart_signal", 1, step=2)

    runs = [client.get_run(r.info.run_id) for r in (detect, pd_run, monitor)]
    table = dict(zip(LABELS, compare_runs(client, runs).rows))
    assert table["accuracy"] == [0.9, 0.85, None]
    assert table["dp_epsilon"] == [7.9, None, None]
    assert table["attack success rate"][0] == 0.8 and table["detection rate"][0] == 1.0
    assert table["baseline detection rate"][0] == 0.05
    assert table["PD (relative)"][1] == 0.06 and table["PD (total variation)"][1] == 0.03
    assert table["chart signals"] == [None, None, 3]
    assert table["model version"] == ["m/3", None, "m/3"]
    assert [r.info.run_id for r in select_runs(client, experiments=["jobs"], max_runs=2)] == [monitor.info.run_id, pd_run.info.run_id]


def test_unknown_runs_and_experiments_are_named(tmp_path):
    from mlflow.tracking import MlflowClient

    from trustops.errors import ConfigError

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(ConfigError, match="No MLflow run 'nope'"):
        select_runs(client, ["nope"])
    with pytest.raises(ConfigError, match="No experiment named 'missing'.*Experiments: Default"):
        select_runs(client, experiments=["missing"])
