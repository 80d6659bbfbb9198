"""One training run: preflight, the ZenML pipeline on the trustops stack, and its summary."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from trustops.lifecycle import mark_version_ready, reconcile_abandoned_runs
from trustops.paths import default_tracking_uri, project_root, state_dir
from trustops.runs.preflight import check_training_inputs
from trustops.settings import TrainSettings
from trustops.runs.zenml_runs import run_tracked_pipeline
from trustops.storage import check_stores, load_storage
from trustops.tracking import experiment_artifact_location
from trustops.zenml_model import (
    ZenMLModelVersion,
    create_training_version,
    finish_training_version,
    settle_unfinished_training_version,
)

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
    return f"train-{settings.data.name}-{settings.model.family}-{activation}-{privacy}-{stamp}-{uuid.uuid4().hex[:4]}"


def run_training(settings: TrainSettings, resolved_config: str, *, sweep_point: str | None = None) -> TrainingRunSummary:
    root = project_root()
    check_training_inputs(settings, root)
    tracking_uri = default_tracking_uri(root)
    run_name = settings.tracking.run_name or default_run_name(settings)
    storage = load_storage(root)
    if settings.capture.enabled and not settings.capture.uri:
        if storage.is_s3:
            capture = dataclasses.replace(settings.capture, uri=storage.capture_uri(run_name),
                                          endpoint_url=settings.capture.endpoint_url or storage.endpoint_url)
        else:
            capture = dataclasses.replace(settings.capture, uri=str(state_dir(root) / "captures" / run_name))
        settings = dataclasses.replace(settings, capture=capture)
    check_run_stores(settings, tracking_uri, root)
    reconcile_abandoned_runs(tracking_uri, root=root)  # runs a killed trustops left RUNNING end as KILLED
    # Only now: the pipeline imports Lightning, torch and ZenML (about 10 s), which a refused run never needs.
    from pipelines.training import training_pipeline

    run_tags = {**comparison_tags(settings), "trustops_job": "train", **({"sweep_point": sweep_point} if sweep_point else {})}
    # Each run gets its own version of the ZenML model named like the registered model, created
    # pending once ZenML's store is set up; ZenML links the run and its artifacts to it.
    zenml_version: list[ZenMLModelVersion] = []

    def zenml_model():
        zenml_version.append(create_training_version(settings.tracking.registered_model_name, run_name))
        return zenml_version[0].as_model()

    try:
        pipeline_run = run_tracked_pipeline(
            training_pipeline, run_name=run_name, experiment_name=settings.tracking.experiment_name, root=root,
            model=zenml_model, settings=settings, resolved_config=resolved_config, run_tags=run_tags,
        )
    except BaseException:
        if zenml_version:  # a failed run's version must not pass for a registered one
            settle_unfinished_training_version(zenml_version[0], run_name)
        raise
    registration = pipeline_run.steps["register_model"].outputs["registration"][0].load()
    if registration.get("version"):
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri, tracking_uri)
        # The tag every trustops run uses for the model it made or used (see trustops.compare).
        model_version = f"{registration['registered_model']}/{registration['version']}"
        client.set_tag(registration["run_id"], "model_version", model_version)
        # Last: the pipeline returned, so its run FINISHED; only now may `latest` and aliases pick it.
        mark_version_ready(client, registration["registered_model"], registration["version"])
    if zenml_version:  # after MLflow's: a ready ZenML version always names a ready MLflow one
        finish_training_version(zenml_version[0], registered=bool(registration.get("version")))
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


def comparison_tags(settings: TrainSettings) -> dict[str, str]:
    """The tags every trustops run shares (activation, dp), so runs compare side by side."""
    return {
        "activation": settings.model.activation,
        "model_family": settings.model.family,
        "dp": str(settings.dp.enabled).lower(),
    }


def check_run_stores(settings: TrainSettings, tracking_uri: str, root) -> None:
    """Fail before any run exists when an S3 store the run would write to is not usable.

    With a tracking server the server writes the artifacts; it was checked when it started.
    """
    from mlflow.tracking import MlflowClient

    from trustops.tracking import is_local_store

    endpoint = load_storage(root).endpoint_url
    stores = []
    if is_local_store(tracking_uri):
        database = tracking_uri.removeprefix("sqlite:///") if tracking_uri.startswith("sqlite:///") else None
        fresh = database is not None and not os.path.exists(database)  # no store yet: leave creating it to the run
        experiment = None if fresh else MlflowClient(tracking_uri).get_experiment_by_name(settings.tracking.experiment_name)
        artifacts = experiment.artifact_location if experiment else experiment_artifact_location(tracking_uri, root)
        stores.append(("the MLflow artifact store", artifacts, endpoint))
    if settings.capture.enabled:
        stores.append(("the capture store", settings.capture.uri, settings.capture.endpoint_url or endpoint))
    check_stores(stores)
