"""The real training pipeline (ZenML local orchestrator, MLflow SQLite store), read back from MLflow."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from trustops.lineage import file_md5

pytestmark = pytest.mark.e2e


def runs_of(project, experiment_name):
    client = project.client()
    experiment = client.get_experiment_by_name(experiment_name)
    return [] if experiment is None else client.search_runs([experiment.experiment_id])


def test_sweep_logs_one_tracked_and_registered_run_per_point(project):
    result = project.trustops(
        "train", "-m", "dp.target_epsilon=2,6", "trainer.max_epochs=2", "model.activation=smelu",
        "tracking.experiment_name=e2e-sweep", "tracking.registered_model_name=e2e-digits",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "e2e-digits v" in result.stdout and "trustops ui" in result.stdout

    client = project.client()
    runs = runs_of(project, "e2e-sweep")
    assert len(runs) == 2
    data_hash = file_md5(project.root / "data" / "digits.parquet")
    for run in runs:
        target = float(run.data.params["dp.target_epsilon"])
        assert run.info.status == "FINISHED"
        assert run.data.params["model.activation"] == "smelu"
        assert run.data.tags["data_hash"] == data_hash
        # MLflow's own source tags (git ones only inside a git checkout), each setting logged once.
        assert run.data.tags["mlflow.source.type"] == "LOCAL" and "git_commit" not in run.data.tags
        assert not {"capture.uri", "capture.backend"} & set(run.data.params)
        assert f"dp.target_epsilon={target:g}" in run.data.tags["sweep_point"]
        epsilon_history = client.get_metric_history(run.info.run_id, "dp_epsilon")
        assert [m.step for m in epsilon_history] == [0, 1]
        assert 0 < epsilon_history[0].value < epsilon_history[1].value <= target
        for metric in ("test_accuracy", "test_ece", "test_recall_class_0", "val_accuracy", "train_loss"):
            assert metric in run.data.metrics
        assert run.data.metrics["test_accuracy"] > 0.3
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"config", "validation", "evaluation"} <= artifacts
        config = yaml.safe_load(open(client.download_artifacts(run.info.run_id, "config/resolved.yaml")))
        assert config["dp"]["target_epsilon"] == target and config["model"]["activation"] == "smelu"
        assert {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")} == {"evaluation/confusion_matrix.png"}

    versions = client.search_model_versions("name='e2e-digits'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
    for version in versions:
        assert version.run_id in {r.info.run_id for r in runs}
        assert version.tags["activation"] == "smelu"
        assert version.tags["dp"] == "true"
        assert version.tags["data_hash"] == data_hash
        assert float(version.tags["dp_epsilon"]) > 0 and 0 < float(version.tags["dp_delta"]) < 1
    with project.mlflow_globals() as mlflow:  # the registry is read exactly as a user would
        loaded = mlflow.pyfunc.load_model("models:/e2e-digits/1")
    pixels = pd.read_parquet(project.root / "data" / "digits.parquet").filter(like="pixel_").head(3).to_numpy(np.float32)
    assert loaded.predict(pixels.reshape(3, 1, 8, 8)).shape == (3, 10)

    # ZenML's own CLI, on the project's store (plain `zenml` in the project would look elsewhere).
    listed = project.trustops("zenml", "pipeline", "runs", "list", "--columns", "name,status")
    assert listed.returncode == 0, listed.stderr[-3000:]
    for run in runs:
        assert run.info.run_name in listed.stdout
    # The data set's facts travel between steps typed, as readable JSON (steps.materializers), not as a dict or a pickle.
    info = project.python(
        "import json\nfrom trustops.stack import configure_zenml_environment; configure_zenml_environment()\n"
        "from zenml.client import Client\n"
        "artifact = Client().get_pipeline('training_pipeline').last_run.steps['load_data'].outputs['dataset_info'][0]\n"
        "print(json.dumps([type(artifact.load()).__name__, artifact.load().label_column, artifact.materializer.import_path]))"
    )
    assert info.returncode == 0, info.stderr[-3000:]
    assert json.loads(info.stdout.splitlines()[-1]) == ["DatasetInfo", "label", "steps.materializers.RecordMaterializer"]


def test_corrupted_data_stops_at_validate_and_registers_nothing(project):
    frame = pd.read_parquet(project.root / "data" / "digits.parquet")
    missing = frame.copy()
    missing.loc[6, "pixel_4"] = np.nan  # refused by the loader before any run exists
    missing.to_parquet(project.root / "data" / "missing.parquet", index=False)
    refused = project.trustops("train", "data.path=data/missing.parquet", "trainer=smoke",
                               "tracking.experiment_name=e2e-missing", "tracking.registered_model_name=missing-model")
    assert refused.returncode == 2 and "pixel_4" in refused.stderr and "Traceback" not in refused.stderr
    assert project.client().get_experiment_by_name("e2e-missing") is None or runs_of(project, "e2e-missing") == []

    frame.loc[5, "pixel_3"] = 99.0  # a value far outside the column's range: Great Expectations' job
    frame.to_parquet(project.root / "data" / "corrupt.parquet", index=False)

    result = project.trustops(
        "train", "data.path=data/corrupt.parquet", "trainer=smoke",
        "tracking.experiment_name=e2e-corrupt", "tracking.registered_model_name=corrupt-model",
    )
    assert result.returncode != 0
    assert "Data validation failed" in result.stderr
    for expected in ("expect_column_values_to_be_between", "99.0"):
        assert expected in result.stderr
    assert "Traceback" not in result.stderr

    (run,) = runs_of(project, "e2e-corrupt")
    assert run.info.status == "FAILED"
    assert "train_loss" not in run.data.metrics  # stopped before training
    assert run.data.tags["validation"] == "failed"
    assert "validation/result.json" in {a.path for a in project.client().list_artifacts(run.info.run_id, "validation")}
    assert project.client().search_model_versions("name='corrupt-model'") == []


def test_a_failure_mid_way_marks_the_run_failed_and_registers_nothing(project):
    result = project.trustops(
        "train", "dp.target_epsilon=0.0001", "trainer.max_epochs=30",
        "tracking.experiment_name=e2e-midway", "tracking.registered_model_name=midway-model",
    )
    assert result.returncode != 0
    assert "cannot be met" in result.stderr and "Traceback" not in result.stderr
    (run,) = runs_of(project, "e2e-midway")
    assert run.info.status == "FAILED"
    assert run.data.tags["validation"] == "passed"  # it got past validation, then failed in training
    assert project.client().search_model_versions("name='midway-model'") == []
