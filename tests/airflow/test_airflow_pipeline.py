"""trustops on a real Apache Airflow: a training run and a scheduled monitor pass, each step an Airflow task.

One module, one Airflow (API server on loopback, DAG processor, scheduler; SQLite, LocalExecutor),
one project. What a user does: ``trustops stack airflow``, then ``trustops train`` on that stack
(the command waits for Airflow to finish), serve a shifted batch, ``trustops schedule --zenml``
(a DAG on a daily cron: Airflow runs the latest past slot at once, then not again today), and
``trustops schedule --zenml --delete``. The alert goes to a real HTTP receiver whose URL only the
Airflow workers' environment holds, as a secret would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.alerts.conftest import SECRET_MARKERS, WebhookReceiver
from tests.pipelines.conftest import Project
from trustops.data.digits import export_digits

from .airflow_server import Airflow, dag_folder_of, running_airflow

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.integration]

MODEL = "af-digits"
STACK = {"TRUSTOPS_ZENML_STACK": "trustops_airflow"}
PHASES: dict[str, float] = {}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    root = tmp_path_factory.mktemp("airflow-project")
    (root / "dvc.yaml").write_text("stages: {}\n")
    export_digits(root / "data" / "digits.parquet")
    return Project(root)


@pytest.fixture(scope="module")
def webhook():
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, project, webhook) -> tuple[Airflow, subprocess.CompletedProcess]:
    """Airflow, and `trustops stack airflow` for its DAG folder (registered while Airflow starts: both take seconds)."""
    began = time.monotonic()
    home = tmp_path_factory.mktemp("airflow-home")
    registering = subprocess.Popen([str(Path(sys.executable).parent / "trustops"), "stack", "airflow", "--dag-folder",
                                    str(dag_folder_of(home))], cwd=project.root, env=project.env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # The webhook URL is a secret: it lives in the workers' environment, never in a DAG file.
        with running_airflow(home, extra_env={"TRUSTOPS_ALERT_WEBHOOK_URL": webhook.url}) as server:
            stdout, stderr = registering.communicate(timeout=300)
            PHASES["airflow up and stack registered"] = time.monotonic() - began
            yield server, subprocess.CompletedProcess(registering.args, registering.returncode, stdout, stderr)
    finally:
        if registering.poll() is None:  # Airflow failed to start first
            registering.kill()
            registering.wait(timeout=30)
    print("\nphases (s): " + ", ".join(f"{name} {seconds:.0f}" for name, seconds in PHASES.items()))


def timed(name: str, began: float) -> None:
    PHASES[name] = time.monotonic() - began


def test_training_and_a_scheduled_monitor_pass_run_on_airflow(project, airflow, webhook):
    airflow, registered = airflow
    assert registered.returncode == 0, registered.stderr[-3000:]
    assert "trustops_airflow" in registered.stdout and str(airflow.dag_folder) in registered.stdout

    # --- training: five steps, five Airflow tasks; the command returns when the run is over.
    began = time.monotonic()
    trained = project.trustops("train", "trainer=smoke", f"tracking.registered_model_name={MODEL}",
                               "tracking.experiment_name=af-train", "tracking.run_name=af-train-1", env=STACK, timeout=600)
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:] + airflow.logs()
    timed("train on airflow", began)
    assert f"{MODEL} v1" in trained.stdout  # the summary: registered, and ready
    from trustops.registry import resolve_registered_model

    found = resolve_registered_model(MODEL, "latest", project.client())  # refuses a version that is not ready
    assert found.version == 1 and found.capture_uri
    ran = {path.parent.name for path in airflow.task_logs("af-train-1")}
    assert ran == {f"task_id={step}" for step in ("load_data", "validate_data", "train_model", "evaluate_model", "register_model")}
    assert not (airflow.dag_folder / "af-train-1.zip").exists()  # the one-off DAG is gone once its run is over

    # --- serve a shifted batch (brightness +4) through the registered model, capturing it.
    began = time.monotonic()
    import pandas as pd

    frame = pd.read_parquet(project.root / "data" / "digits.parquet")
    test = frame[frame["split"] == "test"].drop(columns=["split"]).head(150)
    pixels = [c for c in test.columns if c.startswith("pixel_")]
    test[pixels] = (test[pixels] + 4.0).clip(upper=16.0)
    test.to_parquet(project.root / "shifted.parquet")
    served = project.trustops("predict", "--model", MODEL, "--input", "shifted.parquet")
    assert served.returncode == 0, served.stderr[-3000:]
    timed("predict", began)

    # --- the monitor on Airflow's clock: one scheduled pass.
    began = time.monotonic()
    scheduled = project.trustops("schedule", "--zenml", "--cron", "0 0 * * *", "--model", MODEL, env=STACK)
    assert scheduled.returncode == 0, scheduled.stderr[-3000:]
    dag_id = f"monitor-{MODEL}-v1"
    with zipfile.ZipFile(airflow.dag_folder / f"{dag_id}.zip") as shipped:
        dag = json.loads(shipped.read("config.json"))
    assert dag["schedule"] == "0 0 * * *" and dag["dag_args"] == {"max_active_runs": 1}  # passes never overlap
    assert {task["operator_args"]["retries"] for task in dag["tasks"]} == {2}
    client = project.client()
    deadline = time.monotonic() + 420
    finished = []
    while not finished:
        experiment = client.get_experiment_by_name("trustops-monitoring")
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        finished = [r for r in runs if r.info.status == "FINISHED" and r.data.tags.get("no_op") == "false"]
        assert not [r for r in runs if r.info.status == "FAILED"], airflow.logs()
        assert time.monotonic() < deadline, "the scheduled monitor pass did not finish in time:\n" + airflow.logs()
        time.sleep(3)
    timed("scheduled monitor pass", began)
    (posted,) = webhook.accepted()  # one page for the pass, delivered from an Airflow task
    assert f"on {MODEL} v1" in posted["text"].splitlines()[0], posted["text"]
    assert {path.parent.name for path in airflow.task_logs(dag_id)} >= {"task_id=send_alerts"}

    # The watermark moved once, past the served batch: the next pass has nothing to do.
    again = project.trustops("monitor", "--model", MODEL)
    assert again.returncode == 0 and "nothing to monitor" in again.stdout, again.stdout + again.stderr
    assert len(finished) == 1
    # The secret never reached a DAG file, a task log or MLflow.
    shipped = (airflow.dag_folder / f"{dag_id}.zip").read_bytes().decode("latin-1")
    logged = "".join(path.read_text(errors="replace") for path in airflow.task_logs(dag_id))
    recorded = json.dumps({**finished[0].data.params, **finished[0].data.tags})
    assert not any(marker in text for marker in SECRET_MARKERS for text in (shipped, logged, recorded))

    # --- deleting the schedule removes its DAG file too (ZenML alone would leave Airflow running it).
    deleted = project.trustops("schedule", "--zenml", "--delete", "--model", MODEL, env=STACK)
    assert deleted.returncode == 0, deleted.stderr[-3000:]
    assert not (airflow.dag_folder / f"{dag_id}.zip").exists() and "DAG file" in deleted.stdout
