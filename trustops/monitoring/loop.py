"""One monitor pass: collect -> check -> chart -> alert, then advance the watermark.

Everything a pass decides is durable before the watermark moves: chart states are saved and
alerts are in the outbox, so a crash at any point repeats work rather than losing it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from monitors.control_charts import IndividualsChart, plot_chart
from trustops.alerts import Alert, AlertManager, Limits, condition_key
from trustops.capture import CapturedStep, open_capture
from trustops.monitoring.checks import VIEWS, check_batch, fit_monitors, phase_one_scores
from trustops.monitoring.collect import UnreadableChunk, new_steps
from trustops.monitoring.reference import load_reference
from trustops.monitoring.watermark import Watermark, exclusive_run
from trustops.registry import RegisteredModel

logger = logging.getLogger(__name__)

DEFAULT_MONITORS = ["mmd_adversarial", "prediction_shift", "mean_confidence", "evidently_drift", "input_expectations"]


@dataclass
class PassReport:
    steps: list[int] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)  # one row per batch
    alerts: list[Alert] = field(default_factory=list)
    unreadable: list[UnreadableChunk] = field(default_factory=list)
    monitor_failures: dict[str, str] = field(default_factory=dict)
    chart_paths: list[Path] = field(default_factory=list)
    pending_alerts: int = 0
    html_reports: dict[str, tuple[int, str]] = field(default_factory=dict)  # monitor -> (step, HTML) of the last batch

    @property
    def no_op(self) -> bool:
        return not self.steps and not self.unreadable


class ChartBook:
    """One individuals chart per charted monitor score, persisted between passes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.charts: dict[str, IndividualsChart] = {}

    def get(self, name: str, view, baseline) -> IndividualsChart:
        if name not in self.charts:
            path = self.folder / f"{name}.json"
            if path.is_file():
                self.charts[name] = IndividualsChart.from_state_dict(json.loads(path.read_text()))
            elif view.in_control is not None:
                mean, sigma = view.in_control
                self.charts[name] = IndividualsChart(rules=(1,), mean=mean, sigma=sigma)
            else:
                self.charts[name] = IndividualsChart(rules=(1, 2, 3, 4)).fit(baseline())
        return self.charts[name]

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, chart in self.charts.items():
            partial = self.folder / f"{name}.json.partial"
            partial.write_text(json.dumps(chart.state_dict()))
            partial.replace(self.folder / f"{name}.json")


def monitor_pass(
    model: nn.Module,
    model_info: RegisteredModel,
    *,
    state: Path,
    alerts: AlertManager,
    monitors: list[str] | None = None,
    run_url: str | None = None,
    run_id: str | None = None,
) -> PassReport:
    """Monitor every PREDICT batch captured since the last pass; ``state`` holds watermark and charts."""
    names = monitors or DEFAULT_MONITORS
    report = PassReport()
    model_label = f"{model_info.name}/{model_info.version}"
    watermark_path = state / "watermark.json"
    with exclusive_run(state / "run.lock"):
        watermark = Watermark.load(watermark_path, model_info.capture_uri)
        reader = open_capture(model_info.capture_uri)
        items = list(new_steps(reader, after=watermark.last_step, quarantined=set(watermark.quarantined)))
        if not items:
            alerts.flush()
            return report
        # Monitors learn from one half of the reference; the charts' Phase I limits come from
        # clean batches of the other half, so they see the sampling noise real batches have.
        reference, held_out = load_reference(model, model_info).halves(seed=0)
        fitted, failures = fit_monitors(names, reference)
        report.monitor_failures.update(failures)
        charts = ChartBook(state / "charts")

        def alert(monitor: str, metric: str, rule: str, active: bool, **fields: Any) -> None:
            key = condition_key(monitor, metric, rule, model_info.name)
            summary = alerts.raise_or_clear(key, active, lambda: Alert(
                monitor=monitor, metric=metric, rule=rule, model_name=model_info.name,
                model_version=str(model_info.version), mlflow_run_id=run_id, mlflow_run_url=run_url, **fields,
            ))
            report.alerts.extend(a for a in summary.raised)

        for name, reason in failures.items():
            alert(name, "fit", "monitor_failure", True, value=None, kind="monitor_failure", severity="warning", message=reason)
        for item in items:
            if isinstance(item, UnreadableChunk):
                report.unreadable.append(item)
                alert("capture", "chunk", f"unreadable:{item.key}", True, value=None, kind="data_quality",
                      severity="warning", message=f"Skipped unreadable capture steps {item.steps}: {item.reason}")
                watermark.quarantined.append(item.key)
                continue
            _check_one(item, fitted, held_out, charts, report, alert)
            watermark.last_step = item.step
        for name, chart in charts.charts.items():
            report.chart_paths.append(plot_chart(chart, state / "charts" / f"{name}.png", title=f"{name} ({model_label})"))
        charts.save()
        report.pending_alerts = len(alerts.flush().pending)
        watermark.save(watermark_path)  # last: everything above is durable
    return report


def _check_one(step: CapturedStep, fitted, held_out, charts: ChartBook, report: PassReport, alert) -> None:
    check = check_batch(fitted, step)
    report.steps.append(step.step)
    if "evidently_drift" in check.results:  # before Phase I below re-checks the monitor on reference batches
        report.html_reports["evidently_drift"] = (step.step, fitted["evidently_drift"].report_html())
    row: dict[str, Any] = {"step": step.step, "batch_size": len(step.tensors["penultimate"])}
    for name, reason in check.failures.items():
        report.monitor_failures[name] = reason
        alert(name, "check", "monitor_failure", True, value=None, kind="monitor_failure", severity="warning", message=reason)
    for name, result in check.results.items():
        row[f"{name}.score"] = result.score
        row[f"{name}.alarm"] = float(result.alarm)
        kind = "adversarial" if name == "mmd_adversarial" else "out_of_control"
        alert(name, "score", f"{name}>threshold", result.alarm, value=result.score, kind=kind,
              severity="critical" if kind == "adversarial" else "warning",
              limits=Limits(upper=result.threshold), message=f"{name} alarm on capture step {step.step}")
        if not VIEWS[name].charted:
            continue
        chart = charts.get(name, VIEWS[name], lambda: phase_one_scores(
            fitted[name], VIEWS[name], held_out, batch_size=row["batch_size"], n_batches=20, seed=0))
        point = chart.update(VIEWS[name].chart_value(result))
        row[f"{name}.chart_signal"] = float(point.signal)
        alert("chart", name, "western_electric", point.signal, value=point.value, kind="out_of_control",
              severity="warning", limits=Limits(lower=point.lcl, upper=point.ucl),
              message=f"{name} out of control on capture step {step.step} ({', '.join(point.rules) or 'limits'})")
    report.metrics.append(row)
