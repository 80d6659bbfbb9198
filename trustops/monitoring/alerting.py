"""The alert stage: turn what the pass found into incidents, deliver them, then advance the watermark.

Monitors are evidence; an alert is about an *incident*.  Each batch is judged into at most one
condition per incident kind:

* ``suspected_adversarial`` (critical): inputs unusually unstable under feature squeezing,
  evidence natural drift does not produce (see :mod:`monitors.feature_squeezing`);
* ``distribution_shift`` (warning): any of the activation, predicted-class, confidence, input
  drift or accuracy tests below its page limit;
* ``data_quality`` (warning): the inputs broke the data's expectations (ranges, columns).

A monitor's alarm and its chart's signal are the same test, so they are one piece of evidence.
Every condition goes through :meth:`AlertManager.raise_or_clear`: an ongoing condition alerts
once and once more on recovery, and :meth:`AlertManager.flush` sends each channel one message
per model.  The conditions are derived again from the checked batches on every attempt at a
pass, never from chart state, so a pass repeated after a crash re-raises what it found.  The
watermark moves last, after the alerts are in the durable outbox: a crash anywhere before
repeats the pass, never skips a batch.

A repeat records nothing twice: the pass is named by the watermark it starts from, the alert
manager replays it from the conditions it started with (:meth:`AlertManager.begin_pass`), and
every raise or clear gets an id derived from the pass, the condition and the capture step, so
an alert the dead attempt already wrote to the outbox is not written again.

The state may be shared by workers (S3, see :mod:`trustops.monitoring.state_store`): the
watermark moves by compare-and-set, so of two passes from one watermark one wins and the other
stops with :class:`WatermarkMoved` (exit code 3) after writing its alerts; a pass that finds the
watermark already moved judges only the batches past it, under the name of the pass that will
start there, so nothing it found is lost and nothing is recorded twice.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from trustops.alerts import Alert, AlertManager, change_id, condition_key
from trustops.failpoints import failpoint
from trustops.monitoring.batch_check import ADVERSARIAL, DATA_QUALITY, SHIFT, VIEWS, view_title
from trustops.monitoring.records import BatchScores, ChartedPoints, CheckedBatches, CollectedCaptures, MonitorScore, PassReport
from trustops.monitoring.state_store import MonitorRunInProgress, StateConflict, StateStore, open_state
from trustops.monitoring.watermark import Watermark
from trustops.registry import RegisteredModel

SEVERITY = {ADVERSARIAL: "critical", SHIFT: "warning", DATA_QUALITY: "warning"}
LABEL = {ADVERSARIAL: "Suspected adversarial inputs", SHIFT: "Distribution shift", DATA_QUALITY: "Data quality problem"}


class WatermarkMoved(MonitorRunInProgress):
    """Another monitor run advanced the watermark while this one was working (its compare-and-set won).

    A skip like :class:`MonitorRunInProgress` (exit code 3), not a failure: this run's alerts
    are already in the outbox, and the other run's watermark covers its batches.
    """


@dataclass(frozen=True)
class Condition:
    monitor: str
    metric: str
    rule: str
    active: bool
    fields: dict[str, Any] = field(default_factory=dict)


def _served(batch: BatchScores) -> datetime | None:
    return None if batch.captured_at is None else datetime.fromtimestamp(batch.captured_at, timezone.utc)


def _how_far(score: MonitorScore) -> str:
    if score.p_value is None:
        return str(score.details.get("failed_expectations") or "expectations failed")
    ratio = score.page_level / max(score.p_value, 5e-324)
    limit = f"1/{round(1 / score.page_level):,}"
    return f"p = {score.p_value:.2g}, {ratio:,.0f}x below its page limit {limit}" if ratio >= 1.5 else \
        f"p = {score.p_value:.2g}, at its page limit {limit}"


def headline(kind: str, evidence: dict[str, MonitorScore], batch: BatchScores, model: RegisteredModel) -> str:
    """One plain sentence: what changed, on which model version, how far outside its limit, since when."""
    def strength(item: tuple[str, MonitorScore]) -> float:
        score = item[1]
        return math.inf if score.p_value is None else score.page_level / max(score.p_value, 5e-324)

    name, strongest = max(evidence.items(), key=strength)
    others = len(evidence) - 1
    also = f" (and {others} more test{'s' if others > 1 else ''})" if others else ""
    served = _served(batch)
    when = f" (served {served:%Y-%m-%d %H:%M} UTC)" if served else ""
    return (f"{LABEL[kind]} on {model.name} v{model.version}: {view_title(name, strongest.details)} {_how_far(strongest)}{also}, "
            f"since capture step {batch.step}{when}.")


def incidents(batch: BatchScores) -> dict[str, dict[str, MonitorScore]]:
    """Incident kind -> the monitors whose alarm on this batch is evidence of it (empty: not active)."""
    found: dict[str, dict[str, MonitorScore]] = {kind: {} for kind in (ADVERSARIAL, SHIFT, DATA_QUALITY)}
    for name, score in batch.scores.items():
        if score.alarm:
            found[VIEWS[name].evidence][name] = score
    return found


def conditions(checked: CheckedBatches, model: RegisteredModel) -> Iterator[Condition]:
    """Every condition the pass observed, in the order it observed them."""
    for name, reason in checked.fit_failures.items():
        yield Condition(name, "fit", "monitor_failure", True, dict(
            value=None, kind="monitor_failure", severity="warning", message=reason,
            headline=f"Monitor {name} could not start on {model.name} v{model.version}: {reason}"))
    for chunk in checked.unreadable:
        yield Condition("capture", "chunk", f"unreadable:{chunk.key}", True, dict(
            value=None, kind="data_quality", severity="warning",
            message=f"Skipped unreadable capture steps {chunk.steps}: {chunk.reason}",
            headline=f"Unreadable captures of {model.name} v{model.version}: steps {chunk.steps[0]}-{chunk.steps[-1]} "
                     "were skipped and quarantined."))
    for batch in checked.batches:
        for name, reason in batch.failures.items():
            yield Condition(name, "check", "monitor_failure", True, dict(
                value=None, kind="monitor_failure", severity="warning", message=reason, step=batch.step,
                headline=f"Monitor {name} failed on capture step {batch.step} of {model.name} v{model.version}: {reason}"))
        for kind, evidence in incidents(batch).items():
            active = bool(evidence)
            strongest = min(evidence.values(), key=lambda s: s.p_value if s.p_value is not None else 0.0) if active else None
            details: dict[str, Any] = {"false_page_budget": checked.false_page_budget}
            for name, score in batch.scores.items():
                if VIEWS[name].evidence == kind:
                    details[f"{name}.p_value"] = score.p_value
                    details[f"{name}.page_level"] = score.page_level
                    details[f"{name}.alarm"] = score.alarm
                    if score.details.get("layers"):  # a combined test names the layers it combined
                        details[f"{name}.layers"] = score.details["layers"]
            yield Condition("incident", kind, "p<=page_level", active, dict(
                value=None if strongest is None else strongest.p_value,
                kind=kind, severity=SEVERITY[kind], step=batch.step, first_step=batch.step,
                captured_at=_served(batch), details=details,
                headline=headline(kind, evidence, batch, model) if active else LABEL[kind],  # a recovery words its own
                message=", ".join(f"{name} p={score.p_value}" for name, score in evidence.items())))


def send_alerts(
    collected: CollectedCaptures,
    checked: CheckedBatches,
    charted: ChartedPoints,
    *,
    model_info: RegisteredModel,
    state: Path | str | StateStore,
    alerts: AlertManager,
    run_id: str | None = None,
    run_url: str | None = None,
) -> PassReport:
    """Raise or clear each observed condition, deliver what is pending, and move the watermark past the pass."""
    report = PassReport(
        steps=[batch.step for batch in checked.batches],
        metrics=[{"step": batch.step, **batch.metric_row()} for batch in checked.batches],
        unreadable=checked.unreadable,
        mlflow_run_id=run_id,
        monitor_failures={**checked.fit_failures, **{k: v for b in checked.batches for k, v in b.failures.items()}},
    )
    pass_token, judged = _judged_part(collected, checked, open_state(state))
    alerts.begin_pass(pass_token)
    for condition in conditions(judged, model_info):
        key = condition_key(condition.monitor, condition.metric, condition.rule, model_info.name)
        alert_id = change_id(pass_token, key, condition.active, condition.fields.get("step"))
        summary = alerts.raise_or_clear(key, condition.active, lambda c=condition, i=alert_id: Alert(
            monitor=c.monitor, metric=c.metric, rule=c.rule, model_name=model_info.name,
            model_version=str(model_info.version), mlflow_run_id=run_id, mlflow_run_url=run_url, id=i, **c.fields,
        ))
        report.alerts.extend(alert.to_dict() for alert in summary.raised)
    report.pending_alerts = len(alerts.flush().pending)
    failpoint("monitor.alert")  # the outbox and the condition state hold the pass; the watermark has not moved
    report.watermark = advance_watermark(collected, checked, state=state)
    failpoint("monitor.watermark")
    alerts.end_pass()
    return report


def _judged_part(collected: CollectedCaptures, checked: CheckedBatches, store: StateStore) -> tuple[str, CheckedBatches]:
    """The pass's name and the batches its alerts judge: all of them, unless another pass moved the watermark since.

    Then this pass will lose the watermark's compare-and-set, and the batches the moved
    watermark covers were judged by the pass that moved it.  Only the later ones are judged
    here, as the pass that starts from the moved watermark will judge them and under its name,
    so their alerts are in the outbox now (nothing lost) and that pass records none twice.
    """
    watermark = Watermark.load(store, collected.capture_uri)
    if watermark.last_step == collected.after:
        return json.dumps({**asdict(watermark), "after": collected.after}, sort_keys=True), checked
    done = watermark.last_step
    later = checked.model_copy(update={
        "batches": [batch for batch in checked.batches if done is None or batch.step > done],
        "unreadable": [chunk for chunk in checked.unreadable if chunk.key not in watermark.quarantined],
    })
    return json.dumps({**asdict(watermark), "after": done}, sort_keys=True), later


def advance_watermark(collected: CollectedCaptures, checked: CheckedBatches, *, state: Path | str | StateStore) -> int | None:
    """Move the watermark past the checked batches and quarantine the unreadable chunks (compare-and-set).

    The write succeeds only if the watermark is still the version read here, which still
    starts where this pass started: of two passes that raced from the same watermark, on one
    machine or on two sharing S3 state, one write wins and the other raises :class:`WatermarkMoved`.
    """
    store = open_state(state)
    watermark, version = Watermark.fetch(store, collected.capture_uri)
    if watermark.last_step != collected.after:
        raise _moved(collected.after, watermark.last_step)
    if not checked.batches and not checked.unreadable:
        return watermark.last_step
    steps = [batch.step for batch in checked.batches]
    if steps:
        watermark.last_step = max(steps + ([] if watermark.last_step is None else [watermark.last_step]))
    watermark.quarantined.extend(chunk.key for chunk in checked.unreadable if chunk.key not in watermark.quarantined)
    try:
        watermark.save(store, expect=version)
    except StateConflict:
        raise _moved(collected.after, Watermark.load(store, collected.capture_uri).last_step) from None
    return watermark.last_step


def _moved(after: int | None, now: int | None) -> WatermarkMoved:
    return WatermarkMoved(
        f"The monitor watermark moved from {after} to {now} during this run: another monitor run processed these "
        "captures (another monitor holds it). This run's alerts are in the outbox; its watermark is not saved."
    )
