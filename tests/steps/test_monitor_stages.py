"""The monitor pipeline's stages on hand-made records: no model, no stack.

What a crash in the middle of a pass must not do is the focus: chart a batch twice, move the
watermark past a batch, or send an ongoing condition twice.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trustops.alerts import AlertManager
from trustops.monitoring.alerting import WatermarkMoved, advance_watermark, send_alerts
from trustops.monitoring.charting import ChartBook, chart_batches
from trustops.monitoring.records import (
    BatchScores,
    CheckedBatches,
    CollectedCaptures,
    ChunkRef,
    MonitorScore,
    UnreadableChunk,
)
from trustops.monitoring.watermark import Watermark
from trustops.registry import RegisteredModel
from trustops.settings import TrainSettings

MODEL = RegisteredModel(name="digits", version=3, run_id="r", model_uri="models:/digits/3", tags={"capture_uri": "/captures"},
                        training=TrainSettings())


def batch(step: int, value: float, *, alarm: bool = False) -> BatchScores:
    return BatchScores(step=step, batch_size=100, scores={
        "mean_confidence": MonitorScore(score=value, threshold=1.0, alarm=alarm, chart_value=value),
        "input_expectations": MonitorScore(score=0.0, threshold=0.5, alarm=False),  # not charted
    })


def checked(*batches: BatchScores, **extra) -> CheckedBatches:
    # Phase I: mean 0.9, sigma 0.01 -> limits 0.87 .. 0.93.
    return CheckedBatches(batches=list(batches), in_control={"mean_confidence": (0.9, 0.01)}, **extra)


def collected(after: int | None, *steps: int) -> CollectedCaptures:
    return CollectedCaptures(capture_uri="/captures", after=after, chunks=[ChunkRef(key=f"c{s}", steps=[s]) for s in steps])


def test_a_chart_gets_one_point_per_charted_batch_and_signals_outside_its_limits(tmp_path: Path) -> None:
    charted = chart_batches(checked(batch(1, 0.9), batch(2, 0.5)), state=tmp_path, title_suffix="digits/3")
    assert [(p.step, p.chart, p.signal) for p in charted.points] == [(1, "mean_confidence", False), (2, "mean_confidence", True)]
    assert charted.points[1].lcl == pytest.approx(0.87) and charted.points[1].ucl == pytest.approx(0.93)
    assert [Path(image).name for image in charted.images] == ["mean_confidence.png"]
    assert ChartBook(tmp_path / "charts").existing() == {"mean_confidence"}


def test_a_repeated_pass_does_not_chart_the_same_batch_twice(tmp_path: Path) -> None:
    first = checked(batch(1, 0.9), batch(2, 0.91))
    chart_batches(first, state=tmp_path, title_suffix="m")
    again = chart_batches(checked(batch(2, 0.91), batch(3, 0.92)), state=tmp_path, title_suffix="m")  # step 2 again
    assert [p.step for p in again.points] == [3]
    saved = json.loads((tmp_path / "charts" / "mean_confidence.json").read_text())
    assert saved["last_step"] == 3 and len(saved["chart"]["history"]) == 3


def test_the_watermark_moves_past_checked_batches_and_quarantines_unreadable_chunks(tmp_path: Path) -> None:
    bad = UnreadableChunk(key="c5", steps=[5], reason="truncated")
    mark = advance_watermark(collected(None, 4, 5, 6), checked(batch(4, 0.9), batch(6, 0.9), unreadable=[bad]), state=tmp_path)
    saved = Watermark.load(tmp_path / "watermark.json", "/captures")
    assert mark == saved.last_step == 6 and saved.quarantined == ["c5"]


def test_a_watermark_moved_by_another_run_is_refused_and_left_alone(tmp_path: Path) -> None:
    Watermark(capture_uri="/captures", last_step=9).save(tmp_path / "watermark.json")
    with pytest.raises(WatermarkMoved, match="another monitor run"):
        advance_watermark(collected(4, 5), checked(batch(5, 0.9)), state=tmp_path)
    assert Watermark.load(tmp_path / "watermark.json", "/captures").last_step == 9


def test_an_ongoing_condition_alerts_once_then_once_on_recovery(tmp_path: Path) -> None:
    alerts = AlertManager(tmp_path / "alerts")
    kinds = []
    after = None
    for step, value in enumerate([0.5, 0.5, 0.9], start=1):  # out, still out, back in
        found = checked(batch(step, value, alarm=value < 0.8))
        report = send_alerts(collected(after, step), found, chart_batches(found, state=tmp_path, title_suffix="m"),
                             model_info=MODEL, state=tmp_path, alerts=alerts, run_id=f"run{step}")
        kinds.append(sorted((a["monitor"], a["kind"]) for a in report.alerts))
        after = report.watermark
    assert kinds == [
        [("chart", "out_of_control"), ("mean_confidence", "out_of_control")],
        [],
        [("chart", "recovered"), ("mean_confidence", "recovered")],
    ]
    assert report.metrics[0]["mean_confidence.chart_signal"] == 0.0 and report.mlflow_run_id == "run3"


def test_failures_and_unreadable_chunks_are_alerted_with_their_kind(tmp_path: Path) -> None:
    found = checked(
        BatchScores(step=1, batch_size=10, failures={"prediction_shift": "ValueError: empty"}),
        fit_failures={"evidently_drift": "ImportError: no evidently"},
        unreadable=[UnreadableChunk(key="c0", steps=[0], reason="checksum mismatch")],
    )
    report = send_alerts(collected(None, 0, 1), found, chart_batches(found, state=tmp_path, title_suffix="m"),
                         model_info=MODEL, state=tmp_path, alerts=AlertManager(tmp_path / "alerts"))
    assert [(a["monitor"], a["kind"]) for a in report.alerts] == [
        ("evidently_drift", "monitor_failure"), ("capture", "data_quality"), ("prediction_shift", "monitor_failure")]
    assert report.monitor_failures == {"evidently_drift": "ImportError: no evidently", "prediction_shift": "ValueError: empty"}
    assert "checksum mismatch" in report.alerts[1]["message"]


def test_a_pass_with_nothing_new_is_a_no_op_that_still_delivers_pending_alerts(tmp_path: Path) -> None:
    report = send_alerts(collected(None), CheckedBatches(), chart_batches(CheckedBatches(), state=tmp_path, title_suffix="m"),
                         model_info=MODEL, state=tmp_path, alerts=AlertManager(tmp_path / "alerts"))
    assert report.no_op and report.watermark is None and not (tmp_path / "watermark.json").exists()


def test_a_monitor_that_alerts_through_its_chart_only_records_its_alarm_without_alerting(tmp_path: Path) -> None:
    quiet = BatchScores(step=1, batch_size=100, scores={
        "prediction_shift": MonitorScore(score=2.0, threshold=1.3, alarm=True, chart_value=2.0, alerts_on_alarm=False)})
    found = CheckedBatches(batches=[quiet], in_control={"prediction_shift": (1.0, 1.0)})  # 2.0 is inside 1 ± 3
    report = send_alerts(collected(None, 1), found, chart_batches(found, state=tmp_path, title_suffix="m"),
                         model_info=MODEL, state=tmp_path, alerts=AlertManager(tmp_path / "alerts"))
    assert report.alerts == [] and report.metrics[0]["prediction_shift.alarm"] == 1.0
