"""The monitoring loop on a real registered model: watermark, alerts once and on recovery, corrupt chunks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from tests.alerts.conftest import SECRET_MARKERS, WebhookReceiver
from trustops.attacks import pgd_attack
from tests.conftest import SIX_EPOCH_MODEL_NAME as MODEL
from trustops.capture import ActivationCapture, open_capture

pytestmark = [pytest.mark.e2e, pytest.mark.trains_model]


def outbox(project) -> list[dict]:
    path = project.root / ".trustops" / "monitoring" / MODEL / "v1" / "alerts" / "outbox.jsonl"
    return [json.loads(line)["alert"] for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def project(six_epoch_model, tmp_path_factory):
    """A copy of the session's six-epoch model project: ``MODEL`` v1, from `trustops train trainer.max_epochs=6 dp=off`."""
    return six_epoch_model.copy_to(tmp_path_factory.mktemp("monitor-project"))


@pytest.fixture(scope="module")
def served(project):
    """A registered model plus a way to 'serve' batches through the inference capture."""
    from trustops.registry import resolve_registered_model

    client = project.client()
    found = resolve_registered_model(MODEL, "latest", client)
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


@pytest.fixture
def webhook():
    server = WebhookReceiver().start()
    yield server
    server.stop()


def test_batches_are_monitored_once_and_alerts_fire_and_recover(project, served, webhook):
    found, model, x, y, serve = served
    serve(x[:180])                                                        # clean
    serve(pgd_attack(model, x[180:], y[180:], norm="inf", epsilon=2.0, step_size=0.5, steps=10, clamp=(0.0, 16.0)))
    serve(x[:180].flip(0))                                                 # clean again
    result = project.trustops("monitor", "--model", MODEL, "--monitors", "mmd_adversarial", "feature_squeezing",
                              "evidently_drift", env={"TRUSTOPS_ALERT_WEBHOOK_URL": webhook.url})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Monitored 3 batch(es)" in result.stdout

    incidents = [(a["kind"], a["step"]) for a in outbox(project) if a["monitor"] == "incident"]
    # The attack opens both incidents at step 1 (squeezing evidence makes it adversarial); the clean batch ends both, once.
    assert sorted(incidents) == [("distribution_shift", 1), ("recovered", 2), ("recovered", 2), ("suspected_adversarial", 1)]
    (posted,) = webhook.accepted()  # one message for the pass, on a real HTTP server
    assert f"Suspected adversarial inputs on {MODEL} v1:" in posted["text"].splitlines()[0]
    assert "capture step 1" in posted["text"] and "western_electric" not in posted["text"]
    assert not any(marker in result.stdout + result.stderr for marker in SECRET_MARKERS)

    # One ZenML pipeline run of collect -> check -> chart -> alert did it.
    zenml = project.python(
        "import json\nfrom trustops.stack import configure_zenml_environment; configure_zenml_environment()\n"
        "from zenml.client import Client\n"
        "run = Client().get_pipeline('monitoring_pipeline').last_run\n"
        "info = run.steps['resolve_registered_version'].outputs['model_info'][0]\n"
        "print(json.dumps({'status': str(run.status), 'steps': sorted(run.steps),\n"
        "                  'outputs': sorted(name for step in run.steps.values() for name in step.outputs),\n"
        "                  'checked': run.steps['send_alerts'].outputs['pass_report'][0].load().steps,\n"
        "                  'model_info': [type(info.load()).__name__, info.load().version, info.materializer.import_path]}))"
    )
    assert zenml.returncode == 0, zenml.stderr[-3000:]
    pipeline_run = json.loads(zenml.stdout.splitlines()[-1])
    assert "model" not in pipeline_run["outputs"] and "model_info" in pipeline_run["outputs"]  # the model by reference, never re-saved per pass
    assert pipeline_run["status"] == "completed"
    assert {"check_captures", "chart_metrics", "collect_captures", "send_alerts"} <= set(pipeline_run["steps"])
    assert pipeline_run["checked"] == [0, 1, 2]
    # The model's facts travel typed, as readable JSON (steps.materializers), not as a dict or a pickle.
    assert pipeline_run["model_info"] == ["RegisteredModel", 1, "steps.materializers.RecordMaterializer"]

    # The benchmarks (calibration, scaling) measure `loop.monitor_pass`, not the pipeline: both must
    # decide the same.  A fresh state replays the three batches; each batch's resampling is seeded by
    # its capture step, so every metric and every alert must match, not just agree in direction.
    parity = project.python(
        "import json, tempfile\nfrom pathlib import Path\n"
        "from trustops.stack import configure_zenml_environment; configure_zenml_environment()\n"
        "import mlflow\nfrom zenml.client import Client\n"
        "from trustops.alerts import AlertManager\nfrom trustops.monitoring.checking import PassOptions\nfrom trustops.monitoring.loop import monitor_pass\n"
        "from trustops.paths import default_tracking_uri\nfrom trustops.registry import resolve_registered_model\n"
        "mlflow.set_tracking_uri(default_tracking_uri()); mlflow.set_registry_uri(default_tracking_uri())\n"
        "pipeline = Client().get_pipeline('monitoring_pipeline').last_run.steps['send_alerts'].outputs['pass_report'][0].load()\n"
        f"found = resolve_registered_model({MODEL!r}, 'latest', mlflow.MlflowClient())\n"
        "model = mlflow.pytorch.load_model(found.model_uri).eval()\n"
        "with tempfile.TemporaryDirectory() as folder:\n"
        "    state = Path(folder)\n"
        "    direct = monitor_pass(model, found, state=state, alerts=AlertManager.from_config(state / 'alerts', ()),\n"
        "                          options=PassOptions(monitors=('mmd_adversarial', 'feature_squeezing', 'evidently_drift')))\n"
        "kinds = lambda report: sorted((a['monitor'], a['kind'], a['step']) for a in report.alerts)\n"
        "print(json.dumps({'steps': [pipeline.steps, direct.steps], 'metrics': [pipeline.metrics, direct.metrics],\n"
        "                  'alerts': [kinds(pipeline), kinds(direct)]}))"
    )
    assert parity.returncode == 0, parity.stderr[-3000:]
    compared = json.loads(parity.stdout.splitlines()[-1])
    assert compared["steps"][0] == compared["steps"][1] == [0, 1, 2]
    assert compared["alerts"][0] == compared["alerts"][1] and compared["alerts"][0]
    for in_pipeline, direct in zip(*compared["metrics"], strict=True):
        assert in_pipeline.keys() == direct.keys()
        for key, value in in_pipeline.items():
            assert direct[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key

    state = json.loads((project.root / ".trustops" / "monitoring" / MODEL / "v1" / "watermark.json").read_text())
    assert state["last_step"] == max(open_capture(found.capture_uri).steps("predict"))
    client = project.client()
    (run,) = [r for r in client.search_runs([client.get_experiment_by_name("trustops-monitoring").experiment_id])
              if r.data.tags.get("no_op") == "false"]
    history = client.get_metric_history(run.info.run_id, "mmd_adversarial.p_value")
    assert len(history) == 3 and len({m.step for m in history}) == 3
    # The chart's history is in the version's monitoring run, the pass run's parent.
    limits = client.get_metric_history(run.data.tags["mlflow.parentRunId"], "mmd_adversarial.chart_ucl")
    expected_limit = -math.log10(float(run.data.params["mmd_adversarial.page_level"]))
    assert len(limits) == 3 and all(m.value == pytest.approx(expected_limit) for m in limits)
    assert "charts/feature_squeezing.png" in {a.path for a in client.list_artifacts(run.info.run_id, "charts")}
    report = client.download_artifacts(run.info.run_id, "drift/evidently_drift_report.html")
    page = Path(report).read_text()
    assert "drift" in page.lower()
    assert '"pixel_42"' in page and '"x42"' not in page  # the data's own column names, as the user knows them
    assert run.data.tags["evidently_drift_report_step"] == str(max(m.step for m in history))

    for key, value in {**run.data.params, **run.data.tags}.items():  # the webhook URL is a secret
        assert not any(marker in f"{key}={value}" for marker in SECRET_MARKERS)

    again = project.trustops("monitor", "--model", MODEL, "--monitors", "mmd_adversarial")
    assert again.returncode == 0 and "nothing to monitor" in again.stdout
    # A pass with nothing new decides from the registry's tables and the capture's listing alone.
    quiet = project.python(
        "import sys\nfrom trustops.monitoring.budget import PassOptions\nfrom trustops.runs.monitoring import run_monitor\n"
        f"report, run_id = run_monitor({MODEL!r}, options=PassOptions(monitors=('mmd_adversarial',)))\n"
        "print(report.no_op, run_id, sorted(m for m in ('mlflow', 'torch', 'zenml') if m in sys.modules))"
    )
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert quiet.stdout.splitlines()[-1] == "True None []"


def test_a_zenml_schedule_on_the_local_orchestrator_is_refused_with_the_alternatives(project, served):
    result = project.trustops("schedule", "--cron", "*/5 * * * *", "--model", MODEL, "--zenml")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "does not run schedules" in result.stderr and "--print-crontab" in result.stderr and "Traceback" not in result.stderr
    listed = project.python(
        "from trustops.stack import configure_zenml_environment; configure_zenml_environment()\n"
        "from zenml.client import Client\nprint(len(Client().list_schedules()))"
    )
    assert listed.returncode == 0 and listed.stdout.split()[-1] == "0"  # nothing half-registered


def test_a_corrupt_chunk_is_reported_and_skipped_without_losing_later_batches(project, served):
    found, model, x, y, serve = served
    serve(x[:120])
    manifests = sorted((Path(found.capture_uri) / "predict" / "manifest").rglob("*.json"))
    data = Path(str(manifests[-1]).replace("/manifest/", "/data/").replace(".json", ".bin"))
    data.write_bytes(data.read_bytes()[: len(data.read_bytes()) // 2])  # truncated on disk
    serve(x[120:240])  # a good batch after the bad one
    result = project.trustops("monitor", "--model", MODEL, "--monitors", "mmd_adversarial")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1 unreadable capture chunk(s) skipped and reported" in result.stdout
    assert "Monitored 1 batch(es)" in result.stdout
    quality = [a for a in outbox(project) if a["kind"] == "data_quality"]
    assert len(quality) == 1 and "unreadable" in quality[0]["message"].lower()


def test_an_unknown_monitor_fails_at_start(project, served):
    result = project.trustops("monitor", "--model", MODEL, "--monitors", "mmd_adversarial", "no_such_monitor")
    assert result.returncode == 2 and "no_such_monitor" in result.stderr and "Traceback" not in result.stderr


def test_a_pass_skipped_because_another_holds_the_lock_exits_3(project, served):
    from trustops.monitoring.watermark import exclusive_run

    with exclusive_run(project.root / ".trustops" / "monitoring" / MODEL / "v1" / "run.lock"):
        result = project.trustops("monitor", "--model", MODEL, "--monitors", "mmd_adversarial")
    assert result.returncode == 3 and "in progress" in result.stderr and "Traceback" not in result.stderr


def test_overlapping_runs_are_refused(tmp_path):
    from trustops.monitoring.watermark import MonitorRunInProgress, exclusive_run

    with exclusive_run(tmp_path / "run.lock"):
        with pytest.raises(MonitorRunInProgress, match="in progress"):
            with exclusive_run(tmp_path / "run.lock"):
                pass
    with exclusive_run(tmp_path / "run.lock"):  # released afterwards
        pass


def test_labels_that_arrive_with_a_batch_are_checked_for_accuracy(project, served):
    import pandas as pd

    frame = pd.read_parquet(project.root / "data" / "digits.parquet")
    test = frame[frame["split"] == "test"].drop(columns=["split"]).head(200)
    test.to_parquet(project.root / "labelled.parquet")
    wrong = test.assign(label=(test["label"] + 1) % 10)  # every label off by one: accuracy ~0
    wrong.to_parquet(project.root / "mislabelled.parquet")
    for name in ("labelled", "mislabelled"):
        scored = project.trustops("predict", "--model", MODEL, "--input", f"{name}.parquet", "--batch-size", "200")
        assert scored.returncode == 0, scored.stderr[-3000:]
    result = project.trustops("monitor", "--model", MODEL, "--monitors", "accuracy")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Monitored 2 batch(es)" in result.stdout
    paged = [a for a in outbox(project) if a["monitor"] == "incident" and a["details"].get("accuracy.alarm")]
    assert len(paged) == 1 and paged[0]["kind"] == "distribution_shift"  # the mislabelled batch only
    assert paged[0]["details"]["accuracy.p_value"] < 1e-20 and "accuracy drop" in paged[0]["headline"]


def test_labels_the_model_does_not_know_are_refused(project, served):
    import pandas as pd

    frame = pd.read_parquet(project.root / "data" / "digits.parquet")
    frame[frame["split"] == "test"].drop(columns=["split"]).head(10).assign(label=42).to_parquet(project.root / "odd.parquet")
    result = project.trustops("predict", "--model", MODEL, "--input", "odd.parquet")
    assert result.returncode == 2 and "labels the model does not know" in result.stderr and "42" in result.stderr


TEAM_STACK = """
import sys
from zenml.client import Client
from zenml.enums import StackComponentType as Kind
from trustops.paths import default_tracking_uri
from trustops.stack import ensure_stack

tracker = ensure_stack(default_tracking_uri())  # the trustops stack and its MLflow tracker
client = Client()
client.create_flavor(source="tests.pipelines.schedulable_orchestrator.SchedulableLocalOrchestratorFlavor",
                     component_type=Kind.ORCHESTRATOR)
client.create_flavor(source="tests.alerts.zenml_recording_alerter.RecordingAlerterFlavor", component_type=Kind.ALERTER)
client.create_stack_component(name="team_orchestrator", flavor="trustops_schedulable_local",
                              component_type=Kind.ORCHESTRATOR, configuration={"schedules_file": sys.argv[1]})
client.create_stack_component(name="recorder", flavor="trustops_recording", component_type=Kind.ALERTER,
                              configuration={"path": sys.argv[2]})
client.create_stack(name="team", components={Kind.ORCHESTRATOR: "team_orchestrator", Kind.ARTIFACT_STORE: "default",
                                             Kind.EXPERIMENT_TRACKER: tracker, Kind.ALERTER: "recorder"})
print("registered")
"""


def test_on_a_team_stack_the_monitor_is_a_zenml_schedule_and_alerts_reach_its_alerter(project, served):
    """A stack like a team's: an orchestrator that runs schedules, and a ZenML alerter (Slack's stand-in)."""
    from tests.alerts.zenml_recording_alerter import read_posts

    found, model, x, y, serve = served
    schedules, posts = project.root / "schedules.jsonl", project.root / "alerter-posts.txt"
    importable = {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}  # where the test flavors live
    code = TEAM_STACK.replace("sys.argv[1]", repr(str(schedules))).replace("sys.argv[2]", repr(str(posts)))
    registered = project.python(code, env=importable)
    assert registered.returncode == 0, registered.stderr[-3000:]
    team = {**importable, "TRUSTOPS_ZENML_STACK": "team"}

    scheduled = project.trustops("schedule", "--cron", "*/10 * * * *", "--model", MODEL, "--zenml", env=team)
    assert scheduled.returncode == 0, scheduled.stderr[-3000:]
    (handed_off,) = [json.loads(line) for line in schedules.read_text().splitlines()]
    assert handed_off["cron_expression"] == "*/10 * * * *" and handed_off["pipeline"] == "monitoring_pipeline"
    assert handed_off["parameters"]["model_name"] == MODEL

    serve(pgd_attack(model, x[:150], y[:150], norm="inf", epsilon=2.0, step_size=0.5, steps=10, clamp=(0.0, 16.0)))
    result = project.trustops("monitor", "--model", MODEL, "--monitors", "mmd_adversarial", "feature_squeezing", env=team)
    assert result.returncode == 0, result.stderr[-3000:]
    assert any(f"Suspected adversarial inputs on {MODEL}" in post.splitlines()[0] for post in read_posts(str(posts)))
