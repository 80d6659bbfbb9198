"""Step: list the captured inference batches that arrived since the last monitor run."""

from pathlib import Path
from typing import Annotated, Any

from zenml import step

from trustops.monitoring.collect import collect_new_captures
from trustops.monitoring.records import CollectedCaptures
from trustops.registry import RegisteredModel
from trustops.tracking import log_batch


@step(enable_cache=False)
def collect_captures(
    model_info: dict[str, Any], state: str, capture_uri: str | None = None
) -> Annotated[CollectedCaptures, "collected_captures"]:
    found = RegisteredModel.from_dict(model_info)
    collected = collect_new_captures(capture_uri or found.capture_uri, Path(state))
    log_batch(
        metrics={"batches_collected": len(collected.new_steps)},
        tags={"trustops_job": "monitor", "capture_uri": collected.capture_uri, "watermark_before": str(collected.after)},
    )
    return collected
