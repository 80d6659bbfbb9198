"""What the DVC ``train`` stage records: metrics and plots files of one training run.

``dvc.yaml``'s ``train`` stage runs ``trustops train --params-file params.yaml --dvc-reports
reports``; MLflow records the run as always, and these files let ``dvc metrics show``,
``dvc metrics diff``, ``dvc plots show`` and ``dvc exp show`` compare experiments.

- ``metrics.json``: ``accuracy`` and ``test_ece`` (test split), ``dp_epsilon`` (spent, when DP
  is on), under the MLflow run's own names, plus the run id and the registered version, so a DVC
  experiment leads to its MLflow run.
- ``plots/training_curves.csv``: one row per epoch, one column per metric logged per epoch.
- ``plots/confusion_matrix.png``: the evaluation step's figure, copied from the MLflow run.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from trustops.metric_names import DP_EPSILON, TEST_ACCURACY, TEST_ECE, read_metric

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
CURVES_FILE = "plots/training_curves.csv"
CONFUSION_FILE = "plots/confusion_matrix.png"
CONFUSION_ARTIFACT = "evaluation/confusion_matrix.png"


def metrics_of(summary: Any) -> dict[str, Any]:
    """The DVC metrics of one :class:`~trustops.runs.training.TrainingRunSummary`."""
    metrics: dict[str, Any] = {
        TEST_ACCURACY: read_metric(summary.metrics, TEST_ACCURACY),
        TEST_ECE: summary.metrics.get(TEST_ECE),
        DP_EPSILON: summary.training.get(DP_EPSILON),
    }
    metrics = {k: float(v) for k, v in metrics.items() if v is not None}
    metrics["mlflow_run_id"] = summary.mlflow_run_id
    if version := summary.registration.get("version"):
        metrics["registered_model"] = f"{summary.registration.get('registered_model')}/{version}"
    return metrics


# What the trainer logs once per epoch (trustops.training); any other metric with more than one step joins them.
CURVE_METRICS = frozenset({"train_loss", "val_loss", "val_accuracy", "dp_epsilon"})


def curves_of(histories: Mapping[str, list[tuple[int, float]]]) -> list[dict[str, Any]]:
    """``{metric: [(step, value), ...]}`` as one row per step (epoch), one column per per-epoch metric."""
    per_epoch = {name: points for name, points in histories.items()
                 if points and (name in CURVE_METRICS or len({step for step, _ in points}) > 1)}  # fmt: skip
    steps = sorted({step for points in per_epoch.values() for step, _ in points})
    rows = []
    for step in steps:
        row: dict[str, Any] = {"epoch": step}
        for name, points in sorted(per_epoch.items()):
            row[name] = next((value for s, value in reversed(points) if s == step), "")
        rows.append(row)
    return rows


def write_reports(summary: Any, out: Path, *, client: Any = None,
                  fetch_artifact: Callable[[str, str], str] | None = None) -> list[Path]:
    """Write the metrics and plots of ``summary``'s run under ``out``; the paths written.

    ``client`` (an ``MlflowClient``) and ``fetch_artifact(run_id, path) -> local file`` default
    to the run's tracking store.
    """
    if client is None:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(summary.tracking_uri, summary.tracking_uri)
    if fetch_artifact is None:
        fetch_artifact = partial(_download, tracking_uri=summary.tracking_uri)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    metrics_path = out / METRICS_FILE
    metrics_path.write_text(json.dumps(metrics_of(summary), indent=2) + "\n", encoding="utf-8")
    written.append(metrics_path)

    run = client.get_run(summary.mlflow_run_id)
    histories = {name: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, name)] for name in run.data.metrics}
    rows = curves_of(histories)
    curves_path = out / CURVES_FILE
    curves_path.parent.mkdir(parents=True, exist_ok=True)
    with curves_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["epoch"])
        writer.writeheader()
        writer.writerows(rows)
    written.append(curves_path)

    try:
        shutil.copyfile(fetch_artifact(run.info.run_id, CONFUSION_ARTIFACT), out / CONFUSION_FILE)
        written.append(out / CONFUSION_FILE)
    except Exception as error:  # a missing figure must not fail a finished, registered run
        logger.warning("No confusion matrix for the DVC plots (%s)", error)
    return written


def _download(run_id: str, path: str, *, tracking_uri: str) -> str:
    import mlflow

    return mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, tracking_uri=tracking_uri)
