"""One training run: preflight, the ZenML pipeline on the trustops stack, and its summary."""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from trustops.paths import default_tracking_uri, project_root, state_dir
from trustops.runs.preflight import check_training_inputs
from trustops.settings import TrainSettings
from trustops.runs.zenml_runs import run_tracked_pipeline

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

    from pipelines.training import training_pipeline

    run_name = settings.tracking.run_name or default_run_name(settings)
    if settings.capture.enabled and not settings.capture.uri:
        captures = state_dir(root) / "captures" / run_name
        settings = dataclasses.replace(settings, capture=dataclasses.replace(settings.capture, uri=str(captures)))
    run_tags = {"trustops_job": "train", **({"sweep_point": sweep_point} if sweep_point else {})}
    pipeline_run = run_tracked_pipeline(
        training_pipeline, run_name=run_name, experiment_name=settings.tracking.experiment_name, root=root,
        settings=settings.to_dict(), resolved_config=resolved_config, run_tags=run_tags,
    )
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


