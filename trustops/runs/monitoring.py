"""One scheduled monitor run for a registered model, tracked as an MLflow run."""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path

from monitors import available_monitors
from trustops.errors import ConfigError
from trustops.monitoring.checks import VIEWS
from trustops.monitoring.loop import DEFAULT_MONITORS, PassReport, monitor_pass
from trustops.paths import default_tracking_uri, project_root, state_dir
from trustops.registry import resolve_registered_model
from trustops.tracking import ensure_experiment

MONITORING_EXPERIMENT = "trustops-monitoring"
WEBHOOK_ENV = "TRUSTOPS_ALERT_WEBHOOK_URL"


def alert_channels() -> list[str]:
    """The console always; the webhook when its URL is configured (by variable or secret file)."""
    channels = ["console"]
    if os.environ.get(WEBHOOK_ENV) or os.environ.get(f"{WEBHOOK_ENV}_FILE"):
        channels.append("webhook")
    return channels


def check_monitor_names(names: list[str]) -> None:
    registered = set(available_monitors())
    unknown = [n for n in names if n not in registered or n not in VIEWS]
    if unknown:
        usable = sorted(registered & set(VIEWS))
        raise ConfigError(f"Unknown or unusable monitor(s) {', '.join(unknown)}. Monitors the loop can run: {', '.join(usable)}.")


def run_monitor(model_name: str, model_version: str = "latest", *, monitors: list[str] | None = None) -> tuple[PassReport, str | None]:
    import mlflow
    from mlflow.tracking import MlflowClient

    from trustops.alerts import AlertManager

    names = monitors or [m for m in DEFAULT_MONITORS if m in available_monitors()]
    check_monitor_names(names)
    root = project_root()
    tracking_uri = default_tracking_uri(root)
    found = resolve_registered_model(model_name, model_version, MlflowClient(tracking_uri, tracking_uri))
    if not found.capture_uri:
        raise ConfigError(f"Model {found.name} v{found.version} has no capture store to monitor; retrain it with capture on.")
    # Per version: a new version has its own capture store, reference and charts.
    state = state_dir(root) / "monitoring" / re.sub(r"[^A-Za-z0-9_.-]", "_", found.name) / f"v{found.version}"
    alerts = AlertManager.from_config(state / "alerts", alert_channels())

    mlflow.set_tracking_uri(tracking_uri)
    experiment_id = ensure_experiment(MONITORING_EXPERIMENT, tracking_uri, root)
    model = mlflow.pytorch.load_model(found.model_uri).eval()
    run_name = f"monitor-{found.name}-v{found.version}-{time.strftime('%Y%m%d-%H%M%S')}"
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.set_tags({"trustops_job": "monitor", "model_version": f"{found.name}/{found.version}", "capture_uri": found.capture_uri})
        run_url = f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run.info.run_id}" if tracking_uri.startswith("http") else None
        report = monitor_pass(model, found, state=state, alerts=alerts, monitors=names, run_id=run.info.run_id, run_url=run_url)
        _log(report)
    return report, run.info.run_id


def _log(report: PassReport) -> None:
    import mlflow

    from trustops.tracking import log_batch

    mlflow.set_tag("no_op", str(report.no_op).lower())
    for row in report.metrics:
        log_batch(metrics={k: v for k, v in row.items() if k != "step"}, step=int(row["step"]))
    log_batch(metrics={"batches_monitored": len(report.steps), "alerts_raised": len(report.alerts),
                       "unreadable_chunks": len(report.unreadable), "monitor_failures": len(report.monitor_failures),
                       "alerts_pending": report.pending_alerts})
    for path in report.chart_paths:
        mlflow.log_artifact(str(path), "charts")
    with tempfile.TemporaryDirectory() as folder:
        alerts_file = Path(folder) / "alerts.json"
        alerts_file.write_text(json.dumps([a.to_dict() for a in report.alerts], indent=2, default=str))
        mlflow.log_artifact(str(alerts_file), "monitoring")
        for name, (step, html) in report.html_reports.items():
            page = Path(folder) / f"{name}_report.html"
            page.write_text(html, encoding="utf-8")
            mlflow.log_artifact(str(page), "drift")
            mlflow.set_tag(f"{name}_report_step", str(step))
