"""Step: append each charted trust metric to its control chart, evaluate it and draw it."""

from pathlib import Path
from typing import Annotated, Any

from zenml import step

from trustops.monitoring.charting import chart_batches
from trustops.monitoring.records import ChartedPoints, CheckedBatches
from trustops.registry import RegisteredModel
from trustops.tracking import log_history


@step(enable_cache=False)
def chart_metrics(checked: CheckedBatches, model_info: dict[str, Any], state: str) -> Annotated[ChartedPoints, "chart_points"]:
    import mlflow

    found = RegisteredModel.from_dict(model_info)
    charted = chart_batches(checked, state=Path(state), title_suffix=f"{found.name}/{found.version}")
    log_history(({"step": point.step, f"{point.chart}.chart_signal": float(point.signal),
                  f"{point.chart}.chart_value": point.value, f"{point.chart}.chart_limit": point.ucl}
                 for point in charted.points), step_key="step")
    for image in charted.images:
        mlflow.log_artifact(image, "charts")
    return charted
