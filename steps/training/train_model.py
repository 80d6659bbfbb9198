"""Step: train the classifier (DP-SGD when enabled) and log its training curves."""

from typing import Annotated, Any

import pandas as pd
from torch import nn
from zenml import step

from trustops.data.loading import DatasetInfo
from trustops.failpoints import failpoint
from trustops.settings import TrainSettings
from trustops.tracking import log_batch, log_history
from trustops.training.trainer import train_classifier


@step(enable_cache=False)
def train_model(
    dataset: pd.DataFrame, dataset_info: DatasetInfo, settings: TrainSettings
) -> tuple[Annotated[nn.Module, "model"], Annotated[dict[str, Any], "training_summary"]]:
    result = train_classifier(dataset, dataset_info, settings)
    log_history(result.history)
    summary: dict[str, Any] = {"epochs": len(result.history), "dp": result.dp_epsilon is not None}
    capture = settings.capture
    if capture.enabled and capture.uri:
        summary.update(capture_uri=capture.uri, capture_backend=capture.backend)
        log_batch(tags={"capture_uri": capture.uri, "capture_backend": capture.backend})
    if result.dp_epsilon is not None:
        summary.update(dp_epsilon=result.dp_epsilon, dp_delta=result.dp_delta, dp_noise_multiplier=result.noise_multiplier)
        log_batch(
            metrics={"dp_noise_multiplier": result.noise_multiplier, "dp_delta": result.dp_delta},
            tags={"dp_epsilon": f"{result.dp_epsilon:.4f}", "dp_delta": f"{result.dp_delta:.3g}"},
        )
    failpoint("train.train")  # the stage is done and recorded; nothing handed on yet
    return result.model, summary
