"""One monitor pass as plain function calls: collect -> check -> chart -> alert.

The ZenML monitor pipeline (``pipelines/monitoring.py``) runs the same four stage functions as
steps, with the same :class:`~trustops.monitoring.checking.PassOptions`; this composition is for
callers without a stack (the benchmarks).  ``tests/pipelines/test_monitoring_loop.py`` checks that
both give the same metrics and alerts on the same batches, so what the benchmarks measure is what
the pipeline does.  Everything a pass decides is durable before the watermark moves: chart states are
saved and alerts are in the outbox, so a crash at any point repeats work rather than losing it.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from trustops.alerts import AlertManager
from trustops.monitoring.alerting import send_alerts
from trustops.monitoring.charting import chart_batches
from trustops.monitoring.checking import PassOptions, check_collected
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
    options: PassOptions = PassOptions(),
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
        checked = check_collected(model, model_info, collected, options=options)
        charted = chart_batches(checked, state=state, title_suffix=f"{model_info.name}/{model_info.version}")
        return send_alerts(collected, checked, charted, model_info=model_info, state=state, alerts=alerts,
                           run_id=run_id, run_url=run_url)
