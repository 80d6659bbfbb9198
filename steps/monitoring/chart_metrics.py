"""Step: append each charted trust metric to its control chart, draw it, and log it into the monitoring run."""

from typing import Annotated

from zenml import step

from trustops.monitoring.charting import chart_batches
from trustops.monitoring.mlflow_chart import log_chart_points
from trustops.monitoring.records import ChartedPoints, CheckedBatches
from trustops.registry import RegisteredModel


@step(enable_cache=False)
def chart_metrics(
    checked: CheckedBatches, model_info: RegisteredModel, state: str, monitoring_run_id: str
) -> Annotated[ChartedPoints, "chart_points"]:
    import mlflow
    from mlflow.tracking import MlflowClient

    found = model_info
    charted = chart_batches(checked, state=state, title_suffix=f"{found.name}/{found.version}")
    # The charts' history lives in the long-lived monitoring run (one line chart per metric over
    # every pass); this pass's run keeps the pictures of the charts that signalled in it.
    log_chart_points(MlflowClient(), monitoring_run_id, charted.points, state=state)
    for image in charted.images:
        mlflow.log_artifact(image, "charts")
    return charted
