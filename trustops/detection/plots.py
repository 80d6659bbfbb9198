"""Figures for the adversarial-detection run: embedding, most suspicious inputs, layer table."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def embedding_figure(reference: torch.Tensor, batch: torch.Tensor, *, batch_label: str = "PGD adversarial"):
    """2-D PCA of the penultimate activations, fitted on the reference."""
    plt = _pyplot()
    mean = reference.mean(0, keepdim=True)
    _, _, components = torch.pca_lowrank(reference - mean, q=2, center=False)
    ref_2d, batch_2d = (reference - mean) @ components, (batch - mean) @ components
    figure, axes = plt.subplots(figsize=(5.5, 5))
    axes.scatter(ref_2d[:, 0], ref_2d[:, 1], s=8, alpha=0.6, label="reference (validation)")
    axes.scatter(batch_2d[:, 0], batch_2d[:, 1], s=8, alpha=0.6, label=batch_label)
    axes.set_xlabel("PC 1")
    axes.set_ylabel("PC 2")
    axes.set_title("Penultimate activations (PCA)")
    axes.legend()
    figure.tight_layout()
    return figure


def suspicious_inputs_figure(images: torch.Tensor, predictions: Sequence[int], scores: Sequence[float]):
    """The most suspicious inputs with the model's prediction and their score."""
    plt = _pyplot()
    count = len(images)
    columns = min(5, max(1, count))
    rows = (count + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(2 * columns, 2.2 * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, image, predicted, score in zip(axes.flat, images, predictions, scores):
        axis.imshow(image.reshape(image.shape[-2], image.shape[-1]) if image.ndim > 1 else image[None], cmap="gray_r")
        axis.set_title(f"pred {predicted}\nscore {score:.3g}", fontsize=8)
    figure.suptitle("Most suspicious inputs of the adversarial batch")
    figure.tight_layout()
    return figure


def layer_table_figure(table: pd.DataFrame):
    """Detection rate per layer, one line per batch (clean and each PGD epsilon)."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4))
    for column in table.columns:
        axes.plot(range(len(table)), table[column], marker="o", label=str(column))
    axes.set_xticks(range(len(table)), list(table.index), rotation=30, ha="right")
    axes.set_ylim(-0.02, 1.02)
    axes.set_ylabel("detection rate")
    axes.set_title("Detection rate by layer")
    axes.legend(fontsize=8)
    figure.tight_layout()
    return figure
