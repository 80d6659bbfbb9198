"""Step: run every enabled monitor plugin on each collected batch."""

import tempfile
from pathlib import Path
from typing import Annotated, Any

from zenml import step

from trustops.monitoring.budget import permutation_overrides
from trustops.monitoring.checking import check_collected
from trustops.monitoring.mlflow_chart import monitored_batches
from trustops.monitoring.records import CheckedBatches, CollectedCaptures
from trustops.registry import RegisteredModel
from trustops.tracking import log_history


@step(enable_cache=False)
def check_captures(
    model_info: dict[str, Any], collected: CollectedCaptures, monitors: list[str], state: str,
    false_page_budget: float = 500.0, drift_report: str = "on_shift", permutations: int | None = None,
) -> Annotated[CheckedBatches, "checked_batches"]:
    import mlflow

    found = RegisteredModel.from_dict(model_info)
    # Loaded here, from the registry, and only when there is something to check.
    model = mlflow.pytorch.load_model(found.model_uri).eval() if collected.chunks else None
    checked = check_collected(model, found, collected, monitors=monitors, state=Path(state),
                              false_page_budget=false_page_budget, drift_report=drift_report,
                              overrides=permutation_overrides(monitors, permutations))
    # One MLflow step per capture step, so each metric's history plots over time.
    log_history(({"step": batch.step, **batch.metric_row()} for batch in checked.batches), step_key="step")
    if checked.batches:  # the batches the pass monitored, as its input: named and digested by their capture steps
        mlflow.log_input(monitored_batches(collected.capture_uri, [batch.step for batch in checked.batches]),
                         context="monitoring", tags={"batches": str(len(checked.batches))})
    with tempfile.TemporaryDirectory() as folder:
        for name, report in checked.html_reports.items():
            page = Path(folder) / f"{name}_report.html"
            page.write_text(report.html, encoding="utf-8")
            mlflow.log_artifact(str(page), "drift")
            mlflow.set_tag(f"{name}_report_step", str(report.step))
    mlflow.log_params({"false_page_budget": checked.false_page_budget,
                       **{f"{name}.page_level": level for name, level in checked.page_levels.items()}})
    return checked
