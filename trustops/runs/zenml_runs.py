"""Run a ZenML pipeline on the trustops stack with MLflow tracking, and report failures clearly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trustops.errors import TrustopsError
from trustops.paths import default_tracking_uri
from trustops.stack import ensure_stack
from trustops.tracking import ensure_experiment


class PipelineRunFailed(TrustopsError, RuntimeError):
    """A pipeline step failed; the message carries the step's own error."""


def run_tracked_pipeline(pipeline: Any, *, run_name: str, experiment_name: str, root: Path, **parameters: Any) -> Any:
    """Run ``pipeline`` with its steps tracked in MLflow experiment ``experiment_name``.

    Returns the finished pipeline run (with its steps' outputs).  A failed step's own error
    is raised, not ZenML's generic one.  The MLflow run carries this process as its owner
    (:func:`trustops.lifecycle.owner_tags`); SIGTERM or Ctrl-C ends it as KILLED and stops the
    ZenML run before the interrupt goes on up.
    """
    from zenml.client import Client
    from zenml.enums import StackComponentType
    from zenml.integrations.mlflow.flavors.mlflow_experiment_tracker_flavor import MLFlowExperimentTrackerSettings

    from trustops.lifecycle import end_interrupted_run, owner_tags

    tracking_uri = default_tracking_uri(root)
    ensure_experiment(experiment_name, tracking_uri, root)
    tracker = ensure_stack(tracking_uri, root)
    # Owner tags only when the steps run in this process: a remote orchestrator's steps outlive it.
    in_process = Client().active_stack_model.components[StackComponentType.ORCHESTRATOR][0].flavor_name == "local"
    configured = pipeline.with_options(
        run_name=run_name,
        settings={"experiment_tracker": MLFlowExperimentTrackerSettings(experiment_name=experiment_name,
                                                                        tags=owner_tags() if in_process else {})},
    )
    try:
        finished = configured(tracker=tracker, **parameters)
    except KeyboardInterrupt:  # SIGINT, or SIGTERM as trustops.errors.Terminated
        end_interrupted_run(run_name, experiment_name, tracking_uri, root=root)
        raise
    except Exception as error:
        raise _explain_failure(error, run_name) from error
    return Client().get_pipeline_run(finished.id)


def _explain_failure(error: Exception, run_name: str) -> Exception:
    """ZenML reports a failed step as a generic error; surface the step's own error instead."""
    step_error = _failed_step_error(run_name)
    if step_error is not None:
        return step_error
    return PipelineRunFailed(f"Pipeline run {run_name} failed: {type(error).__name__}: {error}")


def _failed_step_error(run_name: str) -> Exception | None:
    """Rebuild the exception a failed step raised, from the traceback ZenML stored for it."""
    import importlib

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
        source = info.source or ""
        marker = f"{source}: " if source else ""
        at = info.traceback.rfind(marker) if marker else -1
        message = info.traceback[at + len(marker):].strip() if at >= 0 else info.traceback.strip().splitlines()[-1]
        module_name, _, class_name = source.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError, ValueError):
            cls = None
        if isinstance(cls, type) and issubclass(cls, TrustopsError):
            return cls(message)
        return PipelineRunFailed(f"Step {step_name} of pipeline run {run_name} failed: {class_name or 'error'}: {message}")
    return None
