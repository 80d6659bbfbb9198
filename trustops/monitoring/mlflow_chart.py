"""The monitoring run: one long-lived MLflow run per model version and traffic, whose metric history is the control chart.

Each ``trustops monitor`` pass is its own MLflow run (ZenML's tracker opens it) and a child of
the monitoring run (tag ``mlflow.parentRunId``).  At every capture step the monitoring run gets,
per chart, the charted value, the centre line, the upper control limit and the signal, so the
MLflow UI's line chart of a run draws each control chart with its limits over the whole life of
the model version, not as one dot per pass.

The points logged are the chart stage's own (:func:`trustops.monitoring.charting.chart_batches`
and the chart states it saved), never recomputed here, and only those after the last step the
run already holds: a pass repeated after a crash logs no step twice, and a pass killed after its
charts were saved but before they reached MLflow has its points logged by the next pass.

The run is found by its tag (:data:`MONITORING_RUN_TAG`), created once, and linked both ways
with the model version: its tags name the version (and its path in the MLflow UI), the version's
tag ``trustops.monitoring_run.<traffic>`` holds the run id, and the MLflow 3 logged model is an
input of the run.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trustops.metric_names import CHART_CENTER, CHART_QUANTITIES, CHART_SIGNAL, CHART_UCL, CHART_VALUE, monitor_metric

if TYPE_CHECKING:
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.tracking import MlflowClient

    from trustops.monitoring.records import ChartPoint
    from trustops.monitoring.state_store import StateStore
    from trustops.registry import RegisteredModel

# The charted quantities, each logged as ``<chart>.<quantity>`` at the capture step, are named with
# every other metric in trustops.metric_names (CHART_VALUE, CHART_CENTER, CHART_UCL, CHART_SIGNAL).
# A p-value chart pages on small p only (every monitor's test is one-sided), so it has no lower limit.

# In control a valid p-value is uniform, so -log10 p lies above -log10(1/2) half the time: the
# in-control median is the centre line of a probability-limit chart (the mean, 1/ln 10, is pulled
# up by the long right tail of -log10 p and would leave most in-control points below it).
CENTER_LINE = math.log10(2.0)

MONITORING_RUN_TAG = "trustops.monitoring_run"  # on the monitoring run: "<model>/v<version>/<traffic>"
MODEL_VERSION_TAG_PREFIX = "trustops.monitoring_run."  # on the model version, + traffic: the monitoring run's id
MODEL_VERSION_URL_TAG = "model_version_url"  # on the monitoring run: the version's page in the MLflow UI
PARENT_RUN_TAG = "mlflow.parentRunId"  # MLflow's own: the UI nests a run under its parent
DESCRIPTION_TAG = "mlflow.note.content"  # MLflow's own: the run page's description (Markdown)

MAX_METRICS_PER_REQUEST = 1000  # MLflow's log_batch limit


def chart_metric(chart: str, quantity: str) -> str:
    """The MLflow metric name of ``quantity`` (one of :data:`CHART_QUANTITIES`) on ``chart``."""
    return monitor_metric(chart, quantity)


def _safe(name: str) -> str:
    # As the monitor state's folder names them (trustops.runs.monitoring.monitor_state), so one
    # state folder and one monitoring run always go together.
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def monitoring_key(model: RegisteredModel, traffic: str) -> str:
    return f"{_safe(model.name)}/v{model.version}/{_safe(traffic)}"


def monitoring_run_name(model: RegisteredModel, traffic: str) -> str:
    """``monitor trustops-digits v3``, with the traffic after it when it is not production."""
    name = f"monitor {model.name} v{model.version}"
    return name if traffic == "production" else f"{name} {traffic}"


def model_version_path(name: str, version: int | str) -> str:
    """The model version's page in the MLflow UI, relative to the UI's address."""
    return f"#/models/{urllib.parse.quote(name, safe='')}/versions/{version}"


def open_monitoring_run(client: MlflowClient, model: RegisteredModel, *, traffic: str, experiment_id: str) -> str:
    """The id of the monitoring run of ``model`` and ``traffic`` in ``experiment_id``, created on first use.

    The run is left FINISHED: nobody owns it between passes, so it must not look like a run
    abandoned while RUNNING; MLflow accepts metrics for a finished run.  Two first passes that
    race (a remote orchestrator; locally the run lock prevents it) both create one, both then
    keep the oldest, and the other deletes its own, still empty, run.
    """
    key = monitoring_key(model, traffic)
    found = _find_monitoring_run(client, experiment_id, key)
    if found is None:
        model_id = _logged_model_id(client, model)
        created = client.create_run(experiment_id, run_name=monitoring_run_name(model, traffic),
                                    tags=_monitoring_run_tags(model, traffic, key, model_id))
        client.set_terminated(created.info.run_id, "FINISHED")
        found = _find_monitoring_run(client, experiment_id, key)
        if found != created.info.run_id:
            client.delete_run(created.info.run_id)
        elif model_id:
            from mlflow.entities import LoggedModelInput

            client.log_inputs(found, models=[LoggedModelInput(model_id)])
    # Every pass (one request): the link survives a creator killed before it set it.
    client.set_model_version_tag(model.name, str(model.version), MODEL_VERSION_TAG_PREFIX + _safe(traffic), found)
    return found


def _find_monitoring_run(client: MlflowClient, experiment_id: str, key: str) -> str | None:
    from mlflow.entities import ViewType

    runs = client.search_runs([experiment_id], filter_string=f"tags.`{MONITORING_RUN_TAG}` = '{key}'",
                              run_view_type=ViewType.ACTIVE_ONLY, max_results=100)
    if not runs:
        return None
    return min(runs, key=lambda run: (run.info.start_time, run.info.run_id)).info.run_id


def _logged_model_id(client: MlflowClient, model: RegisteredModel) -> str | None:
    """The MLflow 3 logged model behind the version (``None`` for a version registered without one)."""
    from mlflow.exceptions import MlflowException

    version = client.get_model_version(model.name, str(model.version))
    if version.model_id:
        return version.model_id
    # MLflow's own registry stores keep only the source: `models:/<model_id>` for a version
    # registered from a logged model (as register_model does), `models:/NAME/N` or `@ALIAS` otherwise.
    candidate = version.source.removeprefix("models:/")
    if not version.source.startswith("models:/") or "/" in candidate or "@" in candidate:
        return None
    try:
        return client.get_logged_model(candidate).model_id
    except MlflowException:
        return None


def _monitoring_run_tags(model: RegisteredModel, traffic: str, key: str, model_id: str | None) -> dict[str, str]:
    path = model_version_path(model.name, model.version)
    tags = {
        MONITORING_RUN_TAG: key,
        "trustops_job": "monitor",
        "model_version": f"{model.name}/{model.version}",
        MODEL_VERSION_URL_TAG: path,
        "training_run_id": model.run_id,
        "traffic": traffic,
        DESCRIPTION_TAG: (
            f"Control charts of [{model.name} v{model.version}]({path}) on its {traffic} traffic: per monitor, "
            f"`<monitor>.{CHART_VALUE}` (-log10 p) with `{CHART_CENTER}`, `{CHART_UCL}` and `{CHART_SIGNAL}` at each "
            "capture step. Each `trustops monitor` pass is a child run."
        ),
    }
    if model_id:
        tags["model_id"] = model_id
    return tags


@dataclass(frozen=True)
class ChartRow:
    """One point of one chart, as logged: at capture ``step``."""

    chart: str
    step: int
    value: float
    ucl: float
    signal: bool

    def metrics(self, timestamp: int) -> list:
        from mlflow.entities import Metric

        values = {CHART_VALUE: self.value, CHART_CENTER: CENTER_LINE, CHART_UCL: self.ucl, CHART_SIGNAL: float(self.signal)}
        return [Metric(chart_metric(self.chart, q), float(values[q]), timestamp, self.step) for q in CHART_QUANTITIES]


def rows_to_log(points: Sequence[ChartPoint], saved: Mapping[str, Sequence[Mapping]], logged_through: Mapping[str, int]) -> list[ChartRow]:
    """The chart points the monitoring run lacks, in step order.

    ``points`` are the points this pass charted; ``saved`` the chart states' points per chart
    (``step``, ``value``, ``ucl``), which also hold those charted by an earlier attempt killed
    before it logged them; ``logged_through`` the last step the run holds per chart.
    """
    rows: dict[tuple[str, int], ChartRow] = {}
    for chart, saved_points in saved.items():
        for point in saved_points:
            # -log10 is decreasing, so value >= ucl is the chart's own rule p <= page level.
            rows[chart, point["step"]] = ChartRow(chart, point["step"], point["value"], point["ucl"], point["value"] >= point["ucl"])
    for point in points:
        rows[point.chart, point.step] = ChartRow(point.chart, point.step, point.value, point.ucl, point.signal)
    pending = [row for (chart, step), row in rows.items() if step > logged_through.get(chart, -1)]
    return sorted(pending, key=lambda row: (row.step, row.chart))


def logged_through(client: MlflowClient, run_id: str) -> dict[str, int]:
    """Per chart, the last capture step the run holds.

    MLflow keeps each metric's latest value by step, updated in the same transaction as the
    metric rows, so this is exact after a crash at any point.
    """
    suffix = f".{CHART_VALUE}"
    return {metric.key.removesuffix(suffix): metric.step for metric in client.get_run(run_id).data.to_proto().metrics
            if metric.key.endswith(suffix)}  # fmt: skip


def saved_chart_points(state: StateStore | Path | str) -> dict[str, list[dict]]:
    """Each chart's saved points (its most recent ones) in the monitor state, read as the chart stage keeps them."""
    from trustops.monitoring.charting import ChartBook
    from trustops.monitoring.state_store import open_state

    book = ChartBook(open_state(state).child("charts"))
    for key in book.store.list():
        if key.endswith(".json") and "/" not in key:
            book.load(key.removesuffix(".json"))
    return book.points


def log_chart_points(client: MlflowClient, run_id: str, points: Sequence[ChartPoint], *, state: StateStore | Path | str) -> list[ChartRow]:
    """Log into the monitoring run every chart point it lacks (see :func:`rows_to_log`); returns them.

    ``state`` is the monitor state the chart stage saved the charts in.  Each request holds
    whole points in step order, and each request's metrics are stored in one transaction, so a
    crash between requests leaves every chart complete up to some step.
    """
    rows = rows_to_log(points, saved_chart_points(state), logged_through(client, run_id))
    timestamp = int(time.time() * 1000)
    per_request = MAX_METRICS_PER_REQUEST // len(CHART_QUANTITIES)
    for start in range(0, len(rows), per_request):
        client.log_batch(run_id, metrics=[m for row in rows[start : start + per_request] for m in row.metrics(timestamp)])
    if rows:
        client.set_terminated(run_id, "FINISHED")  # its end time: when it was last charted
    return rows


def monitored_batches(capture_uri: str, steps: Sequence[int]) -> MetaDataset:
    """The batches a pass monitored, as an MLflow dataset: named by their capture steps, digest of the exact steps.

    A pass repeated after a crash monitors the same steps, so it logs the same dataset.
    """
    from mlflow.data.meta_dataset import MetaDataset

    from trustops.tracking import dataset_source

    ordered = sorted(steps)
    span = f"step {ordered[0]}" if len(ordered) == 1 else f"steps {ordered[0]}-{ordered[-1]}"
    digest = hashlib.sha256(json.dumps({"capture_uri": capture_uri, "steps": ordered}).encode()).hexdigest()[:16]
    return MetaDataset(dataset_source(capture_uri), name=f"capture {span}", digest=digest)
