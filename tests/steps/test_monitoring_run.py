"""The model version's long-lived monitoring run: its metric history is the control chart, each pass a child run.

A real MLflow store (SQLite), a real capture and the monitor steps' own functions
(``step.entrypoint``), without a ZenML stack: what a pass logs, how a repeated pass after a
crash logs nothing twice, and how the runs link to each other and to the model version.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from trustops.capture import ActivationCapture
from trustops.models.networks import build_classifier
from trustops.monitoring import charting
from trustops.monitoring.mlflow_chart import (
    CENTER_LINE,
    CHART_CENTER,
    CHART_QUANTITIES,
    CHART_SIGNAL,
    CHART_UCL,
    CHART_VALUE,
    MODEL_VERSION_TAG_PREFIX,
    MODEL_VERSION_URL_TAG,
    PARENT_RUN_TAG,
    chart_metric,
    monitored_batches,
    open_monitoring_run,
)
from trustops.monitoring.records import BatchScores, CheckedBatches, MonitorScore
from trustops.registry import RegisteredModel
from trustops.runs.monitoring import MONITORING_EXPERIMENT, pass_run_name
from trustops.settings import TrainSettings

LEVEL = 1 / 1000  # every chart's page level here: its upper control limit is -log10(LEVEL) = 3
CHARTS = ("mean_confidence", "feature_squeezing")


def checked(steps: range, *, paged: int | None = None) -> CheckedBatches:
    """One batch per capture step; ``mean_confidence`` pages (p = 1e-6) at step ``paged``."""

    def score(p_value: float) -> MonitorScore:
        return MonitorScore(score=-math.log10(p_value), threshold=3.0, alarm=p_value <= LEVEL, p_value=p_value, page_level=LEVEL)

    batches = [BatchScores(step=s, batch_size=50, scores={"mean_confidence": score(1e-6 if s == paged else 0.3 + s / 100),
                                                          "feature_squeezing": score(0.5)}) for s in steps]
    return CheckedBatches(batches=batches, page_levels=dict.fromkeys(CHARTS, LEVEL), false_page_budget=500.0)


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A SQLite MLflow store with the monitoring experiment and a registered version backed by an MLflow 3 logged model."""
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(uri, uri)
    experiment = client.create_experiment(MONITORING_EXPERIMENT, artifact_location=(tmp_path / "artifacts").as_uri())
    logged = client.create_logged_model(experiment, name="model")
    client.create_registered_model("digits")
    version = client.create_model_version("digits", f"models:/{logged.model_id}", model_id=logged.model_id)
    capture = str(tmp_path / "captures")
    model = RegisteredModel(name="digits", version=int(version.version), run_id="training-run",
                            model_uri=f"models:/digits/{version.version}", tags={"capture_uri": capture},
                            training=TrainSettings())
    yield client, experiment, model, logged.model_id
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(previous[0])
    mlflow.set_registry_uri(previous[1])


def serve(capture_uri: str, batches: int) -> None:
    """``batches`` PREDICT steps captured from a real (untrained) classifier."""
    model = build_classifier("mlp", (64,), 10).eval()
    for _ in range(batches):
        with ActivationCapture(model, capture_uri, mode="predict"), torch.inference_mode():
            model(torch.rand(8, 64))


def monitor_pass(store, state: Path, found: CheckedBatches) -> tuple[str, str]:
    """The collect and chart steps of one pass, in a pass run of their own; ``(pass run id, monitoring run id)``."""
    import mlflow

    from steps.monitoring.chart_metrics import chart_metrics  # ZenML steps: importing ZenML takes seconds of collection
    from steps.monitoring.collect_captures import collect_captures

    client, experiment, model, _ = store
    with mlflow.start_run(experiment_id=experiment, run_name=pass_run_name()) as run:
        _, monitoring = collect_captures.entrypoint(model_info=model, state=str(state))
        chart_metrics.entrypoint(checked=found, model_info=model, state=str(state), monitoring_run_id=monitoring)
    return run.info.run_id, monitoring


def history(client, run_id: str, chart: str, quantity: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, chart_metric(chart, quantity)))


def test_every_pass_charts_into_one_monitoring_run_with_centre_line_limit_and_signal(store, tmp_path):
    client, _, model, _ = store
    serve(model.capture_uri, 1)
    state = tmp_path / "state"
    first, monitoring = monitor_pass(store, state, checked(range(0, 3)))
    second, again = monitor_pass(store, state, checked(range(3, 6), paged=4))

    assert again == monitoring and first != second  # one monitoring run, a child run per pass
    for chart in CHARTS:
        values = history(client, monitoring, chart, CHART_VALUE)
        assert [step for step, _ in values] == [0, 1, 2, 3, 4, 5]
        for quantity in (CHART_CENTER, CHART_UCL, CHART_SIGNAL):
            assert [step for step, _ in history(client, monitoring, chart, quantity)] == [0, 1, 2, 3, 4, 5]
        assert all(value == pytest.approx(CENTER_LINE) for _, value in history(client, monitoring, chart, CHART_CENTER))
        assert all(value == pytest.approx(3.0) for _, value in history(client, monitoring, chart, CHART_UCL))
    confidence = dict(history(client, monitoring, "mean_confidence", CHART_VALUE))
    assert confidence[4] == pytest.approx(6.0) and confidence[0] == pytest.approx(-math.log10(0.3))
    assert history(client, monitoring, "mean_confidence", CHART_SIGNAL) == [(0, 0.0), (1, 0.0), (2, 0.0), (3, 0.0), (4, 1.0), (5, 0.0)]
    assert history(client, monitoring, "feature_squeezing", CHART_SIGNAL) == [(s, 0.0) for s in range(6)]
    # The pass runs hold no chart history of their own: it is all in the monitoring run.
    assert not any(key.endswith(f".{CHART_VALUE}") for key in client.get_run(second).data.metrics)


def test_a_pass_killed_after_saving_its_charts_is_logged_once_by_the_next_attempt(store, tmp_path, monkeypatch):
    client, _, model, _ = store
    serve(model.capture_uri, 1)
    state = tmp_path / "state"
    _, monitoring = monitor_pass(store, state, checked(range(0, 2)))

    def killed(name: str) -> None:
        if name == "monitor.chart":  # chart states saved, nothing logged to MLflow yet
            raise KeyboardInterrupt(name)

    monkeypatch.setattr(charting, "failpoint", killed)
    with pytest.raises(KeyboardInterrupt):
        monitor_pass(store, state, checked(range(2, 5)))
    assert [s for s, _ in history(client, monitoring, "mean_confidence", CHART_VALUE)] == [0, 1]
    monkeypatch.undo()

    for _ in range(2):  # the re-run after the kill, and once more after a kill past the chart stage
        monitor_pass(store, state, checked(range(2, 5)))
        for chart in CHARTS:
            for quantity in CHART_QUANTITIES:
                assert [s for s, _ in history(client, monitoring, chart, quantity)] == [0, 1, 2, 3, 4], (chart, quantity)


def test_pass_runs_are_children_with_distinct_names_and_the_model_version_links_both_ways(store, tmp_path):
    client, experiment, model, model_id = store
    serve(model.capture_uri, 1)
    state = tmp_path / "state"
    passes = [monitor_pass(store, state, checked(range(s, s + 1)))[0] for s in range(3)]

    (monitoring,) = client.search_runs([experiment], filter_string="tags.trustops_job = 'monitor' and tags.traffic = 'production'")
    children = [client.get_run(run_id) for run_id in passes]
    assert {run.data.tags[PARENT_RUN_TAG] for run in children} == {monitoring.info.run_id}
    names = [run.info.run_name for run in children]
    assert len(set(names)) == 3 and all(name.startswith("pass-") for name in names)
    assert len({name[:13] for name in [pass_run_name(0.0), pass_run_name(1.0)]}) == 2  # the time comes first

    assert monitoring.info.run_name == "monitor digits v1" and monitoring.info.status == "FINISHED"
    assert monitoring.data.tags["model_version"] == "digits/1" and monitoring.data.tags["model_id"] == model_id
    assert monitoring.data.tags[MODEL_VERSION_URL_TAG] == "#/models/digits/versions/1"
    assert [m.model_id for m in client.get_run(monitoring.info.run_id).inputs.model_inputs] == [model_id]
    version = client.get_model_version("digits", "1")
    assert version.tags[MODEL_VERSION_TAG_PREFIX + "production"] == monitoring.info.run_id

    # Other traffic (the main job's demo stream) has a monitoring run of its own.
    demo = open_monitoring_run(client, model, traffic="demo-stream", experiment_id=experiment)
    assert demo != monitoring.info.run_id and client.get_run(demo).info.run_name == "monitor digits v1 demo-stream"
    assert open_monitoring_run(client, model, traffic="demo-stream", experiment_id=experiment) == demo


def test_the_monitored_batches_are_named_and_digested_by_their_capture_steps(tmp_path):
    capture = str(tmp_path / "captures")
    Path(capture).mkdir()
    batches = monitored_batches(capture, [12, 10, 11])
    assert batches.name == "capture steps 10-12"
    assert batches.digest == monitored_batches(capture, [10, 11, 12]).digest  # a repeated pass: the same dataset
    assert batches.digest != monitored_batches(capture, [10, 12]).digest != monitored_batches(capture + "-demo-stream", [10, 12]).digest
    assert monitored_batches(capture, [7]).name == "capture step 7"
    # Its source is the capture store, a folder or a bucket (nothing is read from either).
    assert batches.source.to_dict()["uri"] == capture
    on_s3 = monitored_batches("s3://team-bucket/trustops/captures/run", [3, 4])
    assert on_s3.source.to_dict()["uri"] == "s3://team-bucket/trustops/captures/run" and on_s3.to_dict()["source_type"] == "s3"
