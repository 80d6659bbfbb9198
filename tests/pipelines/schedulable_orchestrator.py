"""A real ZenML orchestrator flavor for the tests that accepts schedules, as Kubernetes and Airflow do.

There is no Kubernetes cluster or Airflow scheduler here. This flavor runs unscheduled
pipelines exactly as the local orchestrator does; a scheduled one it hands off the way a
scheduler does (it records the schedule in a JSON file, its stand-in for a CronJob or a DAG)
instead of running it now. ZenML loads it by its source path, :data:`FLAVOR_SOURCE`.
"""

from __future__ import annotations

import json
from typing import Any

from zenml.orchestrators.local.local_orchestrator import LocalOrchestrator, LocalOrchestratorConfig, LocalOrchestratorFlavor

FLAVOR_SOURCE = f"{__name__}.SchedulableLocalOrchestratorFlavor"


class SchedulableLocalOrchestratorConfig(LocalOrchestratorConfig):
    schedules_file: str

    @property
    def is_schedulable(self) -> bool:
        return True


class SchedulableLocalOrchestrator(LocalOrchestrator):
    def submit_pipeline(self, snapshot: Any, stack: Any, base_environment: Any, step_environments: Any,
                        placeholder_run: Any = None) -> Any:
        if snapshot.schedule is None:
            return super().submit_pipeline(snapshot, stack, base_environment, step_environments, placeholder_run)
        config: SchedulableLocalOrchestratorConfig = self.config  # type: ignore[assignment]
        with open(config.schedules_file, "a", encoding="utf-8") as file:
            file.write(json.dumps({
                "name": snapshot.schedule.name,
                "cron_expression": snapshot.schedule.cron_expression,
                "pipeline": snapshot.pipeline_configuration.name,
                "parameters": snapshot.pipeline_spec.parameters if snapshot.pipeline_spec else {},
            }, default=str) + "\n")
        return None


class SchedulableLocalOrchestratorFlavor(LocalOrchestratorFlavor):
    @property
    def name(self) -> str:
        return "trustops_schedulable_local"

    @property
    def config_class(self) -> type[SchedulableLocalOrchestratorConfig]:
        return SchedulableLocalOrchestratorConfig

    @property
    def implementation_class(self) -> type[SchedulableLocalOrchestrator]:
        return SchedulableLocalOrchestrator
