"""The check stage: every enabled monitor on every collected batch, at its share of the false-page budget."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from trustops.failpoints import failpoint
from trustops.monitoring.batch_check import (
    SHIFT,
    VIEWS,
    Traffic,
    combine_overrides,
    fit_monitors,
    input_table,
)
from trustops.monitoring.budget import COMBINED_MONITOR, STATISTICAL, PassOptions, page_levels, permutation_overrides
from trustops.monitoring.collect import read_collected
from trustops.monitoring.evidently_workspace import PassSnapshot, pass_timestamp, record_pass
from trustops.monitoring.parallel import check_stream
from trustops.monitoring.records import BatchScores, CheckedBatches, CollectedCaptures, HtmlReport, MonitorScore, UnreadableChunk
from trustops.monitoring.reference import load_reference
from trustops.progress import progress
from trustops.registry import RegisteredModel

# Evidently's report costs seconds per thousand rows: a pass reports on its most recent rows.
DRIFT_REPORT_ROWS = 2_000


def check_collected(
    model: nn.Module | None,  # None only when nothing was collected
    model_info: RegisteredModel,
    collected: CollectedCaptures,
    *,
    options: PassOptions,
) -> CheckedBatches:
    """Score each collected batch with each monitor; one failing monitor never stops the others.

    ``drift_report``: Evidently's drift report over the pass's most recent rows, when the pass
    found a distribution shift (``on_shift``), on every pass with batches (``always``: the
    workspace's dashboard then draws every pass), or never.  The report is the pass's HTML
    report and its snapshot in the project's Evidently workspace (:mod:`.evidently_workspace`).

    With ``options.combine_layers`` each MMD score names its layers in ``details["layers"]``.
    """
    failpoint("monitor.collect")  # collected (nothing written by collecting), nothing checked yet
    monitors = list(options.monitors)
    levels = page_levels(monitors, options.false_page_budget)
    checked = CheckedBatches(page_levels=levels, false_page_budget=options.false_page_budget)
    if collected.chunks:
        with _one_thread():
            _check(model, model_info, collected, checked, monitors=monitors,
                   overrides=permutation_overrides(monitors, options.permutations), drift_report=options.drift_report,
                   combine_layers=tuple(options.combine_layers))
    failpoint("monitor.check")
    return checked


@contextlib.contextmanager
def _one_thread():
    """Per-batch tensors are small (a few hundred rows): torch's thread pool costs more than it
    gives there, 10-100x on a busy 2-core machine, so the check stage runs on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _check(model, model_info, collected, checked, *, monitors, overrides, drift_report, combine_layers) -> None:
    levels = checked.page_levels
    combine_layers = combine_layers if COMBINED_MONITOR in monitors else ()
    reference = load_reference(model, model_info, squeezing="feature_squeezing" in monitors, layers=combine_layers)
    overrides = {**(overrides or {})}
    for name, options in combine_overrides(combine_layers).items():
        overrides[name] = {**overrides.get(name, {}), **options}
    fitted, checked.fit_failures = fit_monitors(monitors, reference, levels, overrides)
    combination = {"layers": ",".join(combine_layers)} if combine_layers else {}
    recent_inputs: list[torch.Tensor] = []
    shifted = False
    traffic_stream = (
        item if isinstance(item, UnreadableChunk)
        else Traffic(step=item, model=model, value_range=reference.value_range, columns=reference.columns,
                     combine_layers=combine_layers)
        for item in read_collected(collected)
    )
    checks = check_stream(fitted, traffic_stream, batches=len(collected.new_steps))
    for traffic, check in progress(checks, desc="monitor batches", total=len(collected.new_steps), unit="batch"):
        if isinstance(traffic, UnreadableChunk):
            checked.unreadable.append(traffic)
            continue
        item = traffic.step
        batch = BatchScores(step=item.step, batch_size=len(item.tensors["penultimate"]), failures=check.failures,
                            captured_at=item.meta.get("captured_at"))
        for name, result in check.results.items():
            p_value = result.details.get("p_value") if name in STATISTICAL else None
            batch.scores[name] = MonitorScore(
                score=float(result.score), threshold=float(result.threshold), alarm=bool(result.alarm),
                p_value=None if p_value is None else float(p_value), page_level=levels.get(name),
                details={**{k: v for k, v in result.details.items() if isinstance(v, (int, float, str, bool)) or v is None},
                         **(combination if name == COMBINED_MONITOR else {})},
            )
            shifted |= bool(result.alarm) and VIEWS[name].evidence == SHIFT
        checked.batches.append(batch)
        if "evidently_drift" in fitted:
            recent_inputs.append(traffic.inputs)
            while sum(len(t) for t in recent_inputs[1:]) >= DRIFT_REPORT_ROWS:
                recent_inputs.pop(0)
    if recent_inputs and (drift_report == "always" or (drift_report == "on_shift" and shifted)):
        _report_drift(fitted["evidently_drift"], input_table(torch.cat(recent_inputs)[-DRIFT_REPORT_ROWS:], reference.columns),
                      model_info, checked)


def _report_drift(monitor, table, model_info, checked) -> None:
    """One Evidently Report over the pass's most recent rows: the pass's HTML report and its snapshot in
    the project's Evidently workspace (the trend over passes).  Writing the workspace never fails the pass."""
    first, last = checked.batches[0], checked.batches[-1]
    key = PassSnapshot(model_info.name, str(model_info.version), first.step, last.step)
    run = monitor.report_run(table, timestamp=pass_timestamp(last.captured_at), tags=key.tags, metadata=key.metadata,
                             name=key.name)
    checked.html_reports["evidently_drift"] = HtmlReport(step=last.step, html=monitor.report_html())
    record_pass(run, key)
