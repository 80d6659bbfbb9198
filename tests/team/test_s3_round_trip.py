"""Everything on one S3 bucket (real SeaweedFS): DVC push/pull, a training run's artifacts and captures, read back.

Also the faults: wrong credentials, a missing bucket, an endpoint that does not answer each
stop the run before it starts with one message naming the store; nothing is tracked or
registered.  And the secret key appears nowhere in what MLflow recorded.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.team.conftest import free_port, new_project, run_cli
from trustops.lineage import file_md5

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.trains_model]

MODEL = "s3-digits"


def dvc(project, *args):
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=project.root, env=project.env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def bucket(seaweedfs):
    name = f"team-{uuid.uuid4().hex[:10]}"
    seaweedfs.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_project(tmp_path, s3_env, bucket):
    project = new_project(tmp_path / "project", dvc=True)
    used = run_cli(project, "storage", "use", f"s3://{bucket}/{tmp_path.name}", "--endpoint-url", s3_env.endpoint_url,
                   "--region", s3_env.region)  # fmt: skip
    assert used.returncode == 0, used.stderr
    return project


def keys(server, bucket, prefix):
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", ())]


def test_data_artifacts_and_captures_round_trip_through_the_bucket(s3_project, s3_env, bucket, monkeypatch, tmp_path):
    project, prefix = s3_project, tmp_path.name
    data = project.root / "data" / "digits.parquet"
    md5 = file_md5(data)

    # DVC: the data goes to <prefix>/dvc and comes back.
    committed = dvc(project, "commit", "--force", "prepare")  # the exported data is the `prepare` stage's output in dvc.lock
    assert committed.returncode == 0, committed.stderr
    pushed = dvc(project, "push", "prepare")  # the main job's stage; Fashion-MNIST's is reproduced on demand
    assert pushed.returncode == 0, pushed.stderr
    assert any(key.endswith(md5[2:]) for key in keys(s3_env, bucket, f"{prefix}/dvc/"))
    data.unlink()
    pulled = dvc(project, "pull", "prepare")
    assert pulled.returncode == 0, pulled.stderr
    assert file_md5(data) == md5

    # Training: artifacts in <prefix>/mlartifacts, captures in <prefix>/captures/<run name>.
    trained = run_cli(project, "train", "trainer=smoke", "tracking.experiment_name=s3", f"tracking.registered_model_name={MODEL}")
    assert trained.returncode == 0, trained.stderr[-3000:]
    client = project.client()
    experiment = client.get_experiment_by_name("s3")
    assert experiment.artifact_location == f"s3://{bucket}/{prefix}/mlartifacts"
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.artifact_uri.startswith(f"s3://{bucket}/{prefix}/mlartifacts/")
    assert run.data.tags["capture_uri"].startswith(f"s3://{bucket}/{prefix}/captures/train-")
    assert any(k.endswith("config/resolved.yaml") for k in keys(s3_env, bucket, f"{prefix}/mlartifacts/"))

    # Read back in this process, through the same setting.
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", s3_env.endpoint_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_env.endpoint_url)
    config = client.download_artifacts(run.info.run_id, "config/resolved.yaml", str(tmp_path / "dl"))
    assert "digits.parquet" in Path(config).read_text()
    from trustops.capture import open_capture

    capture = open_capture(run.data.tags["capture_uri"])
    assert len(capture.steps("eval")) >= 1
    with project.mlflow_globals() as mlflow:
        model = mlflow.pytorch.load_model(f"models:/{MODEL}/1")
    assert sum(p.numel() for p in model.parameters()) > 0

    # Inference captures land in the bucket too, and a monitor pass reads them back from it.
    scored = run_cli(project, "predict", "--model", MODEL, "--input", "data/digits.parquet", "--batch-size", "300")
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert len(capture.steps("predict")) == 6  # 1,797 rows in batches of 300
    monitored = run_cli(project, "monitor", "--model", MODEL, "--monitors", "mmd_adversarial", "prediction_shift", "accuracy")
    assert monitored.returncode == 0, monitored.stderr[-3000:]
    assert "Monitored 6 batch(es)" in monitored.stdout
    monitor_runs = client.search_runs([client.get_experiment_by_name("trustops-monitoring").experiment_id])
    (monitor_pass,) = [r for r in monitor_runs if "mlflow.parentRunId" in r.data.tags]  # its parent holds the charts
    assert monitor_pass.data.tags["capture_uri"] == run.data.tags["capture_uri"]
    assert len(client.get_metric_history(monitor_pass.info.run_id, "accuracy.score")) == 6  # labels came with the file

    # No secret in anything MLflow recorded: params, tags, metric names, artifacts' bytes, model version tags.
    secret = s3_env.secret_key
    recorded = [trained.stdout, trained.stderr, repr(run.data.params), repr(run.data.tags), repr(list(run.data.metrics))]
    recorded += [monitored.stdout, monitored.stderr, *(repr(r.data.params) + repr(r.data.tags) for r in monitor_runs)]
    recorded += [repr(v.tags) for v in client.search_model_versions(f"name='{MODEL}'")]
    run_files = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "run")))
    with project.mlflow_globals() as mlflow:  # MLflow 3 keeps the model beside the run, as a logged model
        model_files = Path(mlflow.artifacts.download_artifacts(f"models:/{MODEL}/1", dst_path=str(tmp_path / "model")))
    files = [p for folder in (run_files, model_files) for p in folder.rglob("*") if p.is_file()]
    assert any(p.name == "resolved.yaml" for p in files) and any(p.name == "MLmodel" for p in files)
    for text in recorded:
        assert secret not in text
    for path in files:
        assert secret.encode() not in path.read_bytes(), path


def assert_failed_cleanly(project, result, *expected):
    assert result.returncode == 2, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("trustops: error: ") and "Traceback" not in result.stderr, result.stderr[-3000:]
    for text in expected:
        assert text in last, last
    client = project.client()
    experiment = client.get_experiment_by_name("faults")
    assert experiment is None or client.search_runs([experiment.experiment_id]) == []
    assert client.search_model_versions("name='fault-model'") == []


TRAIN = ("train", "trainer=smoke", "tracking.experiment_name=faults", "tracking.registered_model_name=fault-model")


def test_wrong_credentials_stop_the_run_before_it_starts(s3_project, s3_env, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-" + uuid.uuid4().hex)
    result = run_cli(s3_project, *TRAIN)
    assert_failed_cleanly(s3_project, result, "MLflow artifact store and the capture store", "access refused", "AWS_ACCESS_KEY_ID")
    assert s3_env.secret_key not in result.stderr and "not-the-secret" not in result.stderr


def test_a_missing_bucket_is_named(s3_project, s3_env):
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    assert run_cli(s3_project, "storage", "use", f"s3://{missing}/p", "--endpoint-url", s3_env.endpoint_url, "--no-check").returncode == 0
    result = run_cli(s3_project, *TRAIN)
    assert_failed_cleanly(s3_project, result, f"the bucket {missing!r} does not exist")
    checked = run_cli(s3_project, "storage", "check")
    assert checked.returncode == 2 and "does not exist" in checked.stderr
    served = run_cli(s3_project, "server", "--port", str(free_port()))
    assert served.returncode == 2 and "tracking server's artifact store" in served.stderr


def test_an_endpoint_that_does_not_answer_fails_after_bounded_retries(s3_project, s3_env, bucket):
    dead = f"http://127.0.0.1:{free_port()}"
    assert run_cli(s3_project, "storage", "use", f"s3://{bucket}/p", "--endpoint-url", dead, "--no-check").returncode == 0
    started = time.monotonic()
    result = run_cli(s3_project, *TRAIN)
    assert_failed_cleanly(s3_project, result, "did not answer after 3 attempts", dead)
    assert time.monotonic() - started < 120
