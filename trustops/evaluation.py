"""Classifier quality: accuracy, per-class recall, expected calibration error, confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    expected_calibration_error: float
    per_class_recall: dict[str, float]
    confusion: np.ndarray  # shape-(K, K): rows are true classes, columns predictions

    def metrics(self, prefix: str = "test_") -> dict[str, float]:
        values = {f"{prefix}accuracy": self.accuracy, f"{prefix}ece": self.expected_calibration_error}
        values.update({f"{prefix}recall_class_{label}": recall for label, recall in self.per_class_recall.items()})
        return values


def expected_calibration_error(probabilities: np.ndarray, targets: np.ndarray, *, n_bins: int = 15) -> float:
    """ECE: the sample-weighted mean |accuracy - confidence| over equal-width confidence bins.

    Parameters
    ----------
    probabilities
        shape-(N, K) predicted class probabilities.
    targets
        shape-(N,) true class indices.
    """
    if len(targets) == 0:
        return 0.0
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == targets
    # A confidence of exactly 1.0 belongs to the last bin, not past it.
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    error = 0.0
    for b in range(n_bins):
        members = bins == b
        if members.any():
            error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)


def confusion_matrix(predictions: np.ndarray, targets: np.ndarray, n_classes: int) -> np.ndarray:
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (targets, predictions), 1)
    return matrix


@torch.no_grad()
def predict_probabilities(model: nn.Module, inputs: torch.Tensor, *, batch_size: int = 1024) -> np.ndarray:
    model.eval()
    chunks = [torch.softmax(model(inputs[i : i + batch_size]), dim=1) for i in range(0, len(inputs), batch_size)]
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, 0), dtype=np.float32)


def evaluate_classifier(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, classes: Sequence[Any]) -> Evaluation:
    probabilities = predict_probabilities(model, inputs)
    truth = targets.numpy()
    predictions = probabilities.argmax(axis=1)
    matrix = confusion_matrix(predictions, truth, len(classes))
    support = matrix.sum(axis=1)
    recall = {
        str(label): float(matrix[i, i] / support[i]) if support[i] else float("nan") for i, label in enumerate(classes)
    }
    return Evaluation(
        accuracy=float((predictions == truth).mean()),
        expected_calibration_error=expected_calibration_error(probabilities, truth),
        per_class_recall=recall,
        confusion=matrix,
    )


def confusion_figure(matrix: np.ndarray, classes: Sequence[Any], *, title: str = "Confusion matrix (test split)"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5.5, 5))
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(classes)), [str(c) for c in classes])
    axes.set_yticks(range(len(classes)), [str(c) for c in classes])
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(column, row, str(count), ha="center", va="center", fontsize=7, color="white" if count > threshold else "black")
    figure.tight_layout()
    return figure
