"""The alert stage: turn what the pass found into alert conditions, deliver them, then advance the watermark.

Every condition goes through :meth:`AlertManager.raise_or_clear`, so an ongoing condition
alerts once and once more on recovery.  The watermark moves last, after the alerts are in the
durable outbox and the charts are saved: a crash anywhere before repeats the pass, never skips
a batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustops.alerts import Alert, AlertManager, Limits, condition_key
from trustops.errors import TrustopsError
from trustops.monitoring.records import ChartedPoints, CheckedBatches, CollectedCaptures, PassReport
from trustops.monitoring.watermark import Watermark
from trustops.registry import RegisteredModel


class WatermarkMoved(TrustopsError, RuntimeError):
    """Another monitor run advanced the watermark while this one was working."""


@dataclass(frozen=True)
class Condition:
    monitor: str
    metric: str
    rule: str
    active: bool
    fields: dict[str, Any] = field(default_factory=dict)


def conditions(checked: CheckedBatches, charted: ChartedPoints) -> Iterator[Condition]:
    """Every condition the pass observed, in the order it observed them."""
    for name, reason in checked.fit_failures.items():
        yield Condition(name, "fit", "monitor_failure", True,
                        dict(value=None, kind="monitor_failure", severity="warning", message=reason))
    for chunk in checked.unreadable:
        yield Condition("capture", "chunk", f"unreadable:{chunk.key}", True, dict(
            value=None, kind="data_quality", severity="warning",
            message=f"Skipped unreadable capture steps {chunk.steps}: {chunk.reason}"))
    points_by_step: dict[int, list] = {}
    for point in charted.points:
        points_by_step.setdefault(point.step, []).append(point)
    for batch in checked.batches:
        for name, reason in batch.failures.items():
            yield Condition(name, "check", "monitor_failure", True,
                            dict(value=None, kind="monitor_failure", severity="warning", message=reason))
        for name, score in batch.scores.items():
            if not score.alerts_on_alarm:
                continue
            kind = "adversarial" if name == "mmd_adversarial" else "out_of_control"
            yield Condition(name, "score", f"{name}>threshold", score.alarm, dict(
                value=score.score, kind=kind, severity="critical" if kind == "adversarial" else "warning",
                limits=Limits(upper=score.threshold), message=f"{name} alarm on capture step {batch.step}"))
        for point in points_by_step.get(batch.step, []):
            yield Condition("chart", point.chart, "western_electric", point.signal, dict(
                value=point.value, kind="out_of_control", severity="warning", limits=Limits(lower=point.lcl, upper=point.ucl),
                message=f"{point.chart} out of control on capture step {batch.step} ({', '.join(point.rules) or 'limits'})"))


def send_alerts(
    collected: CollectedCaptures,
    checked: CheckedBatches,
    charted: ChartedPoints,
    *,
    model_info: RegisteredModel,
    state: Path,
    alerts: AlertManager,
    run_id: str | None = None,
    run_url: str | None = None,
) -> PassReport:
    """Raise or clear each observed condition, deliver what is pending, and move the watermark past the pass."""
    report = PassReport(
        steps=[batch.step for batch in checked.batches],
        metrics=[{"step": batch.step, **batch.metric_row(), **_chart_signals(charted, batch.step)} for batch in checked.batches],
        unreadable=checked.unreadable,
        mlflow_run_id=run_id,
        monitor_failures={**checked.fit_failures, **{k: v for b in checked.batches for k, v in b.failures.items()}},
    )
    for condition in conditions(checked, charted):
        key = condition_key(condition.monitor, condition.metric, condition.rule, model_info.name)
        summary = alerts.raise_or_clear(key, condition.active, lambda c=condition: Alert(
            monitor=c.monitor, metric=c.metric, rule=c.rule, model_name=model_info.name,
            model_version=str(model_info.version), mlflow_run_id=run_id, mlflow_run_url=run_url, **c.fields,
        ))
        report.alerts.extend(alert.to_dict() for alert in summary.raised)
    report.pending_alerts = len(alerts.flush().pending)
    report.watermark = advance_watermark(collected, checked, state=state)
    return report


def advance_watermark(collected: CollectedCaptures, checked: CheckedBatches, *, state: Path) -> int | None:
    """Move the watermark past the checked batches and quarantine the unreadable chunks (compare-and-set)."""
    path = state / "watermark.json"
    watermark = Watermark.load(path, collected.capture_uri)
    if watermark.last_step != collected.after:
        raise WatermarkMoved(
            f"The monitor watermark moved from {collected.after} to {watermark.last_step} during this run: another "
            "monitor run processed these captures. This run's alerts are in the outbox; its watermark is not saved."
        )
    if not checked.batches and not checked.unreadable:
        return watermark.last_step
    steps = [batch.step for batch in checked.batches]
    if steps:
        watermark.last_step = max(steps + ([] if watermark.last_step is None else [watermark.last_step]))
    watermark.quarantined.extend(chunk.key for chunk in checked.unreadable if chunk.key not in watermark.quarantined)
    watermark.save(path)
    return watermark.last_step


def _chart_signals(charted: ChartedPoints, step: int) -> dict[str, float]:
    return {f"{point.chart}.chart_signal": float(point.signal) for point in charted.points if point.step == step}
