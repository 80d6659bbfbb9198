"""One monitor pass as plain function calls: collect -> check -> chart -> alert.

The ZenML monitor pipeline (``pipelines/monitoring.py``) runs the same four stages as steps;
this composition is for callers without a stack (the benchmarks, the main job's demo stream,
tests).  Everything a pass decides is durable before the watermark moves: chart states are
saved and alerts are in the outbox, so a crash at any point repeats work rather than losing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from trustops.alerts import AlertManager
from trustops.monitoring.alerting import send_alerts
from trustops.monitoring.charting import chart_batches
from trustops.monitoring.checking import check_collected
from trustops.monitoring.checks import DEFAULT_FALSE_PAGE_BUDGET, DEFAULT_MONITORS
from trustops.monitoring.collect import collect_new_captures
from trustops.monitoring.records import PassReport
from trustops.monitoring.watermark import exclusive_run
from trustops.registry import RegisteredModel


def monitor_pass(
    model: nn.Module,
    model_info: RegisteredModel,
    *,
    state: Path,
    alerts: AlertManager,
    monitors: list[str] | None = None,
    false_page_budget: float = DEFAULT_FALSE_PAGE_BUDGET,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    drift_report: str = "on_shift",
    capture_uri: str | None = None,
    run_url: str | None = None,
    run_id: str | None = None,
) -> PassReport:
    """Monitor every PREDICT batch captured since the last pass; ``state`` holds watermark and charts.

    ``capture_uri`` defaults to the model's production store (serving and ``trustops predict``
    traffic); experiments such as the main job's demo stream pass their own store and state.
    """
    with exclusive_run(state / "run.lock"):
        collected = collect_new_captures(capture_uri or model_info.capture_uri, state)
        checked = check_collected(model, model_info, collected, monitors=monitors or DEFAULT_MONITORS, state=state,
                                  false_page_budget=false_page_budget, overrides=overrides, drift_report=drift_report)
        charted = chart_batches(checked, state=state, title_suffix=f"{model_info.name}/{model_info.version}")
        return send_alerts(collected, checked, charted, model_info=model_info, state=state, alerts=alerts,
                           run_id=run_id, run_url=run_url)
