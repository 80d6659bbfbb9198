"""The LightningModule: a classifier trained with plain SGD/Adam or with a DP optimizer.

Optimisation is manual so the DP optimizer is stepped exactly once per Poisson batch,
including empty ones: the accountant counts every step, and the noise must be added
even when no sample was drawn.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from trustops.training.privacy import PrivateTraining


class ClassifierModule(L.LightningModule):
    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, *, privacy: PrivateTraining | None = None) -> None:
        super().__init__()
        self.model = model
        self._optimizer = optimizer
        self.privacy = privacy
        self.automatic_optimization = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self._optimizer

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_index: int) -> torch.Tensor:
        inputs, targets = batch
        optimizer = self.optimizers()
        optimizer.zero_grad()
        logits = self.model(inputs)
        if len(targets):
            loss = F.cross_entropy(logits, targets)
            self.log("train_loss", loss.detach(), on_step=False, on_epoch=True, batch_size=len(targets))
        else:
            # An empty Poisson batch: a mean over no samples is NaN, but the forward and
            # backward pass must still run so the DP optimizer can add its noise.
            loss = logits.sum() * 0.0
        self.manual_backward(loss)
        optimizer.step()
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_index: int) -> None:
        inputs, targets = batch
        logits = self.model(inputs)
        self.log("val_loss", F.cross_entropy(logits, targets), on_epoch=True, batch_size=len(targets))
        self.log("val_accuracy", (logits.argmax(1) == targets).float().mean(), on_epoch=True, batch_size=len(targets))
