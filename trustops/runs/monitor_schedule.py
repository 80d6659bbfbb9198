"""Register the monitor pipeline with a ZenML ``Schedule`` on the active stack's orchestrator.

ZenML's local orchestrator ignores schedules (it would run once and never again), so the
schedule is refused there with the alternatives; Kubernetes, Airflow and the other
schedulable orchestrators run it on their own clock. On a trustops Airflow stack
(``trustops stack airflow``) the schedule is a DAG named after it, ``monitor-<model>-v<version>``,
in the stack's DAG folder; :func:`delete_schedules` removes the ZenML schedule and that file
(ZenML's Airflow orchestrator cannot delete a schedule: the DAG would run on).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from trustops.errors import ConfigError
from trustops.paths import default_tracking_uri, project_root
from trustops.runs.monitoring import MONITORING_EXPERIMENT, monitor_state, resolve_monitored_model, resolve_pass_layers
from trustops.schedule import parse_cron
from trustops.stack import ensure_stack
from trustops.tracking import ensure_experiment

if TYPE_CHECKING:
    from trustops.monitoring.budget import PassOptions


class OrchestratorCannotSchedule(ConfigError):
    """The active ZenML stack's orchestrator does not run schedules."""


def schedule_on_stack(cron: str, model_name: str, model_version: str = "latest", options: PassOptions | None = None) -> str:
    """Hand the monitor pipeline to the stack's orchestrator on ``cron``, every pass with ``options``; returns the schedule's name."""
    from trustops.monitoring.budget import PassOptions

    parse_cron(cron)
    options = options if options is not None else PassOptions()
    root = project_root()
    found = resolve_monitored_model(model_name, model_version, root)
    options = resolve_pass_layers(found, options)
    tracking_uri = default_tracking_uri(root)
    tracker = ensure_stack(tracking_uri, root)

    from zenml.client import Client
    from zenml.config.schedule import Schedule
    from zenml.enums import StackComponentType
    from zenml.integrations.mlflow.flavors.mlflow_experiment_tracker_flavor import MLFlowExperimentTrackerSettings

    stack = Client().active_stack
    orchestrator = stack.orchestrator
    if not orchestrator.config.is_schedulable:
        raise OrchestratorCannotSchedule(
            f"The orchestrator {orchestrator.name!r} (flavor {orchestrator.flavor}) of ZenML stack {stack.name!r} does not run "
            "schedules. Use a stack whose orchestrator does (Kubernetes, Airflow; set TRUSTOPS_ZENML_STACK to its name), "
            "or run `trustops schedule --cron ...` in-process, or add `trustops schedule --print-crontab` to cron."
        )
    from pipelines.monitoring import monitoring_pipeline  # after the refusal: it imports torch and the steps

    ensure_experiment(MONITORING_EXPERIMENT, tracking_uri, root)
    schedule_name = schedule_name_of(found.name, found.version)
    settings: dict = {"experiment_tracker": MLFlowExperimentTrackerSettings(experiment_name=MONITORING_EXPERIMENT)}
    from trustops.orchestration import airflow

    if airflow.is_trustops_airflow(Client().active_stack_model.components[StackComponentType.ORCHESTRATOR][0]):
        settings.update(airflow.submission_settings(dag_id=schedule_name))
    from trustops.zenml_model import monitored_model

    scheduled = monitoring_pipeline.with_options(
        schedule=Schedule(name=schedule_name, cron_expression=cron),
        run_name=f"{schedule_name}-{{date}}-{{time}}",
        settings=settings,
        model=monitored_model(found.tags),  # every scheduled pass links to the monitored ZenML model version
    )
    # The state folder (watermark, charts, outbox) must be on storage every scheduled run sees.
    scheduled(model_name=found.name, model_version=str(found.version), state=str(monitor_state(root, found)),
              tracker=tracker, options=options)
    return schedule_name


def schedule_name_of(model_name: str, version: int | str) -> str:
    return f"monitor-{model_name}-v{version}"


def delete_schedules(model_name: str, model_version: str = "") -> list[str]:
    """Delete the monitor schedules of ``model_name`` (one version, or all) and their DAG files.

    Returns one line per schedule deleted; :class:`ConfigError` when there is none.
    """
    root = project_root()
    ensure_stack(default_tracking_uri(root), root)
    from zenml.client import Client
    from zenml.enums import StackComponentType

    from trustops.orchestration import airflow

    client = Client()
    pattern = re.compile(re.escape(f"monitor-{model_name}-v") + (re.escape(model_version) if model_version else r"\d+") + "$")
    from zenml.utils.pagination_utils import depaginate

    schedules = [s for s in depaginate(client.list_schedules, name=f"startswith:monitor-{model_name}-v")
                 if pattern.fullmatch(s.name)]
    if not schedules:
        raise ConfigError(f"No ZenML monitor schedule for model {model_name}{':' + model_version if model_version else ''}; "
                          f"nothing deleted.")
    lines = []
    for schedule in schedules:
        orchestrator = None
        if schedule.orchestrator_id is not None:
            try:
                orchestrator = client.get_stack_component(StackComponentType.ORCHESTRATOR, schedule.orchestrator_id)
            except KeyError:  # the orchestrator was deleted; its DAG folder is unknown
                orchestrator = None
        client.delete_schedule(schedule.id)
        removed = airflow.remove_dag(orchestrator.configuration, schedule.name) if (
            orchestrator is not None and airflow.is_trustops_airflow(orchestrator)) else None
        lines.append(f"Deleted ZenML schedule {schedule.name!r}" + (f" and its DAG file {removed}" if removed else "") + ".")
    return lines
