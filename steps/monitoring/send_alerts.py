"""Step: alert on what went out of control or looked adversarial, then advance the watermark."""

import json
import tempfile
from pathlib import Path
from typing import Annotated

from zenml import step

from trustops.alerts import AlertManager, mlflow_run_url
from trustops.monitoring.alerting import send_alerts as send_pass_alerts
from trustops.alerts.channels import alert_channels
from trustops.monitoring.records import ChartedPoints, CheckedBatches, CollectedCaptures, PassReport
from trustops.registry import RegisteredModel
from trustops.tracking import log_batch


@step(enable_cache=False)
def send_alerts(
    collected: CollectedCaptures, checked: CheckedBatches, charted: ChartedPoints, model_info: RegisteredModel, state: str
) -> Annotated[PassReport, "pass_report"]:
    import mlflow

    run = mlflow.active_run()
    alerts = AlertManager.from_config(Path(state) / "alerts", alert_channels(zenml_stack=True))
    report = send_pass_alerts(
        collected, checked, charted, model_info=model_info, state=Path(state), alerts=alerts,
        run_id=run.info.run_id if run else None,
        run_url=mlflow_run_url(mlflow.get_tracking_uri(), run.info.experiment_id, run.info.run_id) if run else None,
    )
    log_batch(
        metrics={"batches_monitored": len(report.steps), "alerts_raised": len(report.alerts),
                 "unreadable_chunks": len(report.unreadable), "monitor_failures": len(report.monitor_failures),
                 "alerts_pending": report.pending_alerts},
        tags={"no_op": str(report.no_op).lower(), "watermark_after": str(report.watermark)},
    )
    with tempfile.TemporaryDirectory() as folder:
        listing = Path(folder) / "alerts.json"
        listing.write_text(json.dumps(report.alerts, indent=2, default=str))
        mlflow.log_artifact(str(listing), "monitoring")
    return report
