"""MLflow conventions: experiments open in MLflow 3's model-training view, runs carry MLflow's own
source tags, and each setting is logged once."""

from __future__ import annotations

import subprocess

import pytest

# trustops.tracking imports MLflow (seconds), so each test imports what it uses: collection stays fast.


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """One SQLite tracking store for the module: creating one runs MLflow's migrations (seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def test_experiments_are_tagged_for_the_model_training_view(tmp_path, store):
    from mlflow.tracking import MlflowClient

    from trustops.tracking import EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND, ensure_experiment

    uri = store
    client = MlflowClient(uri)
    created = ensure_experiment("trustops-new", uri, tmp_path)
    assert client.get_experiment(created).tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND == "custom_model_development"
    assert ensure_experiment("trustops-new", uri, tmp_path) == created

    older = client.create_experiment("made-before", artifact_location=(tmp_path / "a").as_uri())
    assert ensure_experiment("made-before", uri, tmp_path) == older
    assert client.get_experiment(older).tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND

    chosen = client.create_experiment("chosen", artifact_location=(tmp_path / "b").as_uri(), tags={EXPERIMENT_KIND_TAG: "finetuning"})
    ensure_experiment("chosen", uri, tmp_path)
    assert client.get_experiment(chosen).tags[EXPERIMENT_KIND_TAG] == "finetuning"  # a kind someone chose stays


def git(root, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True, capture_output=True)


def test_source_tags_are_mlflows_own(tmp_path):
    from trustops.tracking import source_tags

    assert source_tags(tmp_path, entry_point="trustops train") == {"mlflow.source.type": "LOCAL", "mlflow.source.name": "trustops train"}

    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    git(tmp_path, "add", "dvc.yaml")
    git(tmp_path, "commit", "-q", "-m", "one")
    git(tmp_path, "remote", "add", "origin", "https://example.org/team/trustops.git")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    tags = source_tags(tmp_path, entry_point="trustops train")
    assert tags == {
        "mlflow.source.type": "LOCAL", "mlflow.source.name": "trustops train", "mlflow.source.git.commit": head,
        "mlflow.source.git.dirty": "false", "mlflow.source.git.branch": "main",
        "mlflow.source.git.repoURL": "https://example.org/team/trustops.git",
    }  # fmt: skip
    (tmp_path / "dvc.yaml").write_text("stages: {x: {cmd: echo}}\n")
    assert source_tags(tmp_path)["mlflow.source.git.dirty"] == "true"
    assert "git_commit" not in tags


def test_each_setting_is_logged_once():
    from trustops.tracking import config_params

    settings = {"capture": {"enabled": True, "uri": "/tmp/c", "backend": "native"}, "dp": {"target_epsilon": 3.0}}
    params = config_params(settings)
    assert params == {"capture.enabled": True, "dp.target_epsilon": 3.0}  # the store is the run's capture_uri tag


def test_the_served_models_config_is_the_only_place_the_capture_store_is_a_param(tmp_path, store):
    """MLflow logs the pyfunc's `model_config` as run params; the same settings from the config are not logged again."""
    import mlflow
    import torch
    from mlflow.tracking import MlflowClient

    from trustops.serving.pyfunc import log_model
    from trustops.tracking import RECORDED_AS_TAGS, config_params, ensure_experiment

    uri = store
    capture = str(tmp_path / "captures")
    settings = {"capture": {"enabled": True, "uri": capture, "backend": "native"}, "model": {"family": "mlp"}}
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run(experiment_id=ensure_experiment("params", uri, tmp_path)) as run:
            mlflow.log_params(config_params(settings))
            log_model(torch.nn.Linear(4, 2), model_config={"capture_uri": capture, "capture_backend": "native", "input_shape": [4]},
                      pip_requirements=["torch"])
    finally:
        mlflow.set_tracking_uri(previous)
    params = MlflowClient(uri).get_run(run.info.run_id).data.params
    assert params["capture_uri"] == capture and params["capture_backend"] == "native" and params["model.family"] == "mlp"
    assert not set(RECORDED_AS_TAGS) & set(params)
    spellings: dict[str, list[str]] = {}
    for key in params:
        spellings.setdefault(key.replace(".", "_"), []).append(key)
    assert [keys for keys in spellings.values() if len(keys) > 1] == []


def test_runs_logged_before_and_after_each_setting_was_logged_once_are_one_configuration():
    from types import SimpleNamespace

    from trustops.compare import config_key

    def run(params):
        return SimpleNamespace(info=SimpleNamespace(experiment_id="1"), data=SimpleNamespace(tags={"trustops_job": "train"}, params=params))

    shared = {"model.family": "mlp", "capture.enabled": "True", "capture_backend": "native"}
    old = run({**shared, "capture.uri": "/c/old", "capture_uri": "/c/old", "capture.backend": "native"})
    new = run({**shared, "capture_uri": "/c/new"})
    assert config_key(old) == config_key(new)


def _lost_race_error():
    """What MLflow's SQL store raises for the run that loses the race to insert a dataset: its
    ``MlflowException`` over SQLAlchemy's ``IntegrityError``, here from a real unique-key violation."""
    import sqlalchemy
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import BAD_REQUEST

    engine = sqlalchemy.create_engine("sqlite://")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE datasets (experiment_id INT, name TEXT, digest TEXT, UNIQUE (experiment_id, name, digest))")
        connection.exec_driver_sql("INSERT INTO datasets VALUES (1, 'digits train', 'abc')")
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO datasets VALUES (1, 'digits train', 'abc')")
    except sqlalchemy.exc.IntegrityError as integrity:
        try:
            raise MlflowException(message=integrity, error_code=BAD_REQUEST) from integrity  # as mlflow.store.db.utils does
        except MlflowException as error:
            return error
    raise AssertionError("the second insert should have failed the unique key")


def test_a_run_that_loses_the_race_to_insert_a_dataset_links_the_one_the_other_run_inserted(tmp_path, store, monkeypatch):
    """Two trainings on the same data in one experiment, at once: MLflow's store looks the dataset up, misses it,
    and the later insert fails the unique key (seen when six `trustops train` started together).  The race itself
    cannot be timed from a test, so the loser's first attempt raises the error MLflow raises; the rest is real."""
    import mlflow
    import pandas as pd

    from trustops.tracking import log_dataset_inputs

    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(store)  # process-wide: restored below
    client = mlflow.MlflowClient(store)
    experiment_id = client.create_experiment("dataset-race", artifact_location=(tmp_path / "artifacts").as_uri())
    dataset = mlflow.data.from_pandas(pd.DataFrame({"pixel_0": [0.0, 1.0], "label": [0, 1]}), name="digits train", targets="label")
    inputs = {"datasets": [dataset], "contexts": ["training"], "tags_list": [{"data_hash": "abc"}]}
    try:
        with mlflow.start_run(experiment_id=experiment_id) as winner:
            mlflow.log_inputs(**inputs)

        real_log_inputs, calls = mlflow.log_inputs, []

        def loses_the_race_once(**inputs):
            calls.append(inputs)
            if len(calls) == 1:
                raise _lost_race_error()
            return real_log_inputs(**inputs)

        monkeypatch.setattr(mlflow, "log_inputs", loses_the_race_once)
        with mlflow.start_run(experiment_id=experiment_id) as loser:
            log_dataset_inputs(**inputs)
    finally:
        mlflow.set_tracking_uri(previous_uri)
    assert len(calls) == 2
    linked = [[(i.dataset.name, i.dataset.digest) for i in client.get_run(run.info.run_id).inputs.dataset_inputs] for run in (winner, loser)]
    assert linked[0] == linked[1] == [("digits train", dataset.digest)]  # an input of both runs ...
    import sqlite3

    with sqlite3.connect(store.removeprefix("sqlite:///")) as connection:  # ... and one dataset, the winner's
        assert connection.execute("SELECT COUNT(*) FROM datasets WHERE name = 'digits train'").fetchone() == (1,)


def test_other_input_errors_are_not_retried_and_the_race_is_retried_a_bounded_number_of_times(monkeypatch):
    import mlflow
    from mlflow.exceptions import MlflowException

    from trustops.tracking import DATASET_INSERT_ATTEMPTS, log_dataset_inputs

    calls = []

    def refuses(error):
        def log_inputs(**inputs):
            calls.append(inputs)
            raise error
        return log_inputs

    monkeypatch.setattr(mlflow, "log_inputs", refuses(MlflowException("Run 'x' not found")))
    with pytest.raises(MlflowException, match="not found"):
        log_dataset_inputs(datasets=[])
    assert len(calls) == 1
    calls.clear()
    monkeypatch.setattr(mlflow, "log_inputs", refuses(_lost_race_error()))
    with pytest.raises(MlflowException, match="UNIQUE constraint failed: datasets"):
        log_dataset_inputs(datasets=[])
    assert len(calls) == DATASET_INSERT_ATTEMPTS == 3
