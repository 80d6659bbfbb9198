"""Two-phase registration and run reconciliation against a real (SQLite) MLflow store, no pipeline.

The fault-injection suite (tests/faults/) proves the same with killed ``trustops`` processes;
these are the cheap, exact cases: which version ``latest``, an alias or an explicit number
resolves to, and which RUNNING runs count as abandoned.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass

import pytest
import yaml

from trustops import lifecycle
from trustops.errors import ConfigError
from trustops.lifecycle import (OWNER_HOST_TAG, OWNER_PID_TAG, OWNER_START_TAG, PENDING, READY, STATUS_TAG,
                                mark_version_ready, owner_tags, process_start_time, reconcile_abandoned_runs)
from trustops.registry import resolve_registered_model, split_model_spec
from trustops.settings import TrainSettings

@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    """One store per module (creating an MLflow database takes seconds); each test has its own experiment and model."""
    from mlflow.tracking import MlflowClient

    folder = tmp_path_factory.mktemp("lifecycle")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    return uri, MlflowClient(uri, uri), folder


@dataclass(frozen=True)
class Store:
    uri: str
    client: object
    experiment: str
    model: str


@pytest.fixture
def store(shared_store, request) -> Store:
    uri, client, folder = shared_store
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:100]
    experiment = client.create_experiment(name, artifact_location=str(folder / name))
    client.create_registered_model(name)
    return Store(uri, client, experiment, name)


def add_version(store, *, run_status: str = "FINISHED", status: str | None = READY, tags: dict | None = None) -> str:
    """A training run with its resolved config and a version of the model from it; returns the version number."""
    client = store.client
    run = client.create_run(store.experiment, tags=tags or {})
    client.log_text(run.info.run_id, yaml.safe_dump(TrainSettings().to_dict()), "config/resolved.yaml")
    version = client.create_model_version(store.model, f"runs:/{run.info.run_id}/model", run.info.run_id,
                                          tags={} if status is None else {STATUS_TAG: PENDING})
    if run_status != "RUNNING":
        client.set_terminated(run.info.run_id, run_status)
    if status == READY:
        mark_version_ready(client, store.model, version.version)
    return str(version.version)


def test_latest_is_the_newest_ready_version(store):
    client, model = store.client, store.model
    ready = add_version(store)
    add_version(store, run_status="KILLED", status=PENDING)
    add_version(store, run_status="RUNNING", status=PENDING)
    add_version(store, run_status="FINISHED", status=PENDING)  # killed between the run's end and the ready tag
    assert resolve_registered_model(model, "latest", client).version == int(ready)


def test_a_version_registered_without_the_status_tag_is_ready_when_its_run_finished(store):
    client, model = store.client, store.model
    finished = add_version(store, status=None)  # by hand, or before two-phase registration
    add_version(store, run_status="RUNNING", status=None)
    assert resolve_registered_model(model, "latest", client).version == int(finished)


@pytest.mark.parametrize("run_status,why", [
    ("KILLED", "is KILLED"),
    ("RUNNING", "is RUNNING"),
    ("FINISHED", "FINISHED but its process stopped before marking the version ready"),
])
def test_an_unready_version_named_explicitly_is_refused_in_one_line(store, run_status, why):
    client, model = store.client, store.model
    add_version(store)
    number = add_version(store, run_status=run_status, status=PENDING)
    run_id = client.get_model_version(model, number).run_id
    with pytest.raises(ConfigError) as refused:
        resolve_registered_model(model, number, client)
    assert str(refused.value) == (f"Model {model} version {number} comes from a training run that did not finish "
                                  f"(run {run_id} {why}); use a ready version or retrain.")


def test_no_ready_version_is_a_clear_error(store):
    client, model = store.client, store.model
    add_version(store, run_status="KILLED", status=PENDING)
    with pytest.raises(ConfigError, match=f"No ready version of registered model '{model}'"):
        resolve_registered_model(model, "latest", client)


def test_name_at_alias_resolves_a_ready_version_and_refuses_an_unready_one(store):
    client, model = store.client, store.model
    ready = add_version(store)
    pending = add_version(store, run_status="KILLED", status=PENDING)
    client.set_registered_model_alias(model, "champion", ready)
    client.set_registered_model_alias(model, "challenger", pending)
    assert resolve_registered_model(f"{model}@champion", "latest", client).version == int(ready)
    assert resolve_registered_model(model, "@champion", client).name == model
    with pytest.raises(ConfigError, match="did not finish"):
        resolve_registered_model(f"{model}@challenger", "latest", client)


@pytest.mark.parametrize("name,version,message", [
    ("m@champion", "3", "not both"),
    ("@champion", "latest", "NAME@ALIAS"),
    ("m@", "latest", "NAME@ALIAS"),
    ("m@a@b", "latest", "NAME@ALIAS"),
])
def test_a_malformed_model_spec_is_refused(name, version, message):
    with pytest.raises(ConfigError, match=message):
        split_model_spec(name, version)


def _gone_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _owner(pid: int, start: str | None = None, host: str | None = None) -> dict[str, str]:
    return {OWNER_HOST_TAG: host or socket.gethostname(), OWNER_PID_TAG: str(pid),
            OWNER_START_TAG: process_start_time(pid) or "" if start is None else start}


def test_reconcile_ends_only_runs_whose_owner_on_this_host_is_gone(store, monkeypatch):
    uri, client, experiment = store.uri, store.client, store.experiment
    stopped_in_zenml = []
    monkeypatch.setattr(lifecycle, "stop_zenml_runs", lambda names, root=None: stopped_in_zenml.extend(names))
    runs = {
        "gone": client.create_run(experiment, run_name="gone", tags=_owner(_gone_pid(), start="12345")),
        "recycled": client.create_run(experiment, run_name="recycled", tags=_owner(os.getpid(), start="1")),  # PID reused
        "alive": client.create_run(experiment, run_name="alive", tags=owner_tags()),
        "elsewhere": client.create_run(experiment, run_name="elsewhere", tags=_owner(_gone_pid(), host="another-host")),
        "untagged": client.create_run(experiment, run_name="untagged"),
    }
    ended = reconcile_abandoned_runs(uri)
    assert sorted(ended) == sorted([runs["gone"].info.run_id, runs["recycled"].info.run_id])
    assert sorted(stopped_in_zenml) == ["gone", "recycled"]
    status = {name: client.get_run(run.info.run_id).info.status for name, run in runs.items()}
    assert status == {"gone": "KILLED", "recycled": "KILLED", "alive": "RUNNING", "elsewhere": "RUNNING", "untagged": "RUNNING"}
    assert reconcile_abandoned_runs(uri) == []  # idempotent


def test_reconcile_does_not_create_a_store_that_does_not_exist(tmp_path):
    uri = f"sqlite:///{tmp_path / 'none' / 'mlflow.db'}"
    assert reconcile_abandoned_runs(uri) == []
    assert not (tmp_path / "none").exists()


def test_process_start_time_tells_a_live_process_from_a_gone_one():
    assert process_start_time(os.getpid()) == process_start_time(os.getpid()) is not None
    assert process_start_time(_gone_pid()) is None


def test_nothing_to_reconcile_is_answered_without_importing_mlflow(store):
    store.client.create_run(store.experiment, run_name="alive", tags=owner_tags())  # owned by this live process
    code = ("import sys; from trustops.lifecycle import reconcile_abandoned_runs; "
            f"print(reconcile_abandoned_runs({store.uri!r}), 'mlflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["[]", "False"]
