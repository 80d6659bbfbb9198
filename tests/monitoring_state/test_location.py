"""Where a model version's monitor state lives: the project folder, the storage setting's S3 prefix, or the override."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trustops.errors import ConfigError
from trustops.model_index import IndexedVersion
from trustops.runs.monitoring import monitor_state

MODEL = IndexedVersion(name="team/digits", version=3, capture_uri=None)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("TRUSTOPS_PROJECT_ROOT", "TRUSTOPS_STORAGE_URI", "TRUSTOPS_MONITOR_STATE_URI"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    return tmp_path


def test_local_storage_keeps_the_folder_earlier_releases_used(project: Path) -> None:
    assert monitor_state(project, MODEL) == project / ".trustops" / "monitoring" / "team_digits" / "v3"
    assert monitor_state(project, MODEL, "demo-stream") == (
        project / ".trustops" / "monitoring" / "team_digits" / "v3" / "experiments" / "demo-stream")


def test_s3_storage_puts_the_state_under_its_prefix(project: Path) -> None:
    (project / "trustops-storage.json").write_text(json.dumps({"uri": "s3://team-bucket/trustops/",
                                                                "endpoint_url": "http://127.0.0.1:8333"}))
    assert monitor_state(project, MODEL) == "s3://team-bucket/trustops/monitoring/team_digits/v3"
    assert monitor_state(project, MODEL, "demo-stream") == (
        "s3://team-bucket/trustops/monitoring/team_digits/v3/experiments/demo-stream")
    assert not (project / ".trustops" / "monitoring").exists()


def test_the_override_wins_and_a_bad_one_says_what_is_allowed(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "trustops-storage.json").write_text(json.dumps({"uri": "s3://team-bucket/trustops"}))
    monkeypatch.setenv("TRUSTOPS_MONITOR_STATE_URI", "s3://other-bucket/monitor")
    assert monitor_state(project, MODEL) == "s3://other-bucket/monitor/team_digits/v3"
    monkeypatch.setenv("TRUSTOPS_MONITOR_STATE_URI", str(project / "shared"))
    assert monitor_state(project, MODEL) == project / "shared" / "team_digits" / "v3"
    for bad in ("gs://bucket/x", "s3://"):
        monkeypatch.setenv("TRUSTOPS_MONITOR_STATE_URI", bad)
        with pytest.raises(ConfigError):
            monitor_state(project, MODEL)


def test_finding_the_state_on_s3_imports_no_mlflow_torch_or_boto3(project: Path) -> None:
    """The no-op pass decides where its state is on every tick: the storage file only, no heavy import."""
    (project / "trustops-storage.json").write_text(json.dumps({"uri": "s3://team-bucket/trustops"}))
    code = ("import sys\nfrom trustops.model_index import IndexedVersion\nfrom trustops.runs.monitoring import monitor_state\n"
            "print(monitor_state(__import__('pathlib').Path(sys.argv[1]), IndexedVersion('m', 1, None)))\n"
            "print(sorted(m for m in ('mlflow', 'torch', 'zenml', 'boto3') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code, str(project)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == ["s3://team-bucket/trustops/monitoring/m/v1", "[]"]


# The no-op pass's own calls after it found the model version (trustops.runs.monitoring._nothing_new).
NOTHING_NEW = r"""
import json, sys
from trustops.monitoring.collect import collect_new_captures
from trustops.monitoring.state_store import open_state
from trustops.monitoring.watermark import exclusive_run
from trustops.runs.monitoring import deliver_pending_alerts

store = open_state(sys.argv[1])
with exclusive_run(store):
    new = collect_new_captures(sys.argv[2], store).chunks
    pending = deliver_pending_alerts(store)
print(json.dumps([len(new), pending, sorted(m for m in ("mlflow", "torch", "zenml", "boto3") if m in sys.modules)]))
"""


@pytest.mark.parametrize("where", ["local", pytest.param("s3", marks=pytest.mark.integration)])
def test_a_pass_with_nothing_new_delivers_what_waits_without_mlflow_torch_or_zenml(where, request, tmp_path, monkeypatch):
    """boto3 only for state on S3; the alert waiting in the outbox is delivered (to the console)."""
    import torch

    from trustops.alerts import Alert, Outbox
    from trustops.capture import ActivationCapture
    from trustops.models.networks import build_classifier
    from trustops.monitoring.state_store import LocalStateStore, S3StateStore
    from trustops.monitoring.watermark import Watermark

    capture = str(tmp_path / "capture")
    model = build_classifier("mlp", (64,), 10).eval()
    with ActivationCapture(model, capture, mode="predict"), torch.no_grad():
        model(torch.rand(2, 64))
    if where == "s3":
        server = request.getfixturevalue("s3_env")
        location = f"s3://{request.getfixturevalue('s3_bucket')}/team/monitoring/m/v1"
        store = S3StateStore(location, endpoint_url=server.endpoint_url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", server.endpoint_url)  # as the storage setting exports it
    else:
        location = str(tmp_path / "state")
        store = LocalStateStore(location)
    Watermark(capture_uri=capture, last_step=0).save(store)
    Outbox(store.child("alerts")).append(Alert(monitor="m", metric="x", rule="r", value=1.0, severity="warning", headline="waiting"),
                                         ["console"])
    result = subprocess.run([sys.executable, "-c", NOTHING_NEW, location, capture], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    new, pending, heavy = json.loads(result.stdout.splitlines()[-1])
    assert new == 0 and pending == 0
    assert heavy == (["boto3"] if where == "s3" else [])
