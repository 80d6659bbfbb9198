"""Register the monitor pipeline with a ZenML ``Schedule`` on the active stack's orchestrator.

ZenML's local orchestrator ignores schedules (it would run once and never again), so the
schedule is refused there with the alternatives; Kubernetes, Airflow and the other
schedulable orchestrators run it on their own clock.
"""

from __future__ import annotations

from trustops.errors import ConfigError
from trustops.paths import default_tracking_uri, project_root
from trustops.runs.monitoring import MONITORING_EXPERIMENT, check_monitor_names, default_monitor_names, monitor_state, resolve_monitored_model
from trustops.schedule import parse_cron
from trustops.stack import ensure_stack
from trustops.tracking import ensure_experiment


class OrchestratorCannotSchedule(ConfigError):
    """The active ZenML stack's orchestrator does not run schedules."""


def schedule_on_stack(cron: str, model_name: str, model_version: str = "latest", *, monitors: list[str] | None = None) -> str:
    """Hand the monitor pipeline to the stack's orchestrator on ``cron``; returns the schedule's name."""
    parse_cron(cron)
    names = monitors or default_monitor_names()
    check_monitor_names(names)
    root = project_root()
    found = resolve_monitored_model(model_name, model_version, root)
    tracking_uri = default_tracking_uri(root)
    tracker = ensure_stack(tracking_uri, root)

    from zenml.client import Client
    from zenml.config.schedule import Schedule
    from zenml.integrations.mlflow.flavors.mlflow_experiment_tracker_flavor import MLFlowExperimentTrackerSettings

    from pipelines.monitoring import monitoring_pipeline

    stack = Client().active_stack
    orchestrator = stack.orchestrator
    if not orchestrator.config.is_schedulable:
        raise OrchestratorCannotSchedule(
            f"The orchestrator {orchestrator.name!r} (flavor {orchestrator.flavor}) of ZenML stack {stack.name!r} does not run "
            "schedules. Use a stack whose orchestrator does (Kubernetes, Airflow; set TRUSTOPS_ZENML_STACK to its name), "
            "or run `trustops schedule --cron ...` in-process, or add `trustops schedule --print-crontab` to cron."
        )
    ensure_experiment(MONITORING_EXPERIMENT, tracking_uri, root)
    schedule_name = f"monitor-{found.name}-v{found.version}"
    scheduled = monitoring_pipeline.with_options(
        schedule=Schedule(name=schedule_name, cron_expression=cron),
        run_name=f"{schedule_name}-{{date}}-{{time}}",
        settings={"experiment_tracker": MLFlowExperimentTrackerSettings(experiment_name=MONITORING_EXPERIMENT)},
    )
    # The state folder (watermark, charts, outbox) must be on storage every scheduled run sees.
    scheduled(model_name=found.name, model_version=str(found.version), monitors=names,
              state=str(monitor_state(root, found)), tracker=tracker)
    return schedule_name
