"""One tiny model shared by all serving tests: a copy of the session's smoke-trained model (tests/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.pipelines.conftest import Project

MODEL_NAME = "trustops-digits"


@dataclass
class Trained:
    project: Project
    name: str
    version: int
    capture_uri: str


@pytest.fixture(scope="package")  # one copy for all serving tests
def trained(smoke_model, tmp_path_factory) -> Trained:
    project = smoke_model.copy_to(tmp_path_factory.mktemp("serving-project"))
    assert smoke_model.name == MODEL_NAME
    version = project.client().get_model_version(MODEL_NAME, str(smoke_model.version))
    capture_uri = version.tags.get("capture_uri")
    assert capture_uri and capture_uri.startswith(str(project.root)), version.tags  # the copy's own production store
    return Trained(project, MODEL_NAME, smoke_model.version, capture_uri)
