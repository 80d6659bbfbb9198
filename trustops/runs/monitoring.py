"""One monitor run for a registered model: the ZenML monitor pipeline, tracked as an MLflow run.

Everything that can be wrong with the request (monitor names, the false-page budget, too few
permutations for a page limit) is checked before anything is read or imported, and a pass with
nothing new ends before the pipeline starts.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

from typing import TYPE_CHECKING

from trustops.errors import ConfigError
from trustops.paths import default_tracking_uri, project_root, state_dir

if TYPE_CHECKING:  # MLflow and pydantic load only when a pass runs
    from trustops.model_index import IndexedVersion
    from trustops.monitoring.records import PassReport
    from trustops.registry import RegisteredModel

MONITORING_EXPERIMENT = "trustops-monitoring"


def check_monitor_names(names: list[str]) -> None:
    from trustops.monitoring.budget import DEFAULT_FALSE_PAGE_BUDGET, check_monitor_request

    check_monitor_request(names, DEFAULT_FALSE_PAGE_BUDGET, "on_shift", None)


def default_monitor_names() -> list[str]:
    from trustops.monitoring.budget import DEFAULT_MONITORS

    return list(DEFAULT_MONITORS)


def monitor_state(root: Path, model: RegisteredModel | IndexedVersion, traffic: str = "production") -> Path:
    """Per version and traffic: a new version has its own capture store, reference, charts and watermark.

    ``traffic`` other than ``production`` (e.g. the main job's ``demo-stream``) keeps its own
    state, so an experiment never moves the production watermark or opens its conditions.
    """
    folder = state_dir(root) / "monitoring" / re.sub(r"[^A-Za-z0-9_.-]", "_", model.name) / f"v{model.version}"
    return folder if traffic == "production" else folder / "experiments" / re.sub(r"[^A-Za-z0-9_.-]", "_", traffic)


def resolve_monitored_model(model_name: str, model_version: str, root: Path) -> RegisteredModel:
    from mlflow.tracking import MlflowClient

    from trustops.registry import resolve_registered_model

    tracking_uri = default_tracking_uri(root)
    found = resolve_registered_model(model_name, model_version, MlflowClient(tracking_uri, tracking_uri))
    if not found.capture_uri:
        raise ConfigError(f"Model {found.name} v{found.version} has no capture store to monitor; retrain it with capture on.")
    return found


def run_monitor(
    model_name: str,
    model_version: str = "latest",
    *,
    monitors: list[str] | None = None,
    false_page_budget: float = 500.0,
    drift_report: str = "on_shift",
    permutations: int | None = None,
    traffic: str = "production",
    capture_uri: str | None = None,
) -> tuple[PassReport, str | None]:
    """One pass of the monitor pipeline over what ``model_name`` captured since the last pass.

    Returns the pass report and its MLflow run id (``None`` for a pass with nothing new, which
    starts no pipeline and records no run; alerts still waiting in the outbox are delivered).
    """
    from trustops.monitoring.budget import check_monitor_request

    names = monitors or default_monitor_names()
    budget = check_monitor_request(names, false_page_budget, drift_report, permutations)  # before anything is read
    from trustops.monitoring.collect import collect_new_captures
    from trustops.monitoring.records import PassReport
    from trustops.monitoring.watermark import exclusive_run

    root = project_root()
    if (quiet := _nothing_new(model_name, model_version, root, traffic, capture_uri)) is not None:
        return quiet, None
    from trustops.lifecycle import reconcile_abandoned_runs

    # A pass with work is the "next command" after a killed one: end the runs nobody owns any more.
    reconcile_abandoned_runs(default_tracking_uri(root), root=root)
    found = resolve_monitored_model(model_name, model_version, root)
    state = monitor_state(root, found, traffic)
    capture = capture_uri or found.capture_uri
    # The local orchestrator runs the steps in this process, so holding the lock here covers the
    # whole pipeline; on a remote orchestrator the watermark's compare-and-set guards instead.
    with exclusive_run(state / "run.lock"):
        if not collect_new_captures(capture, state).chunks:
            report = PassReport()
            report.pending_alerts = deliver_pending_alerts(state)
            return report, None
        from pipelines.monitoring import monitoring_pipeline
        from trustops.runs.zenml_runs import run_tracked_pipeline

        run_name = f"monitor-{found.name}-v{found.version}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
        pipeline_run = run_tracked_pipeline(
            monitoring_pipeline, run_name=run_name, experiment_name=MONITORING_EXPERIMENT, root=root,
            model_name=found.name, model_version=str(found.version), monitors=names, state=str(state),
            false_page_budget=budget, drift_report=drift_report, permutations=permutations, capture_uri=capture_uri,
        )
    report = pipeline_run.steps["send_alerts"].outputs["pass_report"][0].load()
    return report, report.mlflow_run_id


def _nothing_new(model_name: str, model_version: str, root: Path, traffic: str, capture_uri: str | None) -> PassReport | None:
    """The no-op pass of a scheduled monitor, without importing MLflow or torch; ``None`` when there is work or doubt.

    A pass with nothing new costs only its start-up, paid every few minutes all day: the model's
    capture store comes from the registry's tables directly (:mod:`trustops.model_index`), and
    listing a capture needs no torch.  Whenever anything is uncertain the full path decides.
    """
    from trustops.model_index import peek_model_version
    from trustops.monitoring.collect import collect_new_captures
    from trustops.monitoring.records import PassReport
    from trustops.monitoring.watermark import exclusive_run

    indexed = peek_model_version(default_tracking_uri(root), model_name, model_version)
    capture = capture_uri or (indexed.capture_uri if indexed else None)
    if indexed is None or capture is None:
        return None
    state = monitor_state(root, indexed, traffic)
    with exclusive_run(state / "run.lock"):
        if collect_new_captures(capture, state).chunks:
            return None
        report = PassReport()
        report.pending_alerts = deliver_pending_alerts(state)
        return report


def repair_monitor_state(model_name: str, model_version: str = "latest", traffic: str = "production") -> list[str]:
    """Move the model's damaged monitor state files aside (under its lock); one line per file repaired."""
    from trustops.monitoring.repair import repair_state
    from trustops.monitoring.watermark import exclusive_run

    root = project_root()
    state = monitor_state(root, resolve_monitored_model(model_name, model_version, root), traffic)
    with exclusive_run(state / "run.lock"):
        return repair_state(state)


def deliver_pending_alerts(state: Path) -> int:
    """Retry the outbox's undelivered alerts (a pass with nothing new still does this); returns how many stay pending."""
    if not (state / "alerts").is_dir():
        return 0
    from trustops.alerts import AlertManager
    from trustops.monitoring.channels import alert_channels

    return len(AlertManager.from_config(state / "alerts", alert_channels()).flush().pending)
