"""One monitor run for a registered model: the ZenML monitor pipeline, tracked as an MLflow run.

Each pass's MLflow run is a child of the model version's long-lived monitoring run, which holds
the control charts (:mod:`trustops.monitoring.mlflow_chart`).  Its ZenML run is attached to the
ZenML model version the monitored MLflow version was trained as (:mod:`trustops.zenml_model`).

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
from trustops.paths import default_tracking_uri, project_root

if TYPE_CHECKING:  # MLflow and pydantic load only when a pass runs
    from trustops.model_index import IndexedVersion
    from trustops.monitoring.budget import PassOptions
    from trustops.monitoring.state_store import StateStore
    from trustops.monitoring.records import PassReport
    from trustops.registry import RegisteredModel

MONITORING_EXPERIMENT = "trustops-monitoring"


def monitor_state(root: Path, model: RegisteredModel | IndexedVersion, traffic: str = "production") -> Path | str:
    """Per version and traffic: a new version has its own capture store, reference, charts and watermark.

    ``traffic`` other than ``production`` (e.g. the main job's ``demo-stream``) keeps its own
    state, so an experiment never moves the production watermark or opens its conditions.
    A folder under ``.trustops/monitoring``, or ``<storage uri>/monitoring/...`` when the
    storage setting is S3 (``TRUSTOPS_MONITOR_STATE_URI`` overrides both; see
    :func:`trustops.storage.monitoring_location`), so every worker sees the same state.
    """
    from trustops.storage import monitoring_location

    parts = [re.sub(r"[^A-Za-z0-9_.-]", "_", model.name), f"v{model.version}"]
    if traffic != "production":
        parts += ["experiments", re.sub(r"[^A-Za-z0-9_.-]", "_", traffic)]
    base = monitoring_location(root)
    return base.joinpath(*parts) if isinstance(base, Path) else "/".join([base, *parts])


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
    options: PassOptions | None = None,
    *,
    traffic: str = "production",
    capture_uri: str | None = None,
) -> tuple[PassReport, str | None]:
    """One pass of the monitor pipeline over what ``model_name`` captured since the last pass.

    ``options`` (default: every monitor at the default budget) were checked when they were made;
    their ``combine_layers`` (``block<k>``, ``features.<i>`` or ``penultimate``) are resolved against
    the model here, before the pass starts: each must be captured (the model trained with ``capture.layers``).

    Returns the pass report and its MLflow run id (``None`` for a pass with nothing new, which
    starts no pipeline and records no run; alerts still waiting in the outbox are delivered).
    """
    from trustops.monitoring.budget import PassOptions
    from trustops.monitoring.collect import collect_new_captures
    from trustops.monitoring.records import PassReport
    from trustops.monitoring.state_store import open_state
    from trustops.monitoring.watermark import exclusive_run

    options = options if options is not None else PassOptions()
    root = project_root()
    # A combined test checks its layers against the model first, so even a pass with nothing new says when they are wrong.
    if not options.combine_layers and (quiet := _nothing_new(model_name, model_version, root, traffic, capture_uri)) is not None:
        return quiet, None
    from trustops.lifecycle import reconcile_abandoned_runs

    # A pass with work is the "next command" after a killed one: end the runs nobody owns any more.
    reconcile_abandoned_runs(default_tracking_uri(root), root=root)
    found = resolve_monitored_model(model_name, model_version, root)
    options = resolve_pass_layers(found, options)  # before any pass starts
    state = monitor_state(root, found, traffic)
    store = open_state(state)
    capture = capture_uri or found.capture_uri
    # The local orchestrator runs the steps in this process, so holding the lock (an S3 lease when
    # the state is on S3) here covers the whole pipeline; on a remote orchestrator the watermark's
    # compare-and-set guards instead.
    with exclusive_run(store):
        if not collect_new_captures(capture, store).chunks:
            report = PassReport()
            report.pending_alerts = deliver_pending_alerts(store)
            return report, None
        from pipelines.monitoring import monitoring_pipeline
        from trustops.runs.zenml_runs import run_tracked_pipeline
        from trustops.zenml_model import monitored_model

        pipeline_run = run_tracked_pipeline(
            monitoring_pipeline, run_name=pass_run_name(), experiment_name=MONITORING_EXPERIMENT, root=root,
            model=lambda: monitored_model(found.tags),  # the ZenML model version its training run made, if any
            model_name=found.name, model_version=str(found.version), state=str(state), capture_uri=capture_uri,
            traffic=traffic, options=options,
        )
    report = pipeline_run.steps["send_alerts"].outputs["pass_report"][0].load()
    return report, report.mlflow_run_id


def resolve_pass_layers(found: RegisteredModel, options: PassOptions) -> PassOptions:
    """``options`` with the captured layers its ``combine_layers`` stand for on ``found`` (unchanged without them):
    its model lists the names it has, its reference capture the layers it recorded; a :class:`ConfigError`
    (one line) for any other."""
    if not options.combine_layers:
        return options
    import dataclasses

    from trustops.monitoring.reference import resolve_combined_layers
    from trustops.runs.preflight import load_registered_module

    model = load_registered_module(found)
    return dataclasses.replace(options, combine_layers=tuple(resolve_combined_layers(model, found, options.combine_layers)))


def pass_run_name(now: float | None = None) -> str:
    """``pass-10.15.02-2026-12-01-ab12``: one monitor pass's run, a child of its version's monitoring run.

    The parent names the model and version, so a pass is told apart by when it ran (UTC): the
    time of day first, which differs between passes and survives the UI's run column cutting
    a long name short, then the date and a random suffix, which keep the name unique in the
    experiment (ZenML's tracker finds a pipeline's MLflow run by its name) and in ZenML.  Only
    letters, digits, ``.`` and ``-``: on an Airflow stack the run name is also the DAG id.
    """
    stamp = time.gmtime(time.time() if now is None else now)
    return f"pass-{time.strftime('%H.%M.%S-%Y-%m-%d', stamp)}-{uuid.uuid4().hex[:4]}"


def _nothing_new(model_name: str, model_version: str, root: Path, traffic: str, capture_uri: str | None) -> PassReport | None:
    """The no-op pass of a scheduled monitor, without importing MLflow or torch; ``None`` when there is work or doubt.

    A pass with nothing new costs only its start-up, paid every few minutes all day: the model's
    capture store comes from the registry's tables directly (:mod:`trustops.model_index`), and
    listing a capture needs no torch.  Whenever anything is uncertain the full path decides.
    """
    from trustops.model_index import peek_model_version
    from trustops.monitoring.collect import collect_new_captures
    from trustops.monitoring.records import PassReport
    from trustops.monitoring.state_store import open_state
    from trustops.monitoring.watermark import exclusive_run

    indexed = peek_model_version(default_tracking_uri(root), model_name, model_version)
    capture = capture_uri or (indexed.capture_uri if indexed else None)
    if indexed is None or capture is None:
        return None
    store = open_state(monitor_state(root, indexed, traffic))  # boto3 is imported only for state on S3
    with exclusive_run(store):
        if collect_new_captures(capture, store).chunks:
            return None
        report = PassReport()
        report.pending_alerts = deliver_pending_alerts(store)
    from trustops.lifecycle import reconcile_abandoned_runs

    # The pass after a killed one usually has nothing new: end the runs nobody owns here too
    # (a read-only SQLite query when none is abandoned; MLflow loads only when one is).
    reconcile_abandoned_runs(default_tracking_uri(root), root=root)
    return report


def repair_monitor_state(model_name: str, model_version: str = "latest", traffic: str = "production") -> list[str]:
    """Move the model's damaged monitor state files aside (under its lock); one line per file repaired."""
    from trustops.monitoring.repair import repair_state
    from trustops.monitoring.state_store import open_state
    from trustops.monitoring.watermark import exclusive_run

    root = project_root()
    store = open_state(monitor_state(root, resolve_monitored_model(model_name, model_version, root), traffic))
    with exclusive_run(store):
        return repair_state(store)


def deliver_pending_alerts(state: Path | str | StateStore) -> int:
    """Retry the outbox's undelivered alerts (a pass with nothing new still does this); returns how many stay pending."""
    from trustops.monitoring.state_store import open_state

    alerts = open_state(state).child("alerts")
    if not alerts.list():
        return 0
    from trustops.alerts import AlertManager
    from trustops.alerts.channels import alert_channels

    return len(AlertManager.from_config(alerts, alert_channels()).flush().pending)
