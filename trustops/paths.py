"""Where a trustops project keeps its state.

The project root is the nearest folder, from the working directory up, that holds a
``dvc.yaml`` (the same rule DVC and git use), so commands work from any sub-folder.
Run state (MLflow store, ZenML store, DVC's default remote, Hydra outputs) lives under
``<root>/.trustops/``, which git ignores.
"""

from __future__ import annotations

import os
from pathlib import Path

STATE_DIR_NAME = ".trustops"


def project_root(start: Path | None = None) -> Path:
    """The nearest ancestor of ``start`` (default: the working directory) holding ``dvc.yaml``."""
    if env_root := os.environ.get("TRUSTOPS_PROJECT_ROOT"):
        return Path(env_root).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file():
            return folder
    return here


def state_dir(root: Path | None = None) -> Path:
    path = (root or project_root()) / STATE_DIR_NAME
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_tracking_uri(root: Path | None = None) -> str:
    """MLflow's tracking URI: ``MLFLOW_TRACKING_URI`` if set, else a SQLite store in the project."""
    if uri := os.environ.get("MLFLOW_TRACKING_URI"):
        return uri
    return f"sqlite:///{state_dir(root) / 'mlflow.db'}"


def default_artifact_root(root: Path | None = None) -> str:
    """Where MLflow writes run artifacts when the tracking store is local."""
    return (state_dir(root) / "mlartifacts").as_uri()
