"""Run a ZenML pipeline on the trustops stack with MLflow tracking, and report failures clearly.

On the local orchestrator the pipeline has finished when ZenML's call returns. An asynchronous
orchestrator (Airflow) returns once the run is handed over; :func:`wait_for_pipeline_run` then
polls the ZenML run until it finishes, so ``trustops train`` and ``trustops monitor`` mean the
same on every stack: the run is over, and its outputs are there, when the command returns.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trustops.errors import TrustopsError
from trustops.paths import default_tracking_uri
from trustops.stack import ensure_stack
from trustops.tracking import ensure_experiment


class PipelineRunFailed(TrustopsError, RuntimeError):
    """A pipeline step failed; the message carries the step's own error."""


class PipelineRunTimeout(TrustopsError, TimeoutError):
    """An asynchronous orchestrator did not start or finish the run in time; the run may go on there."""

    exit_code = 1


# Seconds; the environment overrides them for a long training run or a slow scheduler.
START_TIMEOUT_ENV, RUN_TIMEOUT_ENV = "TRUSTOPS_ORCHESTRATOR_START_TIMEOUT", "TRUSTOPS_ORCHESTRATOR_TIMEOUT"
DEFAULT_START_TIMEOUT, DEFAULT_RUN_TIMEOUT = 600.0, 6 * 3600.0
NOT_STARTED = ("initializing", "provisioning", "queued")


def _seconds(variable: str, default: float) -> float:
    value = os.environ.get(variable)
    try:
        seconds = float(value) if value else default
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        from trustops.errors import ConfigError

        raise ConfigError(f"{variable} must be a number of seconds > 0. Got: {value!r}")
    return seconds


def wait_for_pipeline_run(run_id: Any, *, describe: str, failed_before_start: Callable[[], str | None] = lambda: None,
                          poll_seconds: float = 2.0) -> Any:
    """Poll the ZenML run ``run_id`` until it has finished; returns it.

    Gives up with :class:`PipelineRunTimeout` when the orchestrator has not started it within
    ``TRUSTOPS_ORCHESTRATOR_START_TIMEOUT`` seconds (600) or not finished it within
    ``TRUSTOPS_ORCHESTRATOR_TIMEOUT`` (6 h), and with the orchestrator's own message as soon as
    ``failed_before_start()`` returns one (a task that failed before its step reached ZenML).
    """
    from zenml.client import Client

    start_timeout = _seconds(START_TIMEOUT_ENV, DEFAULT_START_TIMEOUT)
    run_timeout = _seconds(RUN_TIMEOUT_ENV, DEFAULT_RUN_TIMEOUT)
    began = time.monotonic()
    client = Client()
    while True:
        run = client.get_pipeline_run(run_id, hydrate=False)
        if run.status.is_finished:
            return client.get_pipeline_run(run_id)
        if message := failed_before_start():
            from trustops.orchestration.airflow import AirflowTaskFailed

            raise AirflowTaskFailed(message)
        waited = time.monotonic() - began
        if run.status.value in NOT_STARTED and waited > start_timeout:
            raise PipelineRunTimeout(
                f"{describe} has not started after {waited:.0f} s (ZenML run status {run.status.value}): check that the "
                f"orchestrator's scheduler runs and sees its DAG folder. Waited {START_TIMEOUT_ENV}={start_timeout:g} s.")
        if waited > run_timeout:
            raise PipelineRunTimeout(
                f"{describe} has not finished after {waited:.0f} s (ZenML run status {run.status.value}); it may still "
                f"finish there. Waited {RUN_TIMEOUT_ENV}={run_timeout:g} s.")
        time.sleep(poll_seconds)


def run_tracked_pipeline(pipeline: Any, *, run_name: str, experiment_name: str, root: Path,
                         model: Callable[[], Any] | None = None, **parameters: Any) -> Any:
    """Run ``pipeline`` with its steps tracked in MLflow experiment ``experiment_name``.

    ``model``, called once the project's ZenML store and stack are set up, gives the
    ``zenml.Model`` the run is attached to (its version in ZenML's Model Control Plane, see
    :mod:`trustops.zenml_model`), or ``None`` for none.

    Returns the finished pipeline run (with its steps' outputs).  A failed step's own error
    is raised, not ZenML's generic one.  The MLflow run carries this process as its owner
    (:func:`trustops.lifecycle.owner_tags`); SIGTERM or Ctrl-C ends it as KILLED and stops the
    ZenML run before the interrupt goes on up.
    """
    from zenml.client import Client
    from zenml.enums import StackComponentType
    from zenml.integrations.mlflow.flavors.mlflow_experiment_tracker_flavor import MLFlowExperimentTrackerSettings

    from trustops.lifecycle import end_interrupted_run, owner_tags
    from trustops.orchestration import airflow

    tracking_uri = default_tracking_uri(root)
    ensure_experiment(experiment_name, tracking_uri, root)
    tracker = ensure_stack(tracking_uri, root)
    orchestrator = Client().active_stack_model.components[StackComponentType.ORCHESTRATOR][0]
    # Owner tags only when the steps run in this process: a remote orchestrator's steps outlive it.
    in_process = orchestrator.flavor_name == "local"
    on_airflow = airflow.is_trustops_airflow(orchestrator)
    settings: dict[str, Any] = {"experiment_tracker": MLFlowExperimentTrackerSettings(
        experiment_name=experiment_name, tags=owner_tags() if in_process else {})}
    if not in_process:  # a bad timeout setting fails before anything is handed to the orchestrator
        for variable, default in ((START_TIMEOUT_ENV, DEFAULT_START_TIMEOUT), (RUN_TIMEOUT_ENV, DEFAULT_RUN_TIMEOUT)):
            _seconds(variable, default)
    if on_airflow:
        settings.update(airflow.submission_settings(dag_id=run_name))
        airflow.clear_task_failure(run_name, root)
    attached = model() if model is not None else None
    configured = pipeline.with_options(run_name=run_name, settings=settings, **({"model": attached} if attached else {}))
    try:
        submitted = configured(tracker=tracker, **parameters)
    except KeyboardInterrupt:  # SIGINT, or SIGTERM as trustops.errors.Terminated
        end_interrupted_run(run_name, experiment_name, tracking_uri, root=root)
        raise
    except Exception as error:
        raise _explain_failure(error, run_name) from error
    try:
        finished = submitted if submitted.status.is_finished else wait_for_pipeline_run(
            submitted.id, describe=f"Pipeline run {run_name} on orchestrator {orchestrator.name!r} ({orchestrator.flavor_name})",
            failed_before_start=(lambda: airflow.task_failure(run_name, root)) if on_airflow else lambda: None)
    except KeyboardInterrupt:  # the orchestrator's steps are not this process's to end
        print(f"trustops: stopped waiting; run {run_name} goes on in orchestrator {orchestrator.name!r}.", flush=True)
        raise
    if on_airflow:
        # The run is over: its one-off DAG has served (Airflow keeps the run's records). Left in
        # the folder, every such file would be parsed again every 30 s for good. Not before: each
        # task of a running DAG reads the file again when it starts.
        airflow.remove_dag(orchestrator.configuration, run_name)
    if finished.status.value not in ("completed", "cached"):
        raise _failed_step_error(run_name) or PipelineRunFailed(
            f"Pipeline run {run_name} ended {finished.status.value} on orchestrator {orchestrator.name!r}.")
    return Client().get_pipeline_run(finished.id)


def _explain_failure(error: Exception, run_name: str) -> Exception:
    """ZenML reports a failed step as a generic error; surface the step's own error instead."""
    step_error = _failed_step_error(run_name)
    if step_error is not None:
        return step_error
    return PipelineRunFailed(f"Pipeline run {run_name} failed: {type(error).__name__}: {error}")


def _failed_step_error(run_name: str) -> Exception | None:
    """The exception a failed step raised, rebuilt from the class and message ZenML recorded for it.

    A trustops error comes back as itself (a bad setting stays a :class:`ConfigError`); any
    other becomes a :class:`PipelineRunFailed` naming the step, the class and the message.
    """
    import pkgutil

    from zenml.client import Client
    from zenml.enums import ExecutionStatus

    try:
        pipeline_run = Client().get_pipeline_run(run_name)
    except KeyError:
        return None
    for step_name, step_run in pipeline_run.steps.items():
        info = step_run.exception_info
        if step_run.status != ExecutionStatus.FAILED or info is None:
            continue
        message = info.message or ""  # str(exception), as ZenML records it
        # Not ZenML's source_utils.load: it needs a source root, which this process may not have.
        try:
            cls = pkgutil.resolve_name(info.source) if info.source else None
        except (ImportError, AttributeError, ValueError):
            cls = None
        if isinstance(cls, type) and issubclass(cls, TrustopsError):
            return cls(message)
        class_name = (info.source or "").rpartition(".")[2] or "error"
        return PipelineRunFailed(f"Step {step_name} of pipeline run {run_name} failed: {class_name}: {message}")
    return None
