"""Steps: a registered model version's facts, with or without the model itself."""

from typing import Annotated

from torch import nn
from zenml import step

import steps.materializers  # noqa: F401 - registers the JSON materializer of the records these steps return
from trustops.registry import RegisteredModel, resolve_registered_model
from trustops.tracking import load_pytorch_model, log_batch


@step(enable_cache=False)
def load_registered_model(
    model_name: str, model_version: str
) -> tuple[Annotated[nn.Module, "model"], Annotated[RegisteredModel, "model_info"]]:
    """The model and its facts, for pipelines whose steps hand the model on (the attack pipeline)."""
    found = _resolved_and_logged(model_name, model_version)
    model = load_pytorch_model(found.model_uri)
    return model, found


@step(enable_cache=False)
def resolve_registered_version(model_name: str, model_version: str) -> Annotated[RegisteredModel, "model_info"]:
    """The facts only: the model stays in the MLflow registry, referenced by its ``model_uri``.

    A scheduled monitor runs every few minutes; returning the model from a step would make
    ZenML store a copy of it as an artifact on every pass.
    """
    return _resolved_and_logged(model_name, model_version)


def _resolved_and_logged(model_name: str, model_version: str) -> RegisteredModel:
    found = resolve_registered_model(model_name, model_version)
    log_batch(
        params={"model.name": found.name, "model.version": found.version},
        tags={"model_version": f"{found.name}/{found.version}", "training_run_id": found.run_id,
              **{k: v for k, v in found.tags.items() if k in ("activation", "dp", "dp_epsilon", "data_hash", "capture_uri")}},
    )
    return found
