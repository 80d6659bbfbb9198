"""Kill ``trustops train`` at every stage boundary: nothing half-done is ever served or left RUNNING.

One scenario per module, on a fresh project whose model already has one ready version (v1,
recorded through the same two phases as a real training run, without paying for one).  Six real
``trustops train`` processes start at once.  Five get SIGKILL, each the moment it reaches its
boundary (load, validate, train, evaluate, register).  Then, while the sixth still waits at
``train.register`` (its registry row written, its owner alive), the next command runs
(``trustops compare``, which reconciles), and last the sixth gets SIGTERM.  Each state is read
as it was left; the tests then assert on those readings.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
from pathlib import Path
from dataclasses import dataclass

import pytest

from tests.faults.conftest import TRUSTOPS, FailpointProcess, Stopped, stop_all_when_ready
from tests.pipelines.conftest import Project
from trustops.errors import ConfigError
from trustops.lifecycle import OWNER_PID_TAG, PENDING, READY, RECONCILED_TAG, STATUS_TAG, mark_version_ready

pytestmark = [pytest.mark.faults, pytest.mark.e2e, pytest.mark.trains_model]

MODEL = "faulty-digits"
EXPERIMENT = "faults"
BOUNDARIES = ("train.load", "train.validate", "train.train", "train.evaluate", "train.register")
TERMINATED_AT = ("train.register",)  # one: every further process costs ~40 CPU-seconds
TRAIN = ("train", "trainer=smoke", "dp=off", "capture=off", f"tracking.experiment_name={EXPERIMENT}",
         f"tracking.registered_model_name={MODEL}")


@dataclass
class Scenario:
    project: Project
    previous_version: int
    killed: dict[str, Stopped]  # SIGKILL, by failpoint
    terminated: dict[str, Stopped]  # SIGTERM, by failpoint
    waiting: dict[str, int]  # failpoint -> PID of the processes still alive when the next command ran
    before: dict[int, str]  # owner PID -> MLflow run status, after the SIGKILLs
    next_command: subprocess.CompletedProcess
    after: dict[int, str]  # the same after the next command (the SIGTERM'd processes still waiting)

    def runs(self) -> dict[int, object]:
        return runs_by_owner(self.project)

    def versions(self) -> dict[int, object]:
        return {int(v.version): v for v in self.project.client().search_model_versions(f"name='{MODEL}'")}

    def zenml_status(self) -> dict[str, str]:
        """Pipeline run name -> status, read from the project's ZenML SQLite store (ZenML is not imported here)."""
        with sqlite3.connect(self._zenml_database()) as connection:
            return dict(connection.execute("SELECT name, status FROM pipeline_run"))

    def zenml_model_status(self) -> dict[str, str]:
        """Pipeline run name -> the newest ``trustops.status`` of the ZenML model version the run is attached to."""
        with sqlite3.connect(self._zenml_database()) as connection:
            rows = connection.execute(
                "SELECT pipeline_run.name, run_metadata.value FROM pipeline_run "
                "JOIN run_metadata_resource ON run_metadata_resource.resource_id = pipeline_run.model_version_id "
                "JOIN run_metadata ON run_metadata.id = run_metadata_resource.run_metadata_id "
                "WHERE run_metadata.key = 'trustops.status' ORDER BY run_metadata.created")
            return {name: json.loads(value) for name, value in rows}  # the newest last, so it wins

    def _zenml_database(self) -> Path:
        (database,) = (self.project.root / ".trustops" / "zenml").rglob("zenml.db")
        return database


def runs_by_owner(project: Project) -> dict[int, object]:
    """The MLflow runs the processes opened, by their owner PID tag."""
    client = project.client()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id])
    return {int(run.data.tags[OWNER_PID_TAG]): run for run in runs if OWNER_PID_TAG in run.data.tags}


def statuses(project: Project) -> dict[int, str]:
    return {pid: run.info.status for pid, run in runs_by_owner(project).items()}


def register_ready_version(project: Project, resolved_config: str) -> int:
    """A finished training run and its version, pending and then ready, as `trustops train` records them."""
    from trustops.tracking import ensure_experiment

    client = project.client()
    experiment_id = ensure_experiment(EXPERIMENT, project.tracking_uri, project.root)
    run = client.create_run(experiment_id, run_name="previous-ready-run")
    client.log_text(run.info.run_id, resolved_config, "config/resolved.yaml")
    client.create_registered_model(MODEL)
    version = client.create_model_version(MODEL, f"runs:/{run.info.run_id}/model", run.info.run_id, tags={STATUS_TAG: PENDING})
    client.set_terminated(run.info.run_id, "FINISHED")
    mark_version_ready(client, MODEL, version.version)
    return int(version.version)


@pytest.fixture(scope="module")
def scenario(project: Project) -> Scenario:
    # The ZenML store and stack are created once, before six processes write to them at once.
    stack = subprocess.Popen([TRUSTOPS, "stack"], cwd=project.root, env=project.env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    config = project.trustops("config", *TRAIN[1:], timeout=120)
    assert config.returncode == 0, config.stderr
    previous = register_ready_version(project, config.stdout)
    assert stack.wait(300) == 0, stack.stdout.read()[-3000:]

    killed = {name: FailpointProcess(project, name, *TRAIN) for name in BOUNDARIES}
    terminated = {name: FailpointProcess(project, name, *TRAIN) for name in TERMINATED_AT}
    try:
        killed_stops = stop_all_when_ready(killed, signal.SIGKILL, timeout=600)
        for process in terminated.values():
            process.wait_ready(600)
        before = statuses(project)
        next_command = project.trustops("compare", "--experiment", EXPERIMENT, timeout=300)
        after = statuses(project)
        waiting = {name: process.process.pid for name, process in terminated.items()}
        # SIGTERM last, on a quiet machine: the 5-second limit is the job's, not a busy machine's.
        terminated_stops = {name: process.stop(signal.SIGTERM) for name, process in terminated.items()}
    finally:
        for process in (*killed.values(), *terminated.values()):
            process.cleanup()
    print("\n".join(f"{s.signal.name} at {s.failpoint}: reached after {s.seconds_to_ready:.0f} s, exited "
                    f"{s.seconds_to_exit:.1f} s after the signal" for s in (*killed_stops.values(), *terminated_stops.values())))
    return Scenario(project, previous, killed_stops, terminated_stops, waiting, before, next_command, after)


def test_each_process_stopped_at_its_boundary(scenario):
    for name, stopped in scenario.killed.items():
        assert stopped.returncode == -signal.SIGKILL, (name, stopped.output[-2000:])
    for name, stopped in scenario.terminated.items():
        assert stopped.returncode == 143, (name, stopped.output[-2000:])
        assert "terminated (SIGTERM)" in stopped.output and "Traceback" not in stopped.output, stopped.output[-2000:]


def test_sigterm_ends_the_job_within_5_seconds_with_its_runs_ended(scenario):
    runs, zenml = scenario.runs(), scenario.zenml_status()
    for name, stopped in scenario.terminated.items():
        assert stopped.seconds_to_exit < 5, f"{name}: exited {stopped.seconds_to_exit:.1f} s after SIGTERM"
        run = runs[stopped.pid]
        assert run.info.status == "KILLED", name  # by the process itself: it was RUNNING after the last reconcile
        assert zenml[run.info.run_name] in ("failed", "stopped"), (name, zenml[run.info.run_name])


def test_no_version_from_a_stopped_run_is_ready_and_latest_is_the_previous_one(scenario):
    from trustops.registry import resolve_registered_model

    runs = scenario.runs()
    stopped_runs = {runs[s.pid].info.run_id for s in (*scenario.killed.values(), *scenario.terminated.values())}
    versions = scenario.versions()
    unfinished = {number: v for number, v in versions.items() if v.run_id in stopped_runs}
    # Killed right after `mlflow.register_model` returned: both registry rows exist, neither is ready.
    assert len(unfinished) == 2 and min(unfinished) > scenario.previous_version
    assert all(v.tags[STATUS_TAG] == PENDING for v in unfinished.values())
    assert versions[scenario.previous_version].tags[STATUS_TAG] == READY

    client = scenario.project.client()
    assert resolve_registered_model(MODEL, "latest", client).version == scenario.previous_version
    for number, version in unfinished.items():
        with pytest.raises(ConfigError) as refused:
            resolve_registered_model(MODEL, str(number), client)
        message = str(refused.value)
        assert message.startswith(f"Model {MODEL} version {number} comes from a training run that did not finish (run "
                                  f"{version.run_id} is ")
        assert "\n" not in message and message.endswith("use a ready version or retrain.")


def test_the_next_command_ends_every_abandoned_run_as_killed_and_leaves_live_ones_alone(scenario):
    assert scenario.next_command.returncode == 0, scenario.next_command.stderr[-3000:]
    for name, stopped in scenario.killed.items():
        assert scenario.before[stopped.pid] == "RUNNING", name  # what SIGKILL leaves behind
        assert scenario.after[stopped.pid] == "KILLED", name
    for name, pid in scenario.waiting.items():
        assert scenario.after[pid] == "RUNNING", name  # its owner was alive, waiting at its failpoint

    runs, zenml = scenario.runs(), scenario.zenml_status()
    assert not [run.info.run_name for run in runs.values() if run.info.status == "RUNNING"]
    for name, stopped in scenario.killed.items():
        run = runs[stopped.pid]
        assert f"owner process {stopped.pid} " in run.data.tags[RECONCILED_TAG]
        assert zenml[run.info.run_name] == "stopped", (name, zenml[run.info.run_name])
        # its ZenML model version, pending when the process died, is marked failed by the reconcile
        assert scenario.zenml_model_status()[run.info.run_name] == "failed", name
    assert "KILLED" in scenario.next_command.stdout  # `compare` shows them ended, not in progress


def test_promote_refuses_an_unfinished_version_and_aliases_resolve_only_ready_ones(scenario, monkeypatch):
    from trustops import commands
    from trustops.registry import resolve_registered_model

    monkeypatch.setenv("TRUSTOPS_PROJECT_ROOT", str(scenario.project.root))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", scenario.project.tracking_uri)  # not a store an earlier test pointed at
    killed_run = scenario.runs()[scenario.killed["train.register"].pid]
    (pending,) = [n for n, v in scenario.versions().items() if v.run_id == killed_run.info.run_id]
    with pytest.raises(ConfigError, match=rf"version {pending} comes from a training run that did not finish \(run "
                                          rf"{killed_run.info.run_id} is KILLED\)"):
        commands.promote(MODEL, str(pending), alias="champion")

    assert commands.promote(MODEL, str(scenario.previous_version), alias="champion") == 0
    client = scenario.project.client()
    assert resolve_registered_model(f"{MODEL}@champion", "latest", client).version == scenario.previous_version
    # An alias moved by hand (MLflow's UI) onto an unfinished version is refused all the same.
    client.set_registered_model_alias(MODEL, "challenger", str(pending))
    with pytest.raises(ConfigError, match="did not finish"):
        resolve_registered_model(f"{MODEL}@challenger", "latest", client)
