"""Checks that run before a pipeline starts, so bad input fails before any run is created."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

from trustops.data.loading import resolve_format
from trustops.errors import DataError
from trustops.paths import project_root
from trustops.settings import TrainSettings

if TYPE_CHECKING:
    from trustops.registry import RegisteredModel


def resolve_data_path(settings: TrainSettings, root: Path | None = None) -> Path:
    path = Path(settings.data.path)
    return path if path.is_absolute() else (root or project_root()) / path


def check_training_inputs(settings: TrainSettings, root: Path | None = None) -> Path:
    """The data file exists and has the label column (read from its header only where possible)."""
    if settings.data.path in ("", "???"):
        raise DataError("No data file given: set data.path=<file> (CSV, Parquet or .npz).")
    path = resolve_data_path(settings, root)
    if not path.is_file():
        hint = f"Run `dvc pull {path}` to fetch it from the DVC remote, or `trustops prepare` to re-create the default digits data."
        raise DataError(f"Data file not found: {path}. {hint}")
    fmt = resolve_format(path, settings.data.format)
    if fmt == "npz":
        check_capture_layers(settings, path)
        return path
    columns = pq.read_schema(path).names if fmt == "parquet" else list(read_table_header(path))
    if settings.data.label_column not in columns:
        shown = ", ".join(columns[:12]) + (" ..." if len(columns) > 12 else "")
        raise DataError(
            f"Label column {settings.data.label_column!r} is not in {path} (columns: {shown}). Set data.label_column=<name>."
        )
    check_table_contents(settings, path)
    return path


def check_table_contents(settings: TrainSettings, path: Path) -> None:
    """Read and check the whole table now (bad values, rare labels, ID columns: see ``trustops.data.loading``),
    so a bad table fails with its one-line message before any run exists; and a DP tabular model has
    public bounds for every numeric column."""
    from trustops.data.loading import load_configured

    frame, info = load_configured(path, settings.data)
    check_capture_layers(settings, path, info)
    if settings.model.family == "tabular" and settings.dp.enabled:
        from trustops.training.preprocessing import require_public_ranges

        require_public_ranges([c for c in info.feature_columns if c not in info.categories], settings.data.feature_ranges)


def read_table_header(path: Path) -> list[str]:
    import pandas as pd

    try:
        return list(pd.read_csv(path, nrows=0).columns)
    except Exception as error:
        raise DataError(f"Could not read {path} as CSV: {error}") from error



def check_capture_layers(settings: TrainSettings, path: Path, info=None) -> None:
    """``capture.layers`` names layers the configured model has (an untrained one of the same shape tells)."""
    if not (settings.capture.enabled and settings.capture.layers):
        return
    from trustops.training.trainer import _build, set_capture_layers

    if info is None:
        from trustops.data.loading import load_configured

        info = load_configured(path, settings.data)[1]
    set_capture_layers(_build(settings, info), settings.capture.layers)


def load_registered_module(found: RegisteredModel, root: Path | None = None):
    """The registered version's ``nn.Module``, from the project's store.

    Downloaded with explicit tracking and registry URIs rather than through MLflow's process-wide
    ones: the pipeline that runs next in this process must resolve them exactly as it would have.
    """
    import tempfile

    import mlflow.artifacts
    from mlflow.tracking import MlflowClient

    from trustops.paths import default_tracking_uri
    from trustops.tracking import load_pytorch_model

    uri = default_tracking_uri(root or project_root())
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    # A `models:/` URI is always resolved through the global client; the version's logged model is not.
    version = client.get_model_version(found.name, str(found.version))
    location = version.source
    if location.startswith("models:/m-"):  # MLflow 3 records the logged model's URI as the version's source
        location = client.get_logged_model(location.removeprefix("models:/")).artifact_location
    with tempfile.TemporaryDirectory() as folder:
        local = mlflow.artifacts.download_artifacts(artifact_uri=location, dst_path=folder, tracking_uri=uri)
        return load_pytorch_model(local)


def check_detect_layers(found: RegisteredModel, names: list[str] | None, root: Path | None = None) -> None:
    """``detect.combine_layers`` names layers the registered model has: checked before any attack or run."""
    if names:
        from trustops.detection.layers import resolve_layers

        resolve_layers(load_registered_module(found, root), names, setting="detect.combine_layers")
