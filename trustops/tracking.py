"""MLflow conventions shared by every trustops run.

Every run carries the same trust metric names and tags, so runs line up side by side
in the MLflow UI's comparison view.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from trustops.paths import default_artifact_root, default_tracking_uri

MAX_PARAM_LENGTH = 6000


def is_local_store(tracking_uri: str) -> bool:
    return not tracking_uri.startswith(("http://", "https://", "databricks"))


def ensure_experiment(name: str, tracking_uri: str | None = None, root: Path | None = None) -> str:
    """The id of experiment ``name``, created with the project's artifact folder if the store is local."""
    tracking_uri = tracking_uri or default_tracking_uri(root)
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=experiment_artifact_location(tracking_uri, root))


def experiment_artifact_location(tracking_uri: str, root: Path | None = None) -> str | None:
    """Where a new experiment keeps its artifacts.

    With a tracking server, ``None``: the server's ``--artifacts-destination`` decides (so
    clients need no storage credentials).  With a local store, the storage setting's S3
    ``mlartifacts/`` prefix, else the project's ``.trustops/mlartifacts`` folder.
    """
    if not is_local_store(tracking_uri):
        return None
    from trustops.storage import load_storage

    storage = load_storage(root)
    return storage.artifact_root if storage.is_s3 else default_artifact_root(root)


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"dp": {"enabled": True}}`` to ``{"dp.enabled": True}``."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def log_batch(
    *,
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    tags: Mapping[str, Any] | None = None,
    step: int = 0,
) -> None:
    """Log to the active run in one request (per-item calls cost a round trip each on a server)."""
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_batch needs an active MLflow run.")
    timestamp = mlflow.utils.time.get_current_time_millis()
    MlflowClient().log_batch(
        run.info.run_id,
        metrics=[Metric(k, float(v), timestamp, step) for k, v in (metrics or {}).items() if _finite(v)],
        params=[Param(k, str(v)[:MAX_PARAM_LENGTH]) for k, v in (params or {}).items()],
        tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
    )


def log_history(rows: Iterable[Mapping[str, float]], *, step_key: str = "epoch") -> None:
    """Metrics per epoch (or per ``step_key``), each at that step, so curves plot in the MLflow UI; few requests."""
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_history needs an active MLflow run.")
    timestamp = mlflow.utils.time.get_current_time_millis()
    metrics = [
        Metric(name, float(value), timestamp, int(row[step_key]))
        for row in rows
        for name, value in row.items()
        if name != step_key and _finite(value)
    ]
    for start in range(0, len(metrics), 1000):  # MLflow's per-request limit
        MlflowClient().log_batch(run.info.run_id, metrics=metrics[start : start + 1000])


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
