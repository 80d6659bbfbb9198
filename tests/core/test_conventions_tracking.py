"""MLflow conventions: experiments open in MLflow 3's model-training view, runs carry MLflow's own
source tags, and each setting is logged once."""

from __future__ import annotations

import subprocess


from trustops.tracking import EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND, config_params, ensure_experiment, source_tags


def test_experiments_are_tagged_for_the_model_training_view(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
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
    settings = {"capture": {"enabled": True, "uri": "/tmp/c", "backend": "native"}, "dp": {"target_epsilon": 3.0}}
    params = config_params(settings)
    assert params == {"capture.enabled": True, "dp.target_epsilon": 3.0}  # the store is the run's capture_uri tag
