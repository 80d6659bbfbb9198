"""The Airflow DAG file for trustops pipelines: each ZenML step runs as a subprocess in trustops' virtualenv.

ZenML's Airflow orchestrator (``custom_dag_generator`` setting) zips this file, as ``dag.py``,
with the run's ``config.json`` into the DAG folder. Airflow imports it in Airflow's own
virtualenv, where neither trustops nor ZenML is installed, so this module imports only the
standard library, pydantic and (inside the zip) Airflow. Its classes and constants mirror
``zenml.integrations.airflow.orchestrators.dag_generator``, which ZenML requires of a generator.

Why not ZenML's own generator: it hands the step's command only to a DockerOperator or a
KubernetesPodOperator. trustops' steps need no image: the interpreter that registered the stack
has everything, so each task is a BashOperator running ZenML's step entrypoint with it.

The trustops-specific task options travel in the orchestrator's ``operator_args`` (written by
``trustops stack airflow``): ``python``, ``entrypoint_module``, ``cwd``, ``env``, ``retries``,
``retry_delay_seconds`` and ``failure_dir``; any other key goes to the BashOperator as it is.
"""

from __future__ import annotations

import datetime
import json
import os
import shlex
import zipfile
from typing import Any, Dict, List, Optional, Union

from pydantic import BaseModel, Field

ENV_ZENML_AIRFLOW_RUN_ID = "ZENML_AIRFLOW_RUN_ID"
CONFIG_FILENAME = "config.json"
TRUSTOPS_OPTIONS = ("python", "entrypoint_module", "cwd", "env", "retries", "retry_delay_seconds", "failure_dir")
ZENML_ENTRYPOINT_MODULE = "zenml.entrypoints.entrypoint"


class TaskConfiguration(BaseModel):
    """One ZenML step: the fields ZenML's Airflow orchestrator fills in."""

    id: str
    zenml_step_name: str
    upstream_steps: List[str]

    docker_image: str
    command: List[str]
    arguments: List[str]

    environment: Dict[str, str] = {}

    operator_source: str
    operator_args: Dict[str, Any] = {}


class DagConfiguration(BaseModel):
    """One ZenML pipeline run or schedule, as ZenML's Airflow orchestrator describes it."""

    id: str
    tasks: List[TaskConfiguration]

    local_stores_path: Optional[str] = None

    schedule: Union[datetime.timedelta, str] = Field(union_mode="left_to_right")
    start_date: datetime.datetime
    end_date: Optional[datetime.datetime] = None
    catchup: bool = False

    tags: List[str] = []
    dag_args: Dict[str, Any] = {}


def step_command(task: TaskConfiguration) -> str:
    """The shell line that runs the step with trustops' interpreter (ZenML's command says plain ``python``)."""
    python = task.operator_args.get("python")
    if not python:
        raise ValueError(f"Task {task.id}: operator_args has no 'python' (register the stack with `trustops stack airflow`).")
    command = list(task.command)
    if command and os.path.basename(command[0]).startswith("python"):
        command[0] = python
    # The same entrypoint with a faster exit (trustops.orchestration.step_entrypoint), when registered.
    if command[1:] == ["-m", ZENML_ENTRYPOINT_MODULE] and task.operator_args.get("entrypoint_module"):
        command[2] = task.operator_args["entrypoint_module"]
    return shlex.join(command + list(task.arguments))


def step_environment(task: TaskConfiguration) -> Dict[str, str]:
    """ZenML's step environment, then the project's (store, project root, import path), then the run id.

    Airflow renders ``{{ run_id }}``: every task of one DAG run reports to the same ZenML run.
    """
    return {**task.environment, **task.operator_args.get("env", {}), ENV_ZENML_AIRFLOW_RUN_ID: "{{ run_id }}"}


def record_failure(failure_dir: Optional[str], dag_id: str, context: Dict[str, Any]) -> None:
    """Leave ``<failure_dir>/<dag_id>.json`` for a waiting ``trustops`` command.

    A task can fail before the step has reached ZenML (a broken interpreter path, a missing
    module): the ZenML run then never leaves ``provisioning``, and only this file tells the
    waiting command to stop waiting.
    """
    if not failure_dir:
        return
    try:
        instance = context.get("ti") or context.get("task_instance")
        record = {
            "dag_id": dag_id,
            "run_id": getattr(instance, "run_id", None) or str(context.get("run_id", "")),
            "task_id": getattr(instance, "task_id", None),
            "try_number": getattr(instance, "try_number", None),
            "failed_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "error": repr(context.get("exception"))[:2000],
        }
        os.makedirs(failure_dir, exist_ok=True)
        partial = os.path.join(failure_dir, f".{dag_id}.json.partial")
        with open(partial, "w", encoding="utf-8") as handle:
            json.dump(record, handle)
        os.replace(partial, os.path.join(failure_dir, f"{dag_id}.json"))
    except Exception:  # noqa: BLE001 - a callback must never turn a task failure into a callback failure
        pass


def operator_kwargs(dag_config: DagConfiguration, task: TaskConfiguration) -> Dict[str, Any]:
    """The BashOperator's arguments for one step."""
    options = task.operator_args
    failure_dir = options.get("failure_dir")
    kwargs: Dict[str, Any] = {
        "task_id": task.id,
        "bash_command": step_command(task),
        "env": step_environment(task),
        # Secrets (webhook URL, storage keys, tracking tokens) come from the worker's own
        # environment, never from this file: the project's variables are added to it.
        "append_env": True,
        "cwd": options.get("cwd"),
        # ZenML's entrypoint may exit 99 on a failure; Airflow's default would mark that "skipped".
        "skip_on_exit_code": None,
        "retries": int(options.get("retries", 0)),
        "retry_delay": datetime.timedelta(seconds=float(options.get("retry_delay_seconds", 10))),
        "on_failure_callback": lambda context: record_failure(failure_dir, dag_config.id, context),
    }
    kwargs.update({key: value for key, value in options.items() if key not in TRUSTOPS_OPTIONS})
    return kwargs


def _dag_from_zip() -> None:
    """Build the DAG when Airflow imports this file from its zip (``<dags>/<dag id>.zip/dag.py``)."""
    try:
        archive = zipfile.ZipFile(os.path.dirname(__file__), "r")
    except (IsADirectoryError, NotADirectoryError, FileNotFoundError, PermissionError):
        return  # imported as trustops.orchestration.airflow_dag by ZenML, outside Airflow
    try:
        from airflow.sdk import DAG
    except ImportError:  # Airflow 2
        from airflow import DAG
    from airflow.providers.standard.operators.bash import BashOperator

    dag_config = DagConfiguration.model_validate_json(archive.read(CONFIG_FILENAME))
    operators: Dict[str, Any] = {}
    with DAG(
        dag_id=dag_config.id,
        is_paused_upon_creation=False,
        tags=dag_config.tags,
        schedule=dag_config.schedule,
        start_date=dag_config.start_date,
        end_date=dag_config.end_date,
        catchup=dag_config.catchup,
        **dag_config.dag_args,
    ):
        for task in dag_config.tasks:
            operators[task.zenml_step_name] = BashOperator(**operator_kwargs(dag_config, task))
        for task in dag_config.tasks:
            for upstream in task.upstream_steps:
                operators[task.zenml_step_name].set_upstream(operators[upstream])


_dag_from_zip()
