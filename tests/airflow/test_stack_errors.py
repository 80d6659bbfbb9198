"""`trustops stack airflow` refuses bad input with one line and exit 2, registering nothing; the DAG file's task wiring."""

from __future__ import annotations

import datetime
import shlex

import pytest

from tests.pipelines.conftest import Project
from trustops.data.digits import export_digits
from trustops.orchestration import airflow_dag

NOTHING_REGISTERED = """
from trustops.stack import configure_zenml_environment
configure_zenml_environment()
from zenml.client import Client
from zenml.enums import StackComponentType as Kind
print(sorted(s.name for s in Client().list_stacks(size=100).items))
print(sorted(c.name for c in Client().list_stack_components(type=Kind.ORCHESTRATOR, size=100).items))
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    root = tmp_path_factory.mktemp("airflow-errors")
    (root / "dvc.yaml").write_text("stages: {}\n")
    export_digits(root / "data" / "digits.parquet")
    return Project(root)


@pytest.mark.slow
def test_bad_dag_folders_and_a_stack_without_mlflow_are_refused_and_nothing_is_registered(project):
    (project.root / "a-file").write_text("")
    cases = [
        (["--dag-folder", str(project.root / "absent")], {}, "no such folder"),
        (["--dag-folder", str(project.root / "a-file")], {}, "not a folder"),
        (["--dag-folder", "/proc"], {}, "cannot write there"),  # even root cannot create a file in /proc
    ]
    # A stack of the user's without any experiment tracker.
    made = project.python(
        "from trustops.stack import configure_zenml_environment\nconfigure_zenml_environment()\n"
        "from zenml.client import Client\nfrom zenml.enums import StackComponentType as Kind\n"
        "Client().create_stack(name='plain', components={Kind.ORCHESTRATOR: 'default', Kind.ARTIFACT_STORE: 'default'})\n")
    assert made.returncode == 0, made.stderr[-3000:]
    (project.root / "dags").mkdir()
    cases.append((["--dag-folder", str(project.root / "dags")], {"TRUSTOPS_ZENML_STACK": "plain"}, "needs an MLflow experiment tracker"))
    for args, env, message in cases:
        result = project.trustops("stack", "airflow", *args, env=env)
        assert result.returncode == 2, (args, result.stdout, result.stderr[-3000:])
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("trustops: error: ") and message in lines[0], (args, result.stderr)
    listed = project.python(NOTHING_REGISTERED)
    assert listed.returncode == 0, listed.stderr[-3000:]
    stacks, orchestrators = listed.stdout.strip().splitlines()[-2:]
    assert "trustops_airflow" not in stacks + orchestrators and "airflow" not in orchestrators


def test_each_step_is_a_bash_task_running_zenmls_entrypoint_with_trustops_interpreter():
    """The DAG file's wiring, without Airflow: the command, the environment layers, retries, the failure note."""
    task = airflow_dag.TaskConfiguration(
        id="train_model", zenml_step_name="train_model", upstream_steps=["validate_data"], docker_image="unused",
        command=["python", "-m", "zenml.entrypoints.entrypoint"], arguments=["--step_name", "train_model"],
        environment={"ZENML_STORE_URL": "sqlite:///x", "TRUSTOPS_PROJECT_ROOT": "from-zenml"},
        operator_source="airflow.providers.standard.operators.bash.BashOperator",
        operator_args={"python": "/venv/bin/python", "entrypoint_module": "trustops.orchestration.step_entrypoint", "cwd": "/project", "env": {"TRUSTOPS_PROJECT_ROOT": "/project"},
                       "retries": 2, "retry_delay_seconds": 5, "failure_dir": "/notes", "execution_timeout": None},
    )
    dag = airflow_dag.DagConfiguration(id="train-1", tasks=[task], schedule="@once",
                                       start_date=datetime.datetime(2026, 11, 24))
    kwargs = airflow_dag.operator_kwargs(dag, task)
    assert shlex.split(kwargs["bash_command"]) == ["/venv/bin/python", "-m", "trustops.orchestration.step_entrypoint",
                                                   "--step_name", "train_model"]
    assert kwargs["env"] == {"ZENML_STORE_URL": "sqlite:///x", "TRUSTOPS_PROJECT_ROOT": "/project",
                             "ZENML_AIRFLOW_RUN_ID": "{{ run_id }}"}
    assert kwargs["append_env"] is True and kwargs["cwd"] == "/project" and kwargs["skip_on_exit_code"] is None
    assert kwargs["retries"] == 2 and kwargs["retry_delay"] == datetime.timedelta(seconds=5)
    assert "execution_timeout" in kwargs and "failure_dir" not in kwargs and "python" not in kwargs  # other keys pass through


def test_a_failed_task_leaves_a_note_for_the_waiting_command(tmp_path, monkeypatch):
    from trustops.orchestration import airflow

    class Instance:
        run_id, task_id, try_number = "scheduled__2026-12-01", "load_data", 3

    airflow_dag.record_failure(str(tmp_path), "train-1", {"ti": Instance(), "exception": RuntimeError("no module named steps")})
    monkeypatch.setattr(airflow, "failure_dir", lambda root=None: tmp_path)
    message = airflow.task_failure("train-1")
    assert message.startswith("Airflow task load_data of DAG train-1 (run scheduled__2026-12-01) failed on try 3")
    assert "no module named steps" in message
    assert airflow.task_failure("another-dag") is None
