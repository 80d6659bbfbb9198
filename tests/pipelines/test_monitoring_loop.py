"""The monitoring loop on a real registered model: watermark, alerts once and on recovery, corrupt chunks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from trustops.attacks import pgd_attack
from trustops.capture import ActivationCapture, open_capture

pytestmark = pytest.mark.e2e


def outbox(project) -> list[dict]:
    path = project.root / ".trustops" / "monitoring" / "e2e-monitor" / "v1" / "alerts" / "outbox.jsonl"
    return [json.loads(line)["alert"] for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def served(project):
    """A registered model plus a way to 'serve' batches through the inference capture."""
    from trustops.registry import resolve_registered_model

    result = project.trustops("train", "trainer.max_epochs=6", "dp=off", "tracking.experiment_name=e2e-monitor-train",
                              "tracking.registered_model_name=e2e-monitor")
    assert result.returncode == 0, result.stderr[-3000:]
    client = project.client()
    found = resolve_registered_model("e2e-monitor", "latest", client)
    with project.mlflow_globals() as mlflow:
        model = mlflow.pytorch.load_model(found.model_uri).eval()
    import pandas as pd

    frame = pd.read_parquet(project.root / "data" / "digits.parquet")
    test = frame[frame["split"] == "test"]
    x = torch.from_numpy(test.filter(like="pixel_").to_numpy("float32")).reshape(-1, 1, 8, 8)
    y = torch.from_numpy(test["label"].to_numpy())

    def serve(batch: torch.Tensor) -> None:
        with ActivationCapture(model, found.capture_uri, mode="predict"), torch.no_grad():
            model(batch)

    return found, model, x, y, serve


def test_batches_are_monitored_once_and_alerts_fire_and_recover(project, served):
    found, model, x, y, serve = served
    serve(x[:180])                                                        # clean
    serve(pgd_attack(model, x[180:], y[180:], norm="inf", epsilon=2.0, step_size=0.5, steps=10, clamp=(0.0, 16.0)))
    serve(x[:180].flip(0))                                                 # clean again
    result = project.trustops("monitor", "--model", "e2e-monitor", "--monitors", "mmd_adversarial", "evidently_drift")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Monitored 3 batch(es)" in result.stdout

    alerts = [a for a in outbox(project) if a["monitor"] == "mmd_adversarial"]
    assert [a["kind"] for a in alerts] == ["adversarial", "recovered"]  # once, then once on recovery
    assert "capture step 1" in alerts[0]["message"]

    state = json.loads((project.root / ".trustops/monitoring/e2e-monitor/v1/watermark.json").read_text())
    assert state["last_step"] == max(open_capture(found.capture_uri).steps("predict"))
    client = project.client()
    (run,) = [r for r in client.search_runs([client.get_experiment_by_name("trustops-monitoring").experiment_id])
              if r.data.tags.get("no_op") == "false"]
    history = client.get_metric_history(run.info.run_id, "mmd_adversarial.score")
    assert len(history) == 3 and len({m.step for m in history}) == 3
    assert {"charts/mmd_adversarial.png", "charts/evidently_drift.png"} <= {a.path for a in client.list_artifacts(run.info.run_id, "charts")}
    report = client.download_artifacts(run.info.run_id, "drift/evidently_drift_report.html")
    assert "drift" in Path(report).read_text().lower()
    assert run.data.tags["evidently_drift_report_step"] == str(max(m.step for m in history))

    again = project.trustops("monitor", "--model", "e2e-monitor", "--monitors", "mmd_adversarial")
    assert again.returncode == 0 and "nothing to monitor" in again.stdout


def test_a_corrupt_chunk_is_reported_and_skipped_without_losing_later_batches(project, served):
    found, model, x, y, serve = served
    serve(x[:120])
    manifests = sorted((Path(found.capture_uri) / "predict" / "manifest").rglob("*.json"))
    data = Path(str(manifests[-1]).replace("/manifest/", "/data/").replace(".json", ".bin"))
    data.write_bytes(data.read_bytes()[: len(data.read_bytes()) // 2])  # truncated on disk
    serve(x[120:240])  # a good batch after the bad one
    result = project.trustops("monitor", "--model", "e2e-monitor", "--monitors", "mmd_adversarial")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1 unreadable capture chunk(s) skipped and reported" in result.stdout
    assert "Monitored 1 batch(es)" in result.stdout
    quality = [a for a in outbox(project) if a["kind"] == "data_quality"]
    assert len(quality) == 1 and "unreadable" in quality[0]["message"].lower()


def test_an_unknown_monitor_fails_at_start(project, served):
    result = project.trustops("monitor", "--model", "e2e-monitor", "--monitors", "mmd_adversarial", "no_such_monitor")
    assert result.returncode == 2 and "no_such_monitor" in result.stderr and "Traceback" not in result.stderr


def test_overlapping_runs_are_refused(tmp_path):
    from trustops.monitoring.watermark import MonitorRunInProgress, exclusive_run

    with exclusive_run(tmp_path / "run.lock"):
        with pytest.raises(MonitorRunInProgress, match="in progress"):
            with exclusive_run(tmp_path / "run.lock"):
                pass
    with exclusive_run(tmp_path / "run.lock"):  # released afterwards
        pass
