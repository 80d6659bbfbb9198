"""One monitor run for a registered model: the ZenML monitor pipeline, tracked as an MLflow run."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

from monitors import available_monitors
from trustops.errors import ConfigError
from trustops.monitoring.checks import VIEWS
from trustops.monitoring.loop import DEFAULT_MONITORS
from trustops.monitoring.records import PassReport
from trustops.monitoring.watermark import exclusive_run
from trustops.paths import default_tracking_uri, project_root, state_dir
from trustops.registry import RegisteredModel, resolve_registered_model

MONITORING_EXPERIMENT = "trustops-monitoring"


def check_monitor_names(names: list[str]) -> None:
    registered = set(available_monitors())
    unknown = [n for n in names if n not in registered or n not in VIEWS]
    if unknown:
        usable = sorted(registered & set(VIEWS))
        raise ConfigError(f"Unknown or unusable monitor(s) {', '.join(unknown)}. Monitors the loop can run: {', '.join(usable)}.")


def monitor_state(root: Path, model: RegisteredModel) -> Path:
    """Per version: a new version has its own capture store, reference, charts and watermark."""
    return state_dir(root) / "monitoring" / re.sub(r"[^A-Za-z0-9_.-]", "_", model.name) / f"v{model.version}"


def resolve_monitored_model(model_name: str, model_version: str, root: Path) -> RegisteredModel:
    from mlflow.tracking import MlflowClient

    tracking_uri = default_tracking_uri(root)
    found = resolve_registered_model(model_name, model_version, MlflowClient(tracking_uri, tracking_uri))
    if not found.capture_uri:
        raise ConfigError(f"Model {found.name} v{found.version} has no capture store to monitor; retrain it with capture on.")
    return found


def run_monitor(model_name: str, model_version: str = "latest", *, monitors: list[str] | None = None) -> tuple[PassReport, str | None]:
    """One pass of the monitor pipeline over what ``model_name`` captured since the last pass."""
    from pipelines.monitoring import monitoring_pipeline
    from trustops.runs.zenml_runs import run_tracked_pipeline

    names = monitors or [m for m in DEFAULT_MONITORS if m in available_monitors()]
    check_monitor_names(names)
    root = project_root()
    found = resolve_monitored_model(model_name, model_version, root)
    state = monitor_state(root, found)
    run_name = f"monitor-{found.name}-v{found.version}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
    # The local orchestrator runs the steps in this process, so holding the lock here covers the
    # whole pipeline; on a remote orchestrator the watermark's compare-and-set guards instead.
    with exclusive_run(state / "run.lock"):
        pipeline_run = run_tracked_pipeline(
            monitoring_pipeline, run_name=run_name, experiment_name=MONITORING_EXPERIMENT, root=root,
            model_name=found.name, model_version=str(found.version), monitors=names, state=str(state),
        )
    report = pipeline_run.steps["send_alerts"].outputs["pass_report"][0].load()
    return report, report.mlflow_run_id
