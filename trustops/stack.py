"""The ZenML side: a project-local ZenML store and a stack whose experiment tracker is MLflow.

``ensure_stack`` is idempotent: the first call registers the ``trustops`` stack (default
local orchestrator and artifact store, plus the ``trustops_mlflow`` tracker), later calls
only bring the tracker's URI in line with the current MLflow setting.  A user who keeps
their own ZenML store sets ``ZENML_CONFIG_PATH``; trustops then leaves it where it is.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from trustops.paths import state_dir

STACK_NAME = "trustops"
TRACKER_NAME = "trustops_mlflow"

logger = logging.getLogger(__name__)


def configure_zenml_environment(root: Path | None = None, *, apply_storage: bool = True) -> None:
    """Point ZenML at a store inside the project before ZenML is imported (and, with ``apply_storage``,
    every S3 client at the storage setting)."""
    os.environ.setdefault("ZENML_CONFIG_PATH", str(state_dir(root) / "zenml"))
    os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
    os.environ.setdefault("ZENML_LOGGING_VERBOSITY", "WARN")
    os.environ.setdefault("ZENML_ENABLE_RICH_TRACEBACK", "false")
    os.environ.setdefault("AUTO_OPEN_DASHBOARD", "false")
    os.environ.setdefault("ZENML_LOGGING_COLORS_DISABLED", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if apply_storage:  # every trustops command starts here, so the S3 stores follow the one storage setting
        from trustops.storage import apply_storage_environment

        apply_storage_environment(root)


# The frameworks whose autologging ZenML 0.98's MLflow tracker turns off after every step.
AUTOLOG_FRAMEWORKS = ("tensorflow", "xgboost", "lightgbm", "statsmodels", "spark", "sklearn", "fastai", "pytorch")


def skip_autologging_cleanup_of_unimported_frameworks() -> None:
    """After every step, ZenML's MLflow tracker turns autologging off by importing ``mlflow.<framework>``
    for each of ``AUTOLOG_FRAMEWORKS``.  ``mlflow.pytorch`` imports Lightning, so a monitor pass
    (which never trains) paid for Lightning's import once per process (``bench.bench_cli_latency``'s
    ``import_monitor_step`` rows).  Autologging of a framework is switched on only through its ``mlflow``
    module (trustops never switches it on), so turning it off where that module was never imported
    changes nothing; where it was, it is turned off as before.
    """
    from zenml.integrations.mlflow.experiment_trackers.mlflow_experiment_tracker import MLFlowExperimentTracker

    if getattr(MLFlowExperimentTracker.disable_autologging, "skips_unimported", False):
        return

    def disable_autologging(self: MLFlowExperimentTracker) -> None:
        for framework in AUTOLOG_FRAMEWORKS:
            module = sys.modules.get(f"mlflow.{framework}")
            if module is not None:
                try:
                    module.autolog(disable=True)
                except Exception:  # as ZenML does: a framework that cannot be reached is not a failed step
                    logger.debug("could not turn MLflow autologging off for %s", framework, exc_info=True)

    disable_autologging.skips_unimported = True  # type: ignore[attr-defined]
    MLFlowExperimentTracker.disable_autologging = disable_autologging  # type: ignore[method-assign]


def ensure_stack(tracking_uri: str, root: Path | None = None) -> str:
    """Register (once) and activate the trustops stack; returns the experiment tracker's name."""
    configure_zenml_environment(root)
    skip_autologging_cleanup_of_unimported_frameworks()
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

    configuration = tracker_configuration(tracking_uri, client)
    try:
        tracker = client.get_stack_component(StackComponentType.EXPERIMENT_TRACKER, TRACKER_NAME)
        if any(tracker.configuration.get(k) != v for k, v in configuration.items()):
            client.update_stack_component(TRACKER_NAME, StackComponentType.EXPERIMENT_TRACKER, configuration=configuration)
    except KeyError:
        client.create_stack_component(
            name=TRACKER_NAME,
            flavor="mlflow",
            component_type=StackComponentType.EXPERIMENT_TRACKER,
            configuration={k: v for k, v in configuration.items() if v is not None},
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


AUTH_SECRET = "trustops_mlflow_auth"
# ZenML's MLflow tracker insists on exactly one authentication method for an http(s) URI.
# A tracking server without authentication (`trustops server`) ignores a bearer token, so
# this placeholder satisfies ZenML without pretending to be a credential.
NO_AUTH_TOKEN = "no-auth"


def tracker_configuration(tracking_uri: str, client) -> dict[str, str | None]:
    """The ``trustops_mlflow`` tracker's settings for ``tracking_uri``.

    For a server, credentials come from ``MLFLOW_TRACKING_TOKEN`` or
    ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``; they go into a ZenML secret
    that the tracker references, never into the component's plain configuration.  A ``None``
    value removes that key from an existing component.
    """
    from zenml.integrations.mlflow.flavors.mlflow_experiment_tracker_flavor import is_remote_mlflow_tracking_uri

    unset = {"tracking_token": None, "tracking_username": None, "tracking_password": None}
    if not is_remote_mlflow_tracking_uri(tracking_uri):
        return {"tracking_uri": tracking_uri, **unset}
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    username, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if username and password and not token:
        _store_secret(client, {"username": username, "password": password})
        return {**unset, "tracking_uri": tracking_uri, "tracking_username": f"{{{{{AUTH_SECRET}.username}}}}",
                "tracking_password": f"{{{{{AUTH_SECRET}.password}}}}"}
    if token:
        _store_secret(client, {"token": token})
        return {**unset, "tracking_uri": tracking_uri, "tracking_token": f"{{{{{AUTH_SECRET}.token}}}}"}
    return {**unset, "tracking_uri": tracking_uri, "tracking_token": NO_AUTH_TOKEN}


def _store_secret(client, values: dict[str, str]) -> None:
    try:
        secret = client.get_secret(AUTH_SECRET)
    except KeyError:
        client.create_secret(AUTH_SECRET, values=values)
        return
    if dict(secret.secret_values) != values:
        client.update_secret(AUTH_SECRET, add_or_update_values=values,
                             remove_values=[k for k in secret.secret_values if k not in values])
