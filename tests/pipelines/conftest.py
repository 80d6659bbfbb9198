"""An isolated trustops project per test module: its own MLflow store, ZenML store and data."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from trustops.data.digits import export_digits

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Project:
    root: Path

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ZENML_"))}
        env.update(TRUSTOPS_PROJECT_ROOT=str(self.root), PYTHONUNBUFFERED="1")
        return env

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root / '.trustops' / 'mlflow.db'}"

    def trustops(self, *args: str, timeout: float = 900, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run the real CLI in a child process, as a user would (``env`` adds variables)."""
        return subprocess.run(
            [str(Path(sys.executable).parent / "trustops"), *args],
            cwd=self.root, env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=timeout,
        )

    def python(self, code: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run ``code`` in a child interpreter inside this project (its own ZenML and MLflow stores).

        From a script file: ZenML finds its source root from the main module's file.
        """
        script = self.root / "probe.py"
        script.write_text(code)
        return subprocess.run([sys.executable, str(script)], cwd=self.root, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=timeout)

    @contextlib.contextmanager
    def mlflow_globals(self):
        """Point MLflow's process-wide tracking and registry URIs at this project, then restore them."""
        import mlflow

        previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        try:
            yield mlflow
        finally:
            mlflow.set_tracking_uri(previous[0])
            mlflow.set_registry_uri(previous[1])

    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    root = tmp_path_factory.mktemp("project")
    (root / "dvc.yaml").write_text("stages: {}\n")
    export_digits(root / "data" / "digits.parquet")
    return Project(root)
