"""One storage setting for DVC, MLflow artifacts and captures: validation, DVC config, and faults that fail early."""

from __future__ import annotations

import json
import subprocess
import sys

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


def _one_line_error(result) -> str:
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("trustops: error: ")
    return line


def test_a_malformed_storage_setting_is_one_line_for_every_command_and_storage_use_replaces_it(tmp_path):
    project = new_project(tmp_path / "p")
    # From the environment: every command refuses it in one line (it used to be a traceback, before any command ran).
    refused = run_cli(project, "config", env={ENV_URI: "s3://b/prefix"})
    assert "Malformed storage URI 's3://b/prefix'" in _one_line_error(refused)
    # From the project file: the same, and the command the message names repairs it.
    (project.root / "trustops-storage.json").write_text('["not", "a", "setting"]')
    assert "Re-create it with `trustops storage use`" in _one_line_error(run_cli(project, "config"))
    repaired = run_cli(project, "storage", "use", "s3://team-bucket/p", "--endpoint-url", "http://127.0.0.1:9", "--no-check")
    assert repaired.returncode == 0, repaired.stderr[-3000:]
    assert json.loads((project.root / "trustops-storage.json").read_text())["uri"] == "s3://team-bucket/p"
    assert run_cli(project, "config").returncode == 0


def test_a_training_refused_by_its_s3_store_fails_before_importing_the_training_pipeline(tmp_path):
    """The store check runs before Lightning, torch and ZenML are imported: refused in seconds, not in 10+
    (``bench.bench_cli_latency``'s ``refused_s3_train`` rows)."""
    project = new_project(tmp_path / "p")
    env = {k: v for k, v in project.env.items() if not k.startswith("AWS_")}
    env.update({ENV_URI: "s3://team-bucket/p", ENV_ENDPOINT: "http://127.0.0.1:9", "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none")})
    code = ("import sys; from trustops.cli import main; code = main(['train', 'trainer=smoke']); "
            "print(code, sorted(m for m in ('lightning', 'torch', 'zenml', 'pipelines.training') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=project.root, env=env, capture_output=True, text=True, timeout=300)
    assert result.stdout.strip() == "2 []", result.stdout + result.stderr[-3000:]
    assert "no usable AWS credentials" in result.stderr and "Traceback" not in result.stderr
