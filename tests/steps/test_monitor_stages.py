"""The monitor pipeline's stages on hand-made records: no model, no stack.

What a crash in the middle of a pass must not do is the focus: chart a batch twice, move the
watermark past a batch, or send an ongoing condition twice.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

import pytest

from trustops.alerts import AlertManager
from trustops.monitoring.alerting import WatermarkMoved, advance_watermark, send_alerts
from trustops.monitoring.charting import chart_batches
from trustops.monitoring.records import (
    BatchScores,
    CheckedBatches,
    CollectedCaptures,
    ChunkRef,
    MonitorScore,
    UnreadableChunk,
)
from trustops.monitoring.watermark import DamagedStateFile, Watermark
from trustops.registry import RegisteredModel
from trustops.settings import TrainSettings

MODEL = RegisteredModel(name="digits", version=3, run_id="r", model_uri="models:/digits/3", tags={"capture_uri": "/captures"},
                        training=TrainSettings())


LEVEL = 1 / 1000  # the page level of every statistical monitor in these records


def score(p_value: float | None, *, level: float | None = LEVEL) -> MonitorScore:
    alarm = p_value is not None and level is not None and p_value <= level
    return MonitorScore(score=0.0 if p_value is None else -math.log10(p_value), threshold=3.0, alarm=alarm,
                        p_value=p_value, page_level=level)


def batch(step: int, confidence_p: float, *, squeezing_p: float = 0.5, captured_at: float | None = None) -> BatchScores:
    return BatchScores(step=step, batch_size=100, captured_at=captured_at, scores={
        "mean_confidence": score(confidence_p),
        "feature_squeezing": score(squeezing_p),
        "input_expectations": score(None, level=None),  # a contract check: not charted
    })


def checked(*batches: BatchScores, **extra) -> CheckedBatches:
    return CheckedBatches(batches=list(batches), page_levels={"mean_confidence": LEVEL, "feature_squeezing": LEVEL},
                          false_page_budget=500.0, **extra)


def collected(after: int | None, *steps: int) -> CollectedCaptures:
    return CollectedCaptures(capture_uri="/captures", after=after, chunks=[ChunkRef(key=f"c{s}", steps=[s]) for s in steps])


def test_a_chart_gets_one_point_per_batch_and_signals_at_its_probability_limit(tmp_path: Path) -> None:
    charted = chart_batches(checked(batch(1, 0.3), batch(2, LEVEL), batch(3, 2 * LEVEL)), state=tmp_path, title_suffix="digits/3")
    confidence = [p for p in charted.points if p.chart == "mean_confidence"]
    assert [(p.step, p.signal) for p in confidence] == [(1, False), (2, True), (3, False)]  # p <= level signals
    assert confidence[1].value == pytest.approx(3.0) and confidence[1].ucl == pytest.approx(3.0)
    assert [Path(image).name for image in charted.images] == ["mean_confidence.png"]  # drawn where it signalled
    assert {p.chart for p in charted.points} == {"mean_confidence", "feature_squeezing"}


def test_a_repeated_pass_does_not_chart_the_same_batch_twice(tmp_path: Path) -> None:
    chart_batches(checked(batch(1, 0.5), batch(2, 0.4)), state=tmp_path, title_suffix="m")
    again = chart_batches(checked(batch(2, 0.4), batch(3, 0.3)), state=tmp_path, title_suffix="m")  # step 2 again
    assert [p.step for p in again.points if p.chart == "mean_confidence"] == [3]
    saved = json.loads((tmp_path / "charts" / "mean_confidence.json").read_text())
    assert saved["last_step"] == 3 and [point["step"] for point in saved["points"]] == [1, 2, 3]


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


def run_pass(tmp_path: Path, alerts: AlertManager, after: int | None, found: CheckedBatches, run_id: str = "run"):
    return send_alerts(collected(after, *[b.step for b in found.batches]), found,
                       chart_batches(found, state=tmp_path, title_suffix="m"),
                       model_info=MODEL, state=tmp_path, alerts=alerts, run_id=run_id)


def test_an_ongoing_incident_alerts_once_then_once_on_recovery(tmp_path: Path) -> None:
    alerts = AlertManager(tmp_path / "alerts")
    kinds, after = [], None
    for step, p_value in enumerate([1e-6, 1e-5, 0.4], start=1):  # out, still out, back in
        report = run_pass(tmp_path, alerts, after, checked(batch(step, p_value)), run_id=f"run{step}")
        kinds.append([(a["metric"], a["kind"]) for a in report.alerts])
        after = report.watermark
    assert kinds == [[("distribution_shift", "distribution_shift")], [], [("distribution_shift", "recovered")]]
    assert report.metrics[0]["mean_confidence.chart_signal"] == 0.0 and report.mlflow_run_id == "run3"


def test_the_alert_says_what_changed_where_how_far_and_since_when(tmp_path: Path) -> None:
    served = datetime(2026, 12, 1, 3, 4, tzinfo=timezone.utc).timestamp()
    report = run_pass(tmp_path, AlertManager(tmp_path / "alerts"), None, checked(batch(41, 2e-6, captured_at=served)))
    (alert,) = report.alerts
    assert alert["headline"] == ("Distribution shift on digits v3: mean confidence drop p = 2e-06, 500x below its page "
                                 "limit 1/1,000, since capture step 41 (served 2026-12-01 03:04 UTC).")
    assert alert["step"] == alert["first_step"] == 41 and alert["severity"] == "warning"
    assert alert["details"]["mean_confidence.p_value"] == 2e-6 and alert["details"]["false_page_budget"] == 500.0


def test_squeezing_evidence_pages_as_suspected_adversarial_and_drift_alone_never_does(tmp_path: Path) -> None:
    attacked = run_pass(tmp_path / "a", AlertManager(tmp_path / "a" / "alerts"), None, checked(batch(1, 1e-6, squeezing_p=1e-9)))
    assert {(a["kind"], a["severity"]) for a in attacked.alerts} == {
        ("suspected_adversarial", "critical"), ("distribution_shift", "warning")}
    drifted = run_pass(tmp_path / "d", AlertManager(tmp_path / "d" / "alerts"), None, checked(batch(1, 1e-9, squeezing_p=0.2)))
    assert [a["kind"] for a in drifted.alerts] == ["distribution_shift"]


def test_a_pass_repeated_after_a_crash_raises_its_conditions_again(tmp_path: Path) -> None:
    """A crash after the chart stage saved its points but before the alerts: the re-run still alerts."""
    found = checked(batch(5, 1e-7))
    chart_batches(found, state=tmp_path, title_suffix="m")  # the first attempt got this far
    report = run_pass(tmp_path, AlertManager(tmp_path / "alerts"), None, found)
    assert [a["kind"] for a in report.alerts] == ["distribution_shift"] and report.watermark == 5


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


@pytest.mark.parametrize("damage", ["{not json", "[1, 2]", '{"capture_uri": "/captures", "last_step": 3, "unknown": 1}'])
def test_a_damaged_watermark_is_named_with_its_repair_and_left_untouched(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "watermark.json"
    path.write_text(damage)
    with pytest.raises(DamagedStateFile, match="watermark.json is damaged") as raised:
        advance_watermark(collected(None, 1), checked(batch(1, 0.5)), state=tmp_path)
    assert "mv " in str(raised.value) and path.read_text() == damage  # the repair, and nothing overwritten


def test_a_damaged_chart_state_is_named_and_left_untouched(tmp_path: Path) -> None:
    chart = tmp_path / "charts" / "mean_confidence.json"
    chart.parent.mkdir()
    chart.write_text('{"last_step": 2, "points": [')
    with pytest.raises(DamagedStateFile, match="mean_confidence.json is damaged"):
        chart_batches(checked(batch(3, 0.5)), state=tmp_path, title_suffix="m")
    assert chart.read_text() == '{"last_step": 2, "points": ['
