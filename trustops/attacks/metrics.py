"""How well an attack worked, and a picture of what it did."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from trustops.errors import ConfigError
from trustops.files import save_png


@dataclass(frozen=True)
class AttackMetrics:
    """Accuracies before and after an attack.

    Attributes
    ----------
    clean_accuracy, adversarial_accuracy
        Fraction of samples classified correctly, on ``x`` and on ``x_adv``.
    attack_success_rate
        Of the samples classified correctly on ``x``, the fraction misclassified on
        ``x_adv``; NaN when none was correct.
    n, n_clean_correct
        Sample counts.
    """

    clean_accuracy: float
    adversarial_accuracy: float
    attack_success_rate: float
    n: int
    n_clean_correct: int


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    was_training = model.training
    model.eval()
    try:
        return model(x).argmax(dim=1)
    finally:
        model.train(was_training)


def attack_metrics(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor) -> AttackMetrics:
    """Clean accuracy, adversarial accuracy and attack success rate of ``x_adv`` against ``model``."""
    if x.shape != x_adv.shape or x.shape[:1] != y.shape[:1]:
        raise ConfigError(
            f"`x`, `x_adv` must have one shape and `y` one label per sample. Got {tuple(x.shape)}, "
            f"{tuple(x_adv.shape)}, {tuple(y.shape)}."
        )
    if len(y) == 0:
        raise ConfigError("attack_metrics needs at least one sample.")
    clean_ok = _predict(model, x) == y
    adv_ok = _predict(model, x_adv) == y
    n_clean = int(clean_ok.sum())
    success = float((clean_ok & ~adv_ok).sum()) / n_clean if n_clean else math.nan
    return AttackMetrics(
        clean_accuracy=float(clean_ok.float().mean()),
        adversarial_accuracy=float(adv_ok.float().mean()),
        attack_success_rate=success,
        n=len(y),
        n_clean_correct=n_clean,
    )


def plot_attack_examples(
    x: torch.Tensor,
    x_adv: torch.Tensor,
    path: str | os.PathLike,
    *,
    n: int = 4,
    image_shape: tuple[int, int] | None = None,
    labels: torch.Tensor | None = None,
    clean_pred: torch.Tensor | None = None,
    adv_pred: torch.Tensor | None = None,
) -> Path:
    """Render ``n`` examples as rows of clean / adversarial / difference images to a PNG.

    ``image_shape`` reshapes flat samples (digits: ``(8, 8)``); square flat samples are
    reshaped without it.  Labels and predictions, when given, title the images.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if x.shape != x_adv.shape:
        raise ConfigError(f"`x` and `x_adv` must have one shape. Got {tuple(x.shape)} and {tuple(x_adv.shape)}.")
    n = min(n, len(x))
    if n < 1:
        raise ConfigError("plot_attack_examples needs at least one example.")

    def as_image(sample: torch.Tensor) -> torch.Tensor:
        sample = sample.detach().cpu().float()
        if image_shape is not None:
            return sample.reshape(image_shape)
        if sample.ndim == 1:
            side = math.isqrt(sample.numel())
            if side * side != sample.numel():
                raise ConfigError(f"Pass image_shape: a flat sample of {sample.numel()} values is not square.")
            return sample.reshape(side, side)
        return sample.reshape(sample.shape[-2:]) if sample.ndim == 3 and sample.shape[0] == 1 else sample

    lo = float(torch.minimum(x[:n].min(), x_adv[:n].min()))
    hi = float(torch.maximum(x[:n].max(), x_adv[:n].max()))
    figure = Figure(figsize=(6.6, 2.2 * n))
    FigureCanvasAgg(figure)
    axes = figure.subplots(n, 3, squeeze=False)
    for row in range(n):
        clean, adv = as_image(x[row]), as_image(x_adv[row])
        diff = adv - clean
        bound = float(diff.abs().max()) or 1.0
        titles = ["clean", "adversarial", f"difference (max {bound:.2g})"]
        if labels is not None and clean_pred is not None and adv_pred is not None:
            titles[0] += f"\nlabel {int(labels[row])}, pred {int(clean_pred[row])}"
            titles[1] += f"\npred {int(adv_pred[row])}"
        for col, (image, title) in enumerate(zip((clean, adv, diff), titles)):
            ax = axes[row][col]
            if col < 2:
                ax.imshow(image.numpy(), cmap="gray", vmin=lo, vmax=hi)
            else:
                ax.imshow(image.numpy(), cmap="coolwarm", vmin=-bound, vmax=bound)
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    figure.tight_layout()
    return save_png(figure, path, dpi=80)
