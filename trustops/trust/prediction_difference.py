"""Prediction difference (PD) between two models that should agree.

Two forms, both averaged over samples:

- relative PD on the true class: ``mean 2|p1 - p2| / (p1 + p2)``, with ``p`` each model's
  probability of the sample's true class (in [0, 2]; symmetric in the two models);
- total variation: ``mean sum_k |p1_k - p2_k| / 2`` over all classes (in [0, 1]).

Shamir et al. (SmeLU) report that smooth activations roughly halve PD relative to ReLU
for models that differ only in the order they saw the training data.
"""

from __future__ import annotations

import torch

from trustops.errors import ConfigError


def _check(p1: torch.Tensor, p2: torch.Tensor) -> None:
    if p1.shape != p2.shape or p1.ndim != 2:
        raise ConfigError(f"Both probability tables must have the same shape-(N, K). Got {tuple(p1.shape)} and {tuple(p2.shape)}.")


def relative_prediction_difference(p1: torch.Tensor, p2: torch.Tensor, targets: torch.Tensor) -> float:
    """``mean 2|p1 - p2| / (p1 + p2)`` on the true-class probabilities; 0 where both are 0."""
    _check(p1, p2)
    a = p1.gather(1, targets[:, None]).squeeze(1).double()
    b = p2.gather(1, targets[:, None]).squeeze(1).double()
    total = a + b
    ratio = torch.where(total > 0, 2 * (a - b).abs() / total.clamp_min(torch.finfo(torch.float64).tiny), torch.zeros_like(total))
    return float(ratio.mean()) if len(ratio) else 0.0


def total_variation_difference(p1: torch.Tensor, p2: torch.Tensor) -> float:
    """``mean sum_k |p1_k - p2_k| / 2`` over samples."""
    _check(p1, p2)
    return float((p1.double() - p2.double()).abs().sum(dim=1).div(2).mean()) if len(p1) else 0.0
