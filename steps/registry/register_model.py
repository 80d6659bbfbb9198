"""Step: log the model with its signature and register it, tagged with its trust facts.

The model is logged as the capturing pyfunc (``trustops.serving.pyfunc``): ``mlflow models
serve`` then records every request as PREDICT steps in the run's capture store.  The same
MLmodel keeps the ``pytorch`` flavor, so ``mlflow.pytorch.load_model(models:/NAME/VERSION)``
still returns the ``nn.Module``.

When the pipeline run is attached to a ZenML model version (``trustops train`` attaches every
run, see :mod:`trustops.zenml_model`), the MLflow version is registered with that version's id
and number as tags, and the ZenML version gets the MLflow version's name, number, run and URI as
metadata: each side names the other.
"""

from typing import Annotated, Any

import pandas as pd
import torch
from torch import nn
from zenml import step

from trustops.data.loading import DatasetInfo
from trustops.failpoints import failpoint
from trustops.lifecycle import PENDING, STATUS_TAG
from trustops.serving.pyfunc import log_model as log_capturing_model
from trustops.settings import TrainSettings
from trustops.training.tensors import features_tensor
from trustops.zenml_model import current_version, record_registration


@step(enable_cache=False)
def register_model(
    model: nn.Module,
    dataset: pd.DataFrame,
    dataset_info: DatasetInfo,
    training_summary: dict[str, Any],
    evaluation: dict[str, float],
    settings: TrainSettings,
) -> Annotated[dict[str, Any], "registration"]:
    import mlflow
    from mlflow.models import infer_signature

    info = dataset_info
    example = features_tensor(dataset.head(5), info.feature_columns, info.input_shape)
    with torch.no_grad():
        probabilities = torch.softmax(model.eval()(example), dim=-1)
    tags = {
        "activation": settings.model.activation,
        "model_family": settings.model.family,
        "dp": str(training_summary["dp"]).lower(),
        "dp_epsilon": f"{training_summary['dp_epsilon']:.4f}" if training_summary["dp"] else "none",
        "dp_delta": f"{training_summary['dp_delta']:.3g}" if training_summary["dp"] else "none",
        "data_hash": info.data_hash,
        "test_accuracy": f"{evaluation['test_accuracy']:.4f}",
    }
    if training_summary.get("capture_uri"):
        tags.update(capture_uri=training_summary["capture_uri"], capture_backend=training_summary["capture_backend"])
    serving_config = {
        "capture_uri": training_summary.get("capture_uri"),
        "capture_backend": training_summary.get("capture_backend", "native"),
        "input_shape": list(info.input_shape),
        "feature_columns": list(info.feature_columns),
        "classes": [c.item() if hasattr(c, "item") else c for c in info.classes],
    }
    model_info = log_capturing_model(
        model,
        name="model",
        model_config=serving_config,
        signature=infer_signature(example.numpy(), probabilities.numpy()),
        input_example=example.numpy(),
        # Explicit requirements: inferring them re-imports the model in a subprocess (slow).
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", "trustops"],
    )
    run_id = mlflow.active_run().info.run_id
    registration = {"run_id": run_id, "model_uri": model_info.model_uri, "registered_model": None, "version": None}
    tracking = settings.tracking
    zenml_version = current_version()
    if zenml_version is not None:
        registration.update(zenml_model_version=zenml_version.number, zenml_model_version_id=str(zenml_version.id))
    if tracking.register:
        # Registered pending, in one request with its tags: `trustops.runs.training` marks it ready
        # once the whole run finished, and only ready versions are ever resolved.
        version = mlflow.register_model(model_info.model_uri, tracking.registered_model_name, tags={
            **tags, STATUS_TAG: PENDING, **(zenml_version.mlflow_tags() if zenml_version else {})})
        failpoint("train.register")
        registration.update(registered_model=version.name, version=int(version.version))
        mlflow.set_tag("registered_model_version", f"{version.name}/{version.version}")
        if zenml_version is not None:
            record_registration(zenml_version, registered_model=version.name, model_version=int(version.version),
                                run_id=run_id, logged_model_uri=model_info.model_uri)
    return registration
