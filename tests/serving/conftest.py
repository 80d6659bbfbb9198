"""One tiny model trained through the real CLI, shared by all serving tests."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.pipelines.conftest import Project
from trustops.data.digits import export_digits

MODEL_NAME = "trustops-digits"


@dataclass
class Trained:
    project: Project
    name: str
    version: int
    capture_uri: str


@pytest.fixture(scope="package")  # train once for all serving tests
def trained(tmp_path_factory) -> Trained:
    root = tmp_path_factory.mktemp("serving-project")
    (root / "dvc.yaml").write_text("stages: {}\n")
    export_digits(root / "data" / "digits.parquet")
    project = Project(root)
    result = project.trustops("train", "trainer=smoke", "dp=off", timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    version = project.client().get_model_version(MODEL_NAME, "1")
    assert version.tags.get("capture_uri"), version.tags
    return Trained(project, MODEL_NAME, 1, version.tags["capture_uri"])
