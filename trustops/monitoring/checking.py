"""The check stage: every enabled monitor on every collected batch, plus the Phase I baselines new charts need."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from trustops.monitoring.charting import ChartBook
from trustops.monitoring.checks import VIEWS, check_batch, fit_monitors, phase_one_scores
from trustops.monitoring.collect import read_collected
from trustops.monitoring.records import BatchScores, CheckedBatches, CollectedCaptures, HtmlReport, MonitorScore, UnreadableChunk
from trustops.monitoring.reference import load_reference
from trustops.registry import RegisteredModel

PHASE_ONE_BATCHES = 20


def check_collected(
    model: nn.Module, model_info: RegisteredModel, collected: CollectedCaptures, *, monitors: list[str], state: Path
) -> CheckedBatches:
    """Score each collected batch with each monitor; one failing monitor never stops the others."""
    checked = CheckedBatches()
    if not collected.chunks:
        return checked
    # Monitors learn from one half of the reference; the charts' Phase I limits come from
    # clean batches of the other half, so they see the sampling noise real batches have.
    reference, held_out = load_reference(model, model_info).halves(seed=0)
    fitted, checked.fit_failures = fit_monitors(monitors, reference)
    for item in read_collected(collected):
        if isinstance(item, UnreadableChunk):
            checked.unreadable.append(item)
            continue
        check = check_batch(fitted, item)
        batch = BatchScores(step=item.step, batch_size=len(item.tensors["penultimate"]), failures=check.failures)
        for name, result in check.results.items():
            view = VIEWS[name]
            batch.scores[name] = MonitorScore(
                score=float(result.score), threshold=float(result.threshold), alarm=bool(result.alarm),
                chart_value=float(view.chart_value(result)) if view.charted else None, alerts_on_alarm=view.alerts_on_alarm,
            )
        if "evidently_drift" in check.results:  # now: the Phase I re-checks below would replace its report
            checked.html_reports["evidently_drift"] = HtmlReport(step=item.step, html=fitted["evidently_drift"].report_html())
        checked.batches.append(batch)

    existing = ChartBook(state / "charts").existing()
    for name, monitor in fitted.items():
        view = VIEWS[name]
        if not view.charted or name in existing or not checked.batches:
            continue
        if view.in_control is not None:
            checked.in_control[name] = view.in_control
        else:
            checked.baselines[name] = phase_one_scores(
                monitor, view, held_out, batch_size=checked.batches[0].batch_size, n_batches=PHASE_ONE_BATCHES, seed=0
            ).tolist()
    return checked
