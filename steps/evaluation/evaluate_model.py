"""Step: accuracy, per-class recall, calibration and the confusion matrix on the test split."""

from typing import Annotated

import pandas as pd
from torch import nn
from zenml import step

from trustops.data.loading import DatasetInfo
from trustops.evaluation import confusion_figure, evaluate_classifier
from trustops.failpoints import failpoint
from trustops.metric_names import TEST_ROWS
from trustops.tracking import log_batch
from trustops.training.tensors import split_dataset


@step(enable_cache=False)
def evaluate_model(
    model: nn.Module, dataset: pd.DataFrame, dataset_info: DatasetInfo
) -> Annotated[dict[str, float], "evaluation"]:
    import matplotlib.pyplot as plt
    import mlflow

    info = dataset_info
    test = split_dataset(
        dataset,
        "test",
        feature_columns=info.feature_columns,
        label_column=info.label_column,
        split_column=info.split_column,
        input_shape=info.input_shape,
        classes=info.classes,
    )
    evaluation = evaluate_classifier(model, *test.tensors, info.classes)
    metrics = evaluation.metrics()
    # TEST_ROWS: the sample size behind TEST_ACCURACY, so its interval can be given (trustops report)
    log_batch(metrics={**metrics, TEST_ROWS: float(len(test))})
    figure = confusion_figure(evaluation.confusion, info.classes)
    mlflow.log_figure(figure, "evaluation/confusion_matrix.png")
    plt.close(figure)
    failpoint("train.evaluate")  # the stage is done and recorded; nothing handed on yet
    return metrics
