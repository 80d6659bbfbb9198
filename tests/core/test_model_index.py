"""The MLflow-free registry lookup of a no-op monitor pass agrees with MLflow's own registry."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

from trustops.model_index import READY_TAG, peek_model_version, split_model_reference


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> tuple[str, MlflowClient]:
    """A real SQLite MLflow store: versions 1 and 2 ready, 3 from an unfinished run; alias champion -> 1."""
    from mlflow.tracking import MlflowClient  # here, not at module level: MLflow takes seconds to import

    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri, uri)
    client.create_registered_model("digits")
    for version in (1, 2, 3):
        created = client.create_model_version("digits", source=str(root / f"model-{version}"),
                                              tags={"capture_uri": f"/captures/v{version}"})
        assert int(created.version) == version
        client.set_model_version_tag("digits", str(version), READY_TAG[0], READY_TAG[1] if version < 3 else "pending")
    client.set_registered_model_alias("digits", "champion", "1")
    client.set_registered_model_alias("digits", "candidate", "3")
    return uri, client


def test_latest_is_the_newest_ready_version_as_in_the_registry(registry):
    uri, client = registry
    ready = [int(v.version) for v in client.search_model_versions("name='digits'") if v.tags.get(READY_TAG[0]) == READY_TAG[1]]
    found = peek_model_version(uri, "digits", "latest")
    assert found is not None and found.version == max(ready) == 2 and found.capture_uri == "/captures/v2"


@pytest.mark.parametrize(("name", "version", "expected"), [
    ("digits", "1", 1),
    ("digits", "@champion", 1),
    ("digits@champion", "latest", 1),
])
def test_numbers_and_aliases_resolve_to_their_version(registry, name, version, expected):
    uri, client = registry
    found = peek_model_version(uri, name, version)
    assert found is not None and found.version == expected
    assert found.capture_uri == client.get_model_version("digits", str(expected)).tags["capture_uri"]


@pytest.mark.parametrize(("name", "version"), [
    ("digits", "3"),              # its training run did not finish: the registry explains
    ("digits@candidate", "latest"),  # an alias on such a version
    ("digits", "9"),              # no such version
    ("digits@nobody", "latest"),  # no such alias
    ("other", "latest"),          # no such model
    ("digits", "newest"),         # not a version
])
def test_anything_uncertain_is_left_to_the_registry(registry, name, version):
    uri, _ = registry
    assert peek_model_version(uri, name, version) is None


def test_a_newer_version_without_a_status_is_left_to_the_registry(registry):
    uri, client = registry
    client.create_model_version("digits", source="/elsewhere", tags={"capture_uri": "/captures/v4"})  # by hand
    try:
        assert peek_model_version(uri, "digits", "latest") is None
        assert peek_model_version(uri, "digits", "1").version == 1
    finally:
        client.delete_model_version("digits", "4")


def test_other_stores_are_left_to_mlflow(tmp_path: Path):
    assert peek_model_version("http://127.0.0.1:5000", "digits") is None
    assert peek_model_version(f"sqlite:///{tmp_path / 'absent.db'}", "digits") is None
    (tmp_path / "not-mlflow.db").write_bytes(b"not a database")
    assert peek_model_version(f"sqlite:///{tmp_path / 'not-mlflow.db'}", "digits") is None


def test_a_model_reference_splits_at_its_alias():
    assert split_model_reference("digits@champion") == ("digits", "@champion")
    assert split_model_reference("digits", "4") == ("digits", "4")
