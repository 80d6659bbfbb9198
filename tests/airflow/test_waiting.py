"""Waiting for a run on an asynchronous orchestrator: done, a task that failed before ZenML heard of it, timeouts."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from trustops.errors import ConfigError
from trustops.orchestration.airflow import AirflowTaskFailed
from trustops.runs import zenml_runs
from trustops.runs.zenml_runs import PipelineRunTimeout, wait_for_pipeline_run


class Status:
    def __init__(self, value: str) -> None:
        self.value = value

    @property
    def is_finished(self) -> bool:
        return self.value in ("completed", "failed", "stopped")


class FakeClient:
    """Stands in for ZenML's Client: each poll returns the next status, the last one for ever."""

    def __init__(self, statuses: list[str]) -> None:
        self.statuses = statuses
        self.polls = 0

    def get_pipeline_run(self, run_id, hydrate: bool = True):
        status = self.statuses[min(self.polls, len(self.statuses) - 1)]
        self.polls += 1
        return SimpleNamespace(id=run_id, status=Status(status))


@pytest.fixture
def client(monkeypatch):
    import zenml.client

    def install(statuses: list[str]) -> FakeClient:
        fake = FakeClient(statuses)
        monkeypatch.setattr(zenml.client, "Client", lambda: fake)
        return fake

    return install


def test_returns_the_run_once_the_orchestrator_has_finished_it(client):
    fake = client(["provisioning", "running", "running", "completed"])
    run = wait_for_pipeline_run("run-1", describe="Pipeline run r", poll_seconds=0)
    assert run.status.value == "completed" and fake.polls == 5  # four polls, then the hydrated run


def test_a_task_that_failed_before_its_step_reached_zenml_stops_the_wait(client):
    client(["provisioning"])
    notes = iter([None, None, "Airflow task load_data of DAG r failed on try 3 ..."])
    with pytest.raises(AirflowTaskFailed, match="Airflow task load_data of DAG r failed"):
        wait_for_pipeline_run("run-1", describe="Pipeline run r", failed_before_start=lambda: next(notes), poll_seconds=0)


def test_a_run_the_scheduler_never_starts_times_out_with_what_to_check(client, monkeypatch):
    client(["provisioning"])
    monkeypatch.setenv(zenml_runs.START_TIMEOUT_ENV, "0.05")
    with pytest.raises(PipelineRunTimeout, match="has not started after .* scheduler runs and sees its DAG folder"):
        wait_for_pipeline_run("run-1", describe="Pipeline run r", poll_seconds=0.01)


def test_a_run_that_does_not_finish_in_time_says_it_may_still_finish(client, monkeypatch):
    client(["running"])
    monkeypatch.setenv(zenml_runs.RUN_TIMEOUT_ENV, "0.05")
    with pytest.raises(PipelineRunTimeout, match="has not finished after .* it may still finish there"):
        wait_for_pipeline_run("run-1", describe="Pipeline run r", poll_seconds=0.01)


@pytest.mark.parametrize("value", ["soon", "0", "-5"])
def test_a_bad_timeout_setting_is_one_clear_error(client, monkeypatch, value):
    client(["running"])
    monkeypatch.setenv(zenml_runs.RUN_TIMEOUT_ENV, value)
    with pytest.raises(ConfigError, match=f"TRUSTOPS_ORCHESTRATOR_TIMEOUT must be a number of seconds > 0. Got: '{value}'"):
        wait_for_pipeline_run("run-1", describe="Pipeline run r", poll_seconds=0)
