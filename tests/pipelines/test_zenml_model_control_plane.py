"""ZenML's Model Control Plane ties a training run, its artifacts, its MLflow version and its monitor passes together.

The session's smoke-trained model (in a copy of its project) and one `trustops monitor` pass over three captured batches, by the real CLI;
then ZenML's own client, in a child interpreter on the project's ZenML store, reads the model
version back.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import SMOKE_MODEL_NAME, SMOKE_TRAINING_EXPERIMENT
from tests.pipelines.served_model import ServedModel, load_served

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MODEL = SMOKE_MODEL_NAME  # the session's smoke model (tests/conftest.py), in this module's copy of its project
MONITOR = "prediction_shift"  # the cheapest default monitor


def zenml_probe(project, body: str) -> dict:
    """Run ``body`` (with ``client``, a ZenML ``Client`` on the project's store; it sets ``result``) in a child interpreter."""
    code = (
        "import json\n"
        "from trustops.stack import configure_zenml_environment\n"
        "configure_zenml_environment()\n"
        "from zenml.client import Client\n"
        "client = Client()\n"
        "result = {}\n"
        f"{body}\n"
        "print('PROBE ' + json.dumps(result, default=str))\n"
    )
    done = project.python(code)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(next(line for line in done.stdout.splitlines() if line.startswith("PROBE ")).removeprefix("PROBE "))


LINKED = """
version = client.get_model_version(MODEL, NUMBER)
result["name"], result["stage"], result["metadata"] = version.name, version.stage, version.run_metadata
result["runs"] = {name: client.get_pipeline_run(run_id).pipeline.name for name, run_id in version.pipeline_run_ids.items()}
result["model_artifacts"] = sorted(version.model_artifact_ids)
result["data_artifacts"] = sorted(version.data_artifact_ids)
result["monitor_runs"] = [(run.name, run.model_version.id if run.model_version else None) for run in client.list_pipeline_runs(
    sort_by="asc:created", size=50, hydrate=True) if run.pipeline.name == "monitoring_pipeline"]
"""


@pytest.fixture(scope="module")
def project(smoke_model, tmp_path_factory):
    """A copy of the session's smoke-model project: ``{MODEL}`` v1, trained by `trustops train trainer=smoke dp=off`."""
    return smoke_model.copy_to(tmp_path_factory.mktemp("mcp-project"))


@pytest.fixture(scope="module")
def monitored(project) -> ServedModel:
    """A smoke-trained registered model, three captured batches and one monitor pass over them."""
    served = load_served(project, MODEL)
    for first in (0, 60, 120):
        served.serve(served.images[first:first + 60])
    result = project.trustops("monitor", "--model", MODEL, "--monitors", MONITOR)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Monitored 3 batch(es)" in result.stdout
    return served


def linked(project, number: int) -> dict:
    return zenml_probe(project, f"MODEL, NUMBER = {MODEL!r}, {number}\n{LINKED}")


def test_the_training_and_monitor_runs_and_the_trained_model_are_linked_to_one_zenml_version_both_ways(project, monitored):
    from trustops.zenml_model import MODEL_VERSION_ID_TAG, MODEL_VERSION_NUMBER_TAG

    found = monitored.found
    mlflow_version = project.client().get_model_version(MODEL, str(found.version))
    number = int(mlflow_version.tags[MODEL_VERSION_NUMBER_TAG])  # MLflow -> ZenML
    version = linked(project, number)

    training_run = mlflow_version.run_id
    assert version["metadata"] == {                                 # ZenML -> MLflow
        "trustops.status": "ready", "mlflow.registered_model": MODEL, "mlflow.model_version": found.version,
        "mlflow.run_id": training_run, "mlflow.model_uri": f"models:/{MODEL}/{found.version}",
        "mlflow.logged_model_uri": mlflow_version.source,
    }
    assert version["name"].startswith("train-digits-") and version["stage"] is None
    (training_name,) = [name for name, pipeline in version["runs"].items() if pipeline == "training_pipeline"]
    assert project.client().get_run(training_run).info.run_name == training_name  # one name in ZenML and MLflow
    assert sorted(version["runs"].values()) == ["monitoring_pipeline", "training_pipeline"]
    assert version["model_artifacts"] == ["model"]                  # the trained nn.Module
    assert {"dataset", "evaluation", "registration", "model_info", "pass_report"} <= set(version["data_artifacts"])
    (monitor_run,) = version["monitor_runs"]
    assert monitor_run[0] in version["runs"] and monitor_run[1] == mlflow_version.tags[MODEL_VERSION_ID_TAG]


def test_a_version_registered_without_the_link_is_monitored_without_a_zenml_model(project, monitored):
    """A model registered before trustops linked ZenML versions: the pass runs, attached to nothing."""
    from trustops.zenml_model import MODEL_VERSION_ID_TAG, MODEL_VERSION_NUMBER_TAG

    found = monitored.found
    client = project.client()
    number = int(client.get_model_version(MODEL, str(found.version)).tags[MODEL_VERSION_NUMBER_TAG])
    for tag in (MODEL_VERSION_ID_TAG, MODEL_VERSION_NUMBER_TAG):
        client.delete_model_version_tag(MODEL, str(found.version), tag)
    monitored.serve(monitored.images[180:240])
    result = project.trustops("monitor", "--model", MODEL, "--monitors", MONITOR)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Monitored 1 batch(es)" in result.stdout
    version = linked(project, number)
    assert len(version["runs"]) == 2                                # the new pass is not among them
    assert [model_version for _, model_version in version["monitor_runs"]][1:] == [None]


def test_a_failed_run_leaves_a_version_marked_failed_and_a_bad_link_is_ignored(project, monitored):
    """The failure path without a second training run: a version whose run never started, settled as after a failure."""
    result = zenml_probe(project, f"""
import uuid
from trustops.zenml_model import MODEL_VERSION_ID_TAG, create_training_version, monitored_model, settle_unfinished_training_version
version = create_training_version({MODEL!r}, "train-never-started")
result["pending"] = client.get_model_version(model_version_name_or_number_or_id=version.id).run_metadata
settle_unfinished_training_version(version, "train-never-started")
settled = client.get_model_version(model_version_name_or_number_or_id=version.id)
result["failed"], result["stage"], result["name"] = settled.run_metadata, settled.stage, settled.name
result["tags"] = [tag.name for tag in settled.tags]
result["unlinked"] = [monitored_model(tags) for tags in ({{}}, {{MODEL_VERSION_ID_TAG: str(uuid.uuid4())}},
                                                         {{MODEL_VERSION_ID_TAG: "not-an-id"}})]
""")
    assert result["pending"] == {"trustops.status": "pending"}
    # a tag, not a stage: ZenML lets one version at a time hold a stage, and many runs may fail
    assert result["failed"] == {"trustops.status": "failed"} and result["tags"] == ["failed"] and result["stage"] is None
    assert result["name"] == "train-never-started"
    assert result["unlinked"] == [None, None, None]
