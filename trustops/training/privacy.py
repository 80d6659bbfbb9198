"""DP-SGD with Opacus, wired by hand because Opacus's Lightning support is thin.

``make_private`` turns (model, optimizer, loader) into their Opacus counterparts:
a ``GradSampleModule`` that records per-sample gradients, a ``DPOptimizer`` that clips
each sample's gradient to ``max_grad_norm`` and adds Gaussian noise, and a data loader
with Poisson sampling (each sample joins each batch independently with rate q), which the
privacy accounting assumes.  The Lightning module then only has to step that optimizer.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from opacus import PrivacyEngine
from opacus.optimizers import DPOptimizer
from torch import nn
from torch.utils.data import DataLoader

from trustops.settings import DPSettings


@dataclass
class PrivateTraining:
    module: nn.Module
    optimizer: DPOptimizer
    loader: DataLoader
    engine: PrivacyEngine
    delta: float
    target_epsilon: float | None

    @property
    def noise_multiplier(self) -> float:
        return float(self.optimizer.noise_multiplier)

    def epsilon(self) -> float:
        """The (epsilon, delta)-DP guarantee spent so far, from the accountant."""
        return float(self.engine.get_epsilon(self.delta)) if self.engine.accountant.history else 0.0


def make_private(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: DataLoader,
    settings: DPSettings,
    *,
    epochs: int,
    n_train: int,
    generator: torch.Generator,
) -> PrivateTraining:
    with warnings.catch_warnings():
        # "Secure RNG turned off": trustops seeds its generators on purpose, for reproducible runs.
        warnings.simplefilter("ignore", UserWarning)
        engine = PrivacyEngine(accountant=settings.accountant)
    delta = settings.delta_for(n_train)
    common = dict(
        module=model,
        optimizer=optimizer,
        data_loader=loader,
        max_grad_norm=settings.max_grad_norm,
        poisson_sampling=True,
        loss_reduction="mean",
        noise_generator=generator,
    )
    if settings.target_epsilon is not None:
        module, dp_optimizer, dp_loader = engine.make_private_with_epsilon(
            target_epsilon=settings.target_epsilon, target_delta=delta, epochs=epochs, **common
        )
    else:
        module, dp_optimizer, dp_loader = engine.make_private(noise_multiplier=settings.noise_multiplier, **common)
    return PrivateTraining(module, dp_optimizer, dp_loader, engine, delta, settings.target_epsilon)


def unwrap(module: nn.Module) -> nn.Module:
    """The plain model inside an Opacus ``GradSampleModule`` (or the module itself)."""
    return getattr(module, "_module", module)
