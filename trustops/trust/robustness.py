"""Robustness curves: a classifier's accuracy under a PGD attack, against the attack's radius ε.

No MLflow, ZenML or Hydra here: :mod:`trustops.runs.studies` wraps these functions into tracked
runs.  ε is in input units (digits pixels run 0-16); ε = 0 is the clean accuracy, with no attack.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from trustops.attacks import NORMS, AttackMetrics, attack_metrics, pgd_attack
from trustops.errors import ConfigError
from trustops.files import save_png
from trustops.models.activations import ACTIVATIONS

DEFAULT_EPSILONS = (0.0, 0.5, 1.0, 2.0, 4.0)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class RobustnessVariant:
    """A model variant on a robustness curve: its activation (SmeLU width ``beta``) and whether it trains with DP-SGD."""

    activation: str = "relu"
    beta: float = 1.0
    dp: bool = False

    def __post_init__(self) -> None:
        _require(
            self.activation in ACTIVATIONS,
            f"variant activation must be one of {', '.join(ACTIVATIONS)}. Got: {self.activation!r}",
        )
        _require(self.beta > 0, f"variant beta (the SmeLU half-width) must be > 0. Got: {self.beta}")
        _require(isinstance(self.dp, bool), f"variant dp must be true or false. Got: {self.dp!r}")


DEFAULT_VARIANTS = {
    "standard": RobustnessVariant("relu", dp=False),
    "dp": RobustnessVariant("relu", dp=True),
    "smelu": RobustnessVariant("smelu", beta=1.0, dp=False),
}


@dataclass(frozen=True)
class AttackSettings:
    """The PGD attack of every curve point.

    ``step_size`` null means ``2.5 * epsilon / steps`` (Madry et al.'s choice: the walk can cross
    the ball a little more than once).  ``max_samples`` null attacks the whole test split.
    """

    norm: str = "inf"
    steps: int = 10
    step_size: float | None = None
    clamp: list[float] = field(default_factory=lambda: [0.0, 16.0])
    random_start: bool = False
    seed: int = 0
    max_samples: int | None = None

    def __post_init__(self) -> None:
        _require(self.norm in NORMS, f"attack.norm must be one of {', '.join(NORMS)}. Got: {self.norm!r}")
        _require(
            not isinstance(self.steps, bool) and isinstance(self.steps, int) and self.steps >= 1,
            f"attack.steps must be an integer >= 1. Got: {self.steps!r}",
        )
        _require(
            self.step_size is None or (math.isfinite(self.step_size) and self.step_size > 0),
            f"attack.step_size must be > 0 (or null for 2.5 * epsilon / steps). Got: {self.step_size}",
        )
        _require(
            len(self.clamp) == 2 and self.clamp[0] < self.clamp[1],
            f"attack.clamp must be [low, high] with low < high. Got: {self.clamp}",
        )
        _require(
            self.max_samples is None or self.max_samples >= 1,
            f"attack.max_samples must be >= 1 (or null for the whole test split). Got: {self.max_samples}",
        )

    def step_size_for(self, epsilon: float) -> float:
        return self.step_size if self.step_size is not None else 2.5 * epsilon / self.steps


def check_epsilon(epsilon: float) -> float:
    """``epsilon`` as a float, or a :class:`ConfigError` when it is not a finite number >= 0."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not math.isfinite(epsilon) or epsilon < 0:
        raise ConfigError(
            f"epsilon (the attack radius) must be a finite number >= 0. Got: {epsilon!r}. "
            "Sweep several with epsilon=0,0.5,1 (comma-separated, not a list)."
        )
    return float(epsilon)


def robustness_point(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epsilon: float, attack: AttackSettings) -> AttackMetrics:
    """Accuracy of ``model`` on ``x`` and on its PGD adversarial examples of radius ``epsilon``.

    Parameters
    ----------
    x
        shape-(N, ...) clean inputs inside ``attack.clamp``.
    y
        shape-(N,) class indices.
    epsilon
        The attack radius; 0 evaluates the clean inputs (the adversarial accuracy is the clean one).
    """
    epsilon = check_epsilon(epsilon)
    if attack.max_samples is not None:
        x, y = x[: attack.max_samples], y[: attack.max_samples]
    if epsilon == 0:
        return attack_metrics(model, x, x, y)
    x_adv = pgd_attack(
        model, x, y, norm=attack.norm, epsilon=epsilon, step_size=attack.step_size_for(epsilon), steps=attack.steps,
        clamp=(float(attack.clamp[0]), float(attack.clamp[1])), random_start=attack.random_start,
        generator=torch.Generator().manual_seed(attack.seed),
    )  # fmt: skip
    return attack_metrics(model, x, x_adv, y)


def plot_robustness_curves(table: pd.DataFrame, path: str | os.PathLike, *, norm: str = "inf") -> Path:
    """One line per variant: adversarial accuracy (shape-(P,) points of ``table``) against ε, to a PNG.

    ``table`` has columns ``variant``, ``epsilon`` and ``adversarial_accuracy``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    missing = {"variant", "epsilon", "adversarial_accuracy"} - set(table.columns)
    if missing:
        raise ConfigError(f"The robustness table lacks columns: {', '.join(sorted(missing))}.")
    figure = Figure(figsize=(6, 4))
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    for variant, rows in table.sort_values("epsilon").groupby("variant", sort=False):
        ax.plot(rows["epsilon"], rows["adversarial_accuracy"], marker="o", label=str(variant))
    ax.set_xlabel(f"PGD ε (L{'∞' if norm == 'inf' else '2'}, pixel units 0-16)")
    ax.set_ylabel("accuracy under attack")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(title="variant")
    ax.set_title("Robustness: test accuracy against PGD radius")
    figure.tight_layout()
    return save_png(figure, path, dpi=100)

