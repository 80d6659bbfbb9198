"""Step: list the captured inference batches that arrived since the last monitor run, under the version's monitoring run."""

from pathlib import Path
from typing import Annotated

from zenml import step

from trustops.monitoring.collect import collect_new_captures
from trustops.monitoring.mlflow_chart import PARENT_RUN_TAG, open_monitoring_run
from trustops.monitoring.records import CollectedCaptures
from trustops.registry import RegisteredModel
from trustops.tracking import log_batch


@step(enable_cache=False)
def collect_captures(
    model_info: RegisteredModel, state: str, capture_uri: str | None = None, traffic: str = "production"
) -> tuple[Annotated[CollectedCaptures, "collected_captures"], Annotated[str, "monitoring_run_id"]]:
    import mlflow
    from mlflow.tracking import MlflowClient

    found = model_info
    collected = collect_new_captures(capture_uri or found.capture_uri, Path(state))
    # The pass's run becomes a child of the version's long-lived monitoring run, which holds the charts.
    monitoring = open_monitoring_run(MlflowClient(), found, traffic=traffic, experiment_id=mlflow.active_run().info.experiment_id)
    log_batch(
        metrics={"batches_collected": len(collected.new_steps)},
        tags={"trustops_job": "monitor", "capture_uri": collected.capture_uri, "watermark_before": str(collected.after),
              PARENT_RUN_TAG: monitoring},
    )
    return collected, monitoring
