"""An isolated trustops project per test module: its own data file and MLflow store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from trustops.data.digits import export_digits


@dataclass
class Project:
    root: Path

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root / '.trustops' / 'mlflow.db'}"

    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri)

    def runs(self, experiment: str, job: str) -> list:
        client = self.client()
        found = client.get_experiment_by_name(experiment)
        if found is None:
            return []
        return client.search_runs([found.experiment_id], filter_string=f"tags.trustops_job = '{job}'")

    def artifact_paths(self, run_id: str, folder: str) -> set[str]:
        return {a.path for a in self.client().list_artifacts(run_id, folder)}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project root (``dvc.yaml`` + the digits data) that trustops finds through ``TRUSTOPS_PROJECT_ROOT``."""
    import mlflow

    root = tmp_path_factory.mktemp("trust-project")
    (root / "dvc.yaml").write_text("stages: {}\n")
    export_digits(root / "data" / "digits.parquet")
    previous_uri = mlflow.get_tracking_uri()
    threads = torch.get_num_threads()
    # On 2 shared cores torch's default thread count slows these tiny models many times over.
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRUSTOPS_PROJECT_ROOT", str(root))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        yield Project(root)
    torch.set_num_threads(threads)
    mlflow.set_tracking_uri(previous_uri)
