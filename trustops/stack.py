"""The ZenML side: a project-local ZenML store and a stack whose experiment tracker is MLflow.

``ensure_stack`` is idempotent: the first call registers the ``trustops`` stack (default
local orchestrator and artifact store, plus the ``trustops_mlflow`` tracker), later calls
only bring the tracker's URI in line with the current MLflow setting.  A user who keeps
their own ZenML store sets ``ZENML_CONFIG_PATH``; trustops then leaves it where it is.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from trustops.paths import state_dir

STACK_NAME = "trustops"
TRACKER_NAME = "trustops_mlflow"

logger = logging.getLogger(__name__)


def configure_zenml_environment(root: Path | None = None) -> None:
    """Point ZenML at a store inside the project before ZenML is imported."""
    os.environ.setdefault("ZENML_CONFIG_PATH", str(state_dir(root) / "zenml"))
    os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
    os.environ.setdefault("ZENML_LOGGING_VERBOSITY", "WARN")
    os.environ.setdefault("ZENML_ENABLE_RICH_TRACEBACK", "false")
    os.environ.setdefault("AUTO_OPEN_DASHBOARD", "false")
    os.environ.setdefault("ZENML_LOGGING_COLORS_DISABLED", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def ensure_stack(tracking_uri: str, root: Path | None = None) -> str:
    """Register (once) and activate the trustops stack; returns the experiment tracker's name."""
    configure_zenml_environment(root)
    from zenml.client import Client
    from zenml.enums import StackComponentType

    client = Client()
    if os.environ.get("TRUSTOPS_ZENML_STACK"):  # a team stack chosen by the user is used as it is
        client.activate_stack(os.environ["TRUSTOPS_ZENML_STACK"])
        tracker = client.active_stack_model.components.get(StackComponentType.EXPERIMENT_TRACKER)
        if not tracker:
            from trustops.errors import ConfigError

            raise ConfigError(f"ZenML stack {os.environ['TRUSTOPS_ZENML_STACK']!r} has no experiment tracker; add an MLflow tracker to it.")
        return tracker[0].name

    try:
        tracker = client.get_stack_component(StackComponentType.EXPERIMENT_TRACKER, TRACKER_NAME)
        if tracker.configuration.get("tracking_uri") != tracking_uri:
            client.update_stack_component(
                TRACKER_NAME, StackComponentType.EXPERIMENT_TRACKER, configuration={"tracking_uri": tracking_uri}
            )
    except KeyError:
        client.create_stack_component(
            name=TRACKER_NAME,
            flavor="mlflow",
            component_type=StackComponentType.EXPERIMENT_TRACKER,
            configuration={"tracking_uri": tracking_uri},
        )
    try:
        client.get_stack(STACK_NAME)
    except KeyError:
        client.create_stack(
            name=STACK_NAME,
            components={
                StackComponentType.ORCHESTRATOR: "default",
                StackComponentType.ARTIFACT_STORE: "default",
                StackComponentType.EXPERIMENT_TRACKER: TRACKER_NAME,
            },
        )
    if client.active_stack_model.name != STACK_NAME:
        client.activate_stack(STACK_NAME)
    return TRACKER_NAME
