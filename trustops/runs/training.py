"""One training run: preflight, the ZenML pipeline on the trustops stack, and its summary."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from trustops.errors import TrustopsError
from trustops.paths import default_tracking_uri, project_root
from trustops.runs.preflight import check_training_inputs
from trustops.settings import TrainSettings
from trustops.stack import ensure_stack

logger = logging.getLogger(__name__)


@dataclass
class TrainingRunSummary:
    run_name: str
    mlflow_run_id: str
    tracking_uri: str
    experiment_name: str
    metrics: dict[str, float]
    training: dict[str, Any]
    registration: dict[str, Any]
    settings: TrainSettings
    extra: dict[str, Any] = field(default_factory=dict)


class PipelineRunFailed(TrustopsError, RuntimeError):
    """A pipeline step failed; the message carries the step's own error."""


def default_run_name(settings: TrainSettings) -> str:
    privacy = f"dp-eps{settings.dp.target_epsilon:g}" if settings.dp.enabled and settings.dp.target_epsilon else (
        f"dp-sigma{settings.dp.noise_multiplier:g}" if settings.dp.enabled else "nodp"
    )
    activation = settings.model.activation + (f"{settings.model.beta:g}" if settings.model.activation == "smelu" else "")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"train-{settings.model.family}-{activation}-{privacy}-{stamp}-{uuid.uuid4().hex[:4]}"


def run_training(settings: TrainSettings, resolved_config: str, *, sweep_point: str | None = None) -> TrainingRunSummary:
    root = project_root()
    check_training_inputs(settings, root)
    tracking_uri = default_tracking_uri(root)

    from trustops.tracking import ensure_experiment

    ensure_experiment(settings.tracking.experiment_name, tracking_uri, root)
    tracker = ensure_stack(tracking_uri, root)

    from zenml.integrations.mlflow.flavors.mlflow_experiment_tracker_flavor import MLFlowExperimentTrackerSettings

    from pipelines.training import training_pipeline

    run_name = settings.tracking.run_name or default_run_name(settings)
    run_tags = {"trustops_job": "train", **({"sweep_point": sweep_point} if sweep_point else {})}
    configured = training_pipeline.with_options(
        run_name=run_name,
        settings={"experiment_tracker": MLFlowExperimentTrackerSettings(experiment_name=settings.tracking.experiment_name)},
    )
    try:
        pipeline_run = configured(settings=settings.to_dict(), resolved_config=resolved_config, run_tags=run_tags, tracker=tracker)
    except Exception as error:
        raise _explain_failure(error, run_name) from error

    from zenml.client import Client

    pipeline_run = Client().get_pipeline_run(pipeline_run.id)
    registration = pipeline_run.steps["register_model"].outputs["registration"][0].load()
    return TrainingRunSummary(
        run_name=run_name,
        mlflow_run_id=registration["run_id"],
        tracking_uri=tracking_uri,
        experiment_name=settings.tracking.experiment_name,
        metrics=pipeline_run.steps["evaluate_model"].outputs["evaluation"][0].load(),
        training=pipeline_run.steps["train_model"].outputs["training_summary"][0].load(),
        registration=registration,
        settings=settings,
    )


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
