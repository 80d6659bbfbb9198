"""Step: load a registered model and the facts of its training run."""

from typing import Annotated, Any

from torch import nn
from zenml import step

from trustops.registry import resolve_registered_model
from trustops.tracking import log_batch


@step(enable_cache=False)
def load_registered_model(
    model_name: str, model_version: str
) -> tuple[Annotated[nn.Module, "model"], Annotated[dict[str, Any], "model_info"]]:
    import mlflow

    found = resolve_registered_model(model_name, model_version)
    model = mlflow.pytorch.load_model(found.model_uri).eval()
    log_batch(
        params={"model.name": found.name, "model.version": found.version},
        tags={"model_version": f"{found.name}/{found.version}", "training_run_id": found.run_id,
              **{k: v for k, v in found.tags.items() if k in ("activation", "dp", "dp_epsilon", "data_hash", "capture_uri")}},
    )
    return model, found.to_dict()
