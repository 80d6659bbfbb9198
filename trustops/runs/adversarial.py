"""One adversarial-detection run: attack a registered model and test its penultimate layer."""

from __future__ import annotations

import dataclasses
import time
import uuid
from dataclasses import dataclass

from mlflow.tracking import MlflowClient

from trustops.paths import default_tracking_uri, project_root
from trustops.registry import resolve_registered_model
from trustops.runs.zenml_runs import run_tracked_pipeline
from trustops.settings import AdversarialSettings


@dataclass
class AdversarialRunSummary:
    run_name: str
    model: str
    attack: dict[str, float]
    detection: dict[str, float]
    settings: AdversarialSettings


def run_adversarial(settings: AdversarialSettings) -> AdversarialRunSummary:
    root = project_root()
    tracking_uri = default_tracking_uri(root)
    # Fail before any run exists when the model is unknown or was trained without capture.
    found = resolve_registered_model(settings.model_name, settings.model_version, MlflowClient(tracking_uri, tracking_uri))
    if not found.capture_uri:
        from trustops.errors import ConfigError

        raise ConfigError(
            f"Model {found.name} v{found.version} was trained without activation capture, so there is no reference. "
            "Retrain it with capture on (the default)."
        )
    from trustops.runs.preflight import check_detect_layers

    check_detect_layers(found, settings.detect.combine_layers, root)  # a layer the model lacks fails before any attack
    from pipelines.adversarial import adversarial_pipeline

    run_name = f"detect-{found.name}-v{found.version}-eps{settings.attack.epsilon:g}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
    resolved = dataclasses.replace(settings, model_name=found.name, model_version=str(found.version))  # "latest" pinned
    pipeline_run = run_tracked_pipeline(
        adversarial_pipeline, run_name=run_name, experiment_name=settings.experiment_name, root=root, settings=resolved
    )
    return AdversarialRunSummary(
        run_name=run_name,
        model=f"{found.name} v{found.version}",
        attack=pipeline_run.steps["attack_split"].outputs["attack_metrics"][0].load(),
        detection=pipeline_run.steps["detect_adversarial"].outputs["detection"][0].load(),
        settings=settings,
    )
