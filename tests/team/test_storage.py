"""One storage setting for DVC, MLflow artifacts and captures: validation, DVC config, and faults that fail early."""

from __future__ import annotations

import json

import pytest

from tests.team.conftest import new_project, run_cli
from trustops.errors import ConfigError
from trustops.storage import ENV_ENDPOINT, ENV_REGION, ENV_URI, StorageSettings, load_storage


@pytest.mark.parametrize(
    ("uri", "endpoint", "message"),
    [
        ("gs://bucket/prefix", None, "must be 'local' or s3://bucket/prefix"),
        ("s3://ab/prefix", None, "3-63 lowercase letters"),
        ("s3://Bucket/prefix", None, "3-63 lowercase letters"),
        ("s3://key:secret@bucket/prefix", None, "must not carry credentials"),
        ("s3://bucket/a/../b", None, "'..'"),
        ("s3://bucket/prefix", "ftp://host", "must be an http(s) URL"),
        ("s3://bucket/prefix", "http://key:secret@host:8333", "must not carry credentials"),
        ("local", "http://127.0.0.1:8333", "apply to s3:// storage only"),
    ],
)
def test_bad_settings_say_what_is_allowed(uri, endpoint, message):
    with pytest.raises(ConfigError, match="storage|endpoint|apply") as error:
        StorageSettings(uri, endpoint)
    assert message in str(error.value)
    assert "secret" not in str(error.value)


def test_locations_derive_from_the_one_uri():
    storage = StorageSettings("s3://team-bucket/trustops/", "http://127.0.0.1:8333", "eu-west-1")
    assert storage.dvc_url == "s3://team-bucket/trustops/dvc"
    assert storage.artifact_root == "s3://team-bucket/trustops/mlartifacts"
    assert storage.capture_uri("train-1") == "s3://team-bucket/trustops/captures/train-1"


def test_the_environment_overrides_the_project_file(tmp_path, monkeypatch):
    for name in (ENV_URI, ENV_ENDPOINT, ENV_REGION):
        monkeypatch.delenv(name, raising=False)
    assert load_storage(tmp_path) == StorageSettings()
    (tmp_path / "trustops-storage.json").write_text(json.dumps({"uri": "s3://file-bucket/p", "endpoint_url": "http://h:1"}))
    assert load_storage(tmp_path) == StorageSettings("s3://file-bucket/p", "http://h:1")
    monkeypatch.setenv(ENV_URI, "s3://env-bucket/q")
    assert load_storage(tmp_path) == StorageSettings("s3://env-bucket/q")


def test_storage_use_points_the_default_dvc_remote_at_s3_and_back(tmp_path):
    project = new_project(tmp_path / "p", dvc=True)
    used = run_cli(project, "storage", "use", "s3://team-bucket/trustops", "--endpoint-url", "http://127.0.0.1:9", "--region",
                   "eu-west-1", "--no-check")  # fmt: skip
    assert used.returncode == 0, used.stderr
    assert "DVC remote 's3':   s3://team-bucket/trustops/dvc" in used.stdout
    config = (project.root / ".dvc" / "config").read_text()
    assert "remote = s3" in config and "url = s3://team-bucket/trustops/dvc" in config
    assert "endpointurl = http://127.0.0.1:9" in config and "region = eu-west-1" in config
    assert json.loads((project.root / "trustops-storage.json").read_text()) == {
        "uri": "s3://team-bucket/trustops", "endpoint_url": "http://127.0.0.1:9", "region": "eu-west-1"}  # fmt: skip

    back = run_cli(project, "storage", "use", "local")
    assert back.returncode == 0, back.stderr
    assert "remote = local" in (project.root / ".dvc" / "config").read_text()
    assert not (project.root / "trustops-storage.json").exists()


def test_a_bad_storage_uri_fails_with_one_line_and_exit_2(tmp_path):
    project = new_project(tmp_path / "p")
    result = run_cli(project, "storage", "use", "s3://x/prefix", "--no-check")
    assert result.returncode == 2
    assert result.stderr.startswith("trustops: error: ") and "Traceback" not in result.stderr
