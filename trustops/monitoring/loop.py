"""One monitor pass as plain function calls: collect -> check -> chart -> alert.

The ZenML monitor pipeline (``pipelines/monitoring.py``) runs the same four stages as steps;
this composition is for callers without a stack (tests, benchmarks).  Everything a pass
decides is durable before the watermark moves: chart states are saved and alerts are in the
outbox, so a crash at any point repeats work rather than losing it.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from trustops.alerts import AlertManager
from trustops.monitoring.alerting import send_alerts
from trustops.monitoring.charting import chart_batches
from trustops.monitoring.checking import check_collected
from trustops.monitoring.collect import collect_new_captures
from trustops.monitoring.records import PassReport
from trustops.monitoring.watermark import exclusive_run
from trustops.registry import RegisteredModel

DEFAULT_MONITORS = ["mmd_adversarial", "prediction_shift", "mean_confidence", "evidently_drift", "input_expectations", "accuracy"]


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
    with exclusive_run(state / "run.lock"):
        collected = collect_new_captures(model_info.capture_uri, state)
        checked = check_collected(model, model_info, collected, monitors=monitors or DEFAULT_MONITORS, state=state)
        charted = chart_batches(checked, state=state, title_suffix=f"{model_info.name}/{model_info.version}")
        return send_alerts(collected, checked, charted, model_info=model_info, state=state, alerts=alerts,
                           run_id=run_id, run_url=run_url)
