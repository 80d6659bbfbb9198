"""trustops pipelines on Apache Airflow through ZenML's ``airflow`` orchestrator flavor.

``trustops stack airflow --dag-folder PATH`` registers a stack that is the project's stack with
its orchestrator swapped for an Airflow one whose DAGs go to PATH. Everything Airflow needs to
run a step without an image is written into that orchestrator's configuration, once:

- the DAG generator :mod:`trustops.orchestration.airflow_dag` (a BashOperator per step);
- the interpreter that registered the stack (trustops' virtualenv), the project root as the
  working directory, and the variables a step process needs to find the project: the ZenML
  store (``ZENML_CONFIG_PATH``), ``TRUSTOPS_PROJECT_ROOT``, ``PYTHONPATH`` and the non-secret
  trustops settings that are set;
- Airflow retries, and ``max_active_runs=1`` so a slow scheduled monitor pass never overlaps
  the next one.

Every pipeline submitted to such a stack also gets :func:`submission_settings`: the DAG id (the
trustops run or schedule name, so its file is known) and Docker settings that build, upload and
download nothing (steps import the installed trustops; no ZenML code archive).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from trustops.errors import ConfigError, TrustopsError
from trustops.paths import project_root, state_dir

DAG_GENERATOR = "trustops.orchestration.airflow_dag"
BASH_OPERATOR = "airflow.providers.standard.operators.bash.BashOperator"
DEFAULT_NAME = "trustops_airflow"
# Transient failures (two steps racing on ZenML's local folders, a busy SQLite store) pass on
# a retry; a real step failure fails again and is reported by ZenML.
TASK_RETRIES = 2
TASK_RETRY_DELAY_SECONDS = 5
# Variables a step process needs that carry no secret. Secrets (the webhook URL, storage keys,
# tracking tokens) belong in the Airflow workers' environment, never in a DAG file.
FORWARDED_VARIABLES = (
    "PYTHONPATH",
    "MLFLOW_TRACKING_URI",
    "TRUSTOPS_STORAGE_URI",
    "TRUSTOPS_STORAGE_ENDPOINT_URL",
    "TRUSTOPS_STORAGE_REGION",
    "TRUSTOPS_ALERT_WEBHOOK_URL_FILE",
    "TRUSTOPS_ALERT_WEBHOOK_FORMAT",
    "TRUSTOPS_MLFLOW_UI_URL",
    "TRUSTOPS_TORCH_THREADS",
    "TRUSTOPS_MONITOR_WORKERS",
)


def check_dag_folder(path: str | os.PathLike[str]) -> Path:
    """The DAG folder, resolved; :class:`ConfigError` unless it is an existing folder this process can write."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise ConfigError(f"--dag-folder {path}: no such folder. Give Airflow's DAG folder (its [core] dags_folder).")
    if not folder.is_dir():
        raise ConfigError(f"--dag-folder {path}: not a folder. Give Airflow's DAG folder (its [core] dags_folder).")
    try:  # os.access says yes to root on a read-only file system: try it
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".trustops-write-check-"):
            pass
    except OSError as error:
        raise ConfigError(f"--dag-folder {path}: cannot write there ({error.strerror}); ZenML writes each DAG file into it.") from None
    return folder.resolve()


def failure_dir(root: Path | None = None) -> Path:
    """Where a failed Airflow task leaves a note for the ``trustops`` command waiting on its run."""
    return state_dir(root) / "airflow" / "failed"


def task_options(root: Path) -> dict[str, Any]:
    """The orchestrator's ``operator_args``, read by :mod:`trustops.orchestration.airflow_dag`."""
    env = {
        "ZENML_CONFIG_PATH": str(Path(os.environ["ZENML_CONFIG_PATH"]).resolve()),
        "TRUSTOPS_PROJECT_ROOT": str(root),
        "ZENML_ANALYTICS_OPT_IN": "false",
        "ZENML_LOGGING_COLORS_DISABLED": "true",
        "ZENML_ENABLE_RICH_TRACEBACK": "false",
        "TRUSTOPS_PROGRESS": "0",  # a task log is a file: no progress bars
    }
    env.update({name: os.environ[name] for name in FORWARDED_VARIABLES if os.environ.get(name)})
    return {
        # The virtualenv's own path, not the interpreter it links to: that one lacks the packages.
        "python": str(Path(sys.prefix) / "bin" / "python"),
        "entrypoint_module": "trustops.orchestration.step_entrypoint",
        "cwd": str(root),
        "env": env,
        "retries": TASK_RETRIES,
        "retry_delay_seconds": TASK_RETRY_DELAY_SECONDS,
        "failure_dir": str(failure_dir(root)),
    }


def register_airflow_stack(dag_folder: str | os.PathLike[str], *, name: str = DEFAULT_NAME,
                           tracking_uri: str, root: Path | None = None) -> dict[str, str]:
    """Register (or update) stack ``name``: the base stack's components, with an Airflow orchestrator.

    The base stack is ``TRUSTOPS_ZENML_STACK`` when set, else the ``trustops`` stack. Every check
    (DAG folder, MLflow tracker) runs before anything is registered. Returns the stack's
    components by type.
    """
    from trustops.settings import SAFE_NAME
    from trustops.stack import configure_zenml_environment

    folder = check_dag_folder(dag_folder)
    if not SAFE_NAME.fullmatch(name):
        raise ConfigError(f"--name must be letters, digits, '.', '_' or '-'. Got: {name!r}")
    root = (root or project_root()).resolve()
    configure_zenml_environment(root)
    from zenml.client import Client
    from zenml.enums import StackComponentType as Kind

    client = Client()
    try:
        existing = client.get_stack_component(Kind.ORCHESTRATOR, name)
    except KeyError:
        existing = None
    if existing is not None and existing.flavor_name != "airflow":
        raise ConfigError(f"A ZenML orchestrator named {name!r} exists with flavor {existing.flavor_name!r}; choose another --name.")
    base_name = os.environ.get("TRUSTOPS_ZENML_STACK") or None
    if base_name == name:
        raise ConfigError(f"TRUSTOPS_ZENML_STACK={name} is the stack to register; unset it, or name the Airflow stack otherwise (--name).")
    if base_name:
        try:
            base = client.get_stack(base_name)
        except KeyError:
            raise ConfigError(f"ZenML stack {base_name!r} (TRUSTOPS_ZENML_STACK) does not exist.") from None
        trackers = base.components.get(Kind.EXPERIMENT_TRACKER, [])
        if not trackers or trackers[0].flavor_name != "mlflow":
            found = f"a {trackers[0].flavor_name!r} tracker" if trackers else "no experiment tracker"
            raise ConfigError(f"ZenML stack {base_name!r} has {found}: trustops logs every step to MLflow, so the Airflow "
                              "stack needs an MLflow experiment tracker. Add one to that stack, or unset TRUSTOPS_ZENML_STACK.")
    else:
        from trustops.stack import STACK_NAME, ensure_stack

        ensure_stack(tracking_uri, root)  # the project's own stack and its MLflow tracker
        base = client.get_stack(STACK_NAME)

    configuration = {
        "local": True,
        "dag_output_dir": str(folder),
        "custom_dag_generator": DAG_GENERATOR,
        "operator": BASH_OPERATOR,
        "operator_args": task_options(root),
        "dag_args": {"max_active_runs": 1},
    }
    if existing is None:
        client.create_stack_component(name=name, flavor="airflow", component_type=Kind.ORCHESTRATOR,
                                      configuration=configuration)
    else:
        client.update_stack_component(name, Kind.ORCHESTRATOR, configuration=configuration)
    components = {kind: found[0].name for kind, found in base.components.items() if found}
    components[Kind.ORCHESTRATOR] = name
    try:
        client.get_stack(name)
    except KeyError:
        client.create_stack(name=name, components=components)
    else:
        client.update_stack(name, component_updates=components)
    return {kind.value: value for kind, value in components.items()}


def is_trustops_airflow(orchestrator: Any) -> bool:
    """Whether a ZenML orchestrator model (``ComponentResponse``) runs DAGs made by trustops' generator."""
    return orchestrator.flavor_name == "airflow" and orchestrator.configuration.get("custom_dag_generator") == DAG_GENERATOR


def submission_settings(dag_id: str) -> dict[str, Any]:
    """ZenML settings for one pipeline submitted to a trustops Airflow stack.

    ``dag_id`` names the DAG and its file (``<dag folder>/<dag_id>.zip``). ``skip_build`` with a
    parent image is ZenML's way to say "this environment already has the code": no image is
    built, the steps import the installed trustops, and with downloads off no code archive is
    uploaded (each step would otherwise unpack one into a shared folder, and two steps starting
    in the same second collide there).
    """
    from zenml.config import DockerSettings
    from zenml.integrations.airflow.flavors.airflow_orchestrator_flavor import AirflowOrchestratorSettings

    return {
        "orchestrator.airflow": AirflowOrchestratorSettings(dag_id=dag_id),
        "docker": DockerSettings(skip_build=True, parent_image=f"local-virtualenv:{sys.prefix}",
                                 allow_download_from_artifact_store=False, allow_download_from_code_repository=False,
                                 allow_including_files_in_images=True),
    }


def dag_file(orchestrator_configuration: dict[str, Any], dag_id: str) -> Path | None:
    output = orchestrator_configuration.get("dag_output_dir")
    return Path(output) / f"{dag_id}.zip" if output else None


def remove_dag(orchestrator_configuration: dict[str, Any], dag_id: str) -> Path | None:
    """Delete the DAG file of ``dag_id`` (ZenML leaves it behind); returns the path removed, if any."""
    path = dag_file(orchestrator_configuration, dag_id)
    if path is None or not path.is_file():
        return None
    path.unlink()
    return path


class AirflowTaskFailed(TrustopsError, RuntimeError):
    """An Airflow task of the run failed before ZenML recorded the failure."""

    exit_code = 1


def task_failure(dag_id: str, root: Path | None = None) -> str | None:
    """The waiting command's message when an Airflow task of ``dag_id`` failed for good; else ``None``."""
    note = failure_dir(root) / f"{dag_id}.json"
    if not note.is_file():
        return None
    try:
        record = json.loads(note.read_text())
    except ValueError:
        record = {}
    return (f"Airflow task {record.get('task_id', '?')} of DAG {dag_id} (run {record.get('run_id', '?')}) failed on try "
            f"{record.get('try_number', '?')} before its step reported to ZenML: {record.get('error', 'no error recorded')}. "
            "Its log is in Airflow (UI, or <AIRFLOW_HOME>/logs).")


def clear_task_failure(dag_id: str, root: Path | None = None) -> None:
    (failure_dir(root) / f"{dag_id}.json").unlink(missing_ok=True)
