"""Step: run every enabled monitor plugin on each collected batch."""

import tempfile
from pathlib import Path
from typing import Annotated

from zenml import step

from trustops.monitoring.checking import PassOptions, check_collected
from trustops.monitoring.budget import COMBINED_MONITOR
from trustops.monitoring.mlflow_chart import monitored_batches
from trustops.monitoring.records import CheckedBatches, CollectedCaptures
from trustops.registry import RegisteredModel
from trustops.tracking import load_pytorch_model, log_history


@step(enable_cache=False)
def check_captures(
    model_info: RegisteredModel, collected: CollectedCaptures, options: PassOptions
) -> Annotated[CheckedBatches, "checked_batches"]:
    import mlflow

    found = model_info
    # Loaded here, from the registry, and only when there is something to check.
    model = load_pytorch_model(found.model_uri) if collected.chunks else None
    checked = check_collected(model, found, collected, options=options)
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
    if options.combine_layers and COMBINED_MONITOR in options.monitors:  # which layers this pass's MMD test combined
        mlflow.log_params({f"{COMBINED_MONITOR}.combine_layers": ",".join(options.combine_layers)})
    mlflow.log_params({"false_page_budget": checked.false_page_budget,
                       **{f"{name}.page_level": level for name, level in checked.page_levels.items()}})
    return checked
