"""The DVC `train` stage: params.yaml holds the training values (the Hydra defaults), reaches the
Hydra config through `--params-file`, and the run's reports are what `dvc metrics show` reads."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from trustops.configuration import compose_config, params_file_overrides
from trustops.dvc_reports import CURVES_FILE, METRICS_FILE, curves_of, metrics_of, write_reports

REPO_ROOT = Path(__file__).resolve().parents[2]
DVC = str(Path(sys.executable).parent / "dvc")


def leaves(node, prefix=""):
    for key, value in node.items():
        if isinstance(value, dict):
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def test_params_yaml_holds_the_hydra_defaults():
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    cfg = compose_config([])
    for key, value in leaves(params):
        group, field = key.split(".")
        assert cfg[group][field] == value, key


def test_an_experiment_value_reaches_the_hydra_config(tmp_path):
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["dp"]["target_epsilon"] = 3  # what `dvc exp run -S dp.target_epsilon=3` writes
    params["model"]["activation"] = "smelu"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    overrides = params_file_overrides(tmp_path / "params.yaml")
    assert "dp.target_epsilon=3" in overrides and 'model.activation="smelu"' in overrides
    cfg = compose_config([*overrides, "trainer.max_epochs=2"])  # the command line still wins after the file
    assert (cfg.dp.target_epsilon, cfg.model.activation, cfg.trainer.max_epochs) == (3, "smelu", 2)


def test_the_stage_runs_trustops_train_on_params_yaml_into_reports():
    from trustops.cli import build_parser

    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
    train = stages["stages"]["train"]
    argv = train["cmd"].split()
    assert argv[:2] == ["trustops", "train"]
    args = build_parser().parse_args(argv[1:])
    assert args.params_file == "params.yaml" and args.multirun is False
    assert [next(iter(m)) for m in train["metrics"]] == [f"{args.dvc_reports}/{METRICS_FILE}"]
    assert set(train["params"]) == set(yaml.safe_load((REPO_ROOT / "params.yaml").read_text()))
    curves = next(p["training curves"] for p in stages["plots"] if "training curves" in p)
    assert f"{args.dvc_reports}/{CURVES_FILE}" in curves["y"]


def summary(tracking_uri="unused"):
    return SimpleNamespace(
        mlflow_run_id="r1", tracking_uri=tracking_uri, metrics={"test_accuracy": 0.91, "test_ece": 0.05, "test_loss": 0.3},
        training={"dp_epsilon": 2.97, "epochs": 2}, registration={"registered_model": "trustops-digits", "version": 4},
    )  # fmt: skip


class FakeClient:
    """The two MLflow calls write_reports makes, over fixed histories."""

    HISTORIES = {"train_loss": [(0, 1.2), (1, 0.7)], "val_accuracy": [(0, 0.8), (1, 0.9)], "dp_epsilon": [(0, 2.1), (1, 2.97)],
                 "test_accuracy": [(0, 0.91)]}  # fmt: skip

    def get_run(self, run_id):
        return SimpleNamespace(info=SimpleNamespace(run_id=run_id), data=SimpleNamespace(metrics=dict.fromkeys(self.HISTORIES, 0.0)))

    def get_metric_history(self, run_id, name):
        return [SimpleNamespace(step=s, value=v) for s, v in self.HISTORIES[name]]


def test_metrics_and_curves_of_a_run():
    assert metrics_of(summary()) == {"test_accuracy": 0.91, "test_ece": 0.05, "dp_epsilon": 2.97, "mlflow_run_id": "r1",
                                     "registered_model": "trustops-digits/4"}  # fmt: skip
    rows = curves_of(FakeClient.HISTORIES)
    assert rows == [{"epoch": 0, "dp_epsilon": 2.1, "train_loss": 1.2, "val_accuracy": 0.8},
                    {"epoch": 1, "dp_epsilon": 2.97, "train_loss": 0.7, "val_accuracy": 0.9}]  # fmt: skip


def test_dvc_metrics_show_reads_the_reports(tmp_path):
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=tmp_path, check=True, timeout=120)
    figure = tmp_path / "figure.png"
    figure.write_bytes(b"\x89PNG\r\n\x1a\n")
    fetched = []
    written = write_reports(summary(), tmp_path / "reports", client=FakeClient(),
                            fetch_artifact=lambda run_id, path: fetched.append((run_id, path)) or str(figure))  # fmt: skip
    assert fetched == [("r1", "evaluation/confusion_matrix.png")]
    assert [p.relative_to(tmp_path).as_posix() for p in written] == [
        "reports/metrics.json", "reports/plots/training_curves.csv", "reports/plots/confusion_matrix.png"]  # fmt: skip
    assert (tmp_path / "reports/plots/training_curves.csv").read_text().splitlines()[0] == "epoch,dp_epsilon,train_loss,val_accuracy"

    shown = subprocess.run([DVC, "metrics", "show", "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    metrics = json.loads(shown.stdout)
    found = next(iter(metrics.values()))["data"]["reports/metrics.json"]["data"]
    assert found["test_accuracy"] == 0.91 and found["dp_epsilon"] == 2.97


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.trains_model
def test_dvc_exp_run_trains_and_dvc_metrics_diff_shows_accuracy_and_epsilon(tmp_path):
    """`dvc exp run -S ...` in a fresh project: a real (two-epoch) training run, recorded in MLflow and DVC."""
    root = tmp_path / "project"
    root.mkdir()
    for name in ("dvc.yaml", "dvc.lock", "params.yaml", "configs/training.py", "trustops/data/digits.py", "trustops/data/split.py"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / name, root / name)
    shutil.copytree(REPO_ROOT / "trustops" / "training", root / "trustops" / "training",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    (root / "data").mkdir()
    (root / "data" / ".gitignore").write_text("/digits.parquet\n")
    (root / ".gitignore").write_text("/.trustops/\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ZENML_"))}
    env.update(TRUSTOPS_PROJECT_ROOT=str(root), PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")  # fmt: skip

    def run(*argv, timeout=120):
        done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, (argv, done.stdout[-3000:], done.stderr[-3000:])
        return done.stdout

    run("git", "init", "-q", "-b", "main")
    run(DVC, "init", "-q")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "project")
    run(DVC, "exp", "run", "-S", "dp.target_epsilon=3", "-S", "trainer.max_epochs=2", "train", timeout=900)

    metrics = json.loads((root / "reports" / "metrics.json").read_text())
    assert 0 < metrics["dp_epsilon"] <= 3 and 0 < metrics["test_accuracy"] <= 1
    diff = json.loads(run(DVC, "metrics", "diff", "--json"))["reports/metrics.json"]
    assert diff["test_accuracy"]["new"] == metrics["test_accuracy"] and diff["dp_epsilon"]["new"] == metrics["dp_epsilon"]
    params = json.loads(run(DVC, "params", "diff", "--json"))["params.yaml"]
    assert (params["dp.target_epsilon"]["old"], params["dp.target_epsilon"]["new"]) == (8.0, 3)
    assert (root / "reports" / "plots" / "confusion_matrix.png").stat().st_size > 0

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{root / '.trustops' / 'mlflow.db'}")
    run_ = client.get_run(metrics["mlflow_run_id"])  # MLflow recorded the same run
    assert float(run_.data.params["dp.target_epsilon"]) == 3
    assert run_.data.metrics["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
