"""What a monitored model's normal traffic looks like: its captured validation pass."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from trustops.capture import open_capture
from trustops.registry import RegisteredModel


@dataclass(frozen=True)
class Reference:
    penultimate: torch.Tensor  # shape-(N, D), the last captured validation pass
    probabilities: torch.Tensor  # shape-(N, K)
    inputs: torch.Tensor  # shape-(N, ...), the validation split itself

    @property
    def predictions(self) -> torch.Tensor:
        return self.probabilities.argmax(1)


def load_reference(model: nn.Module, model_info: RegisteredModel) -> Reference:
    from steps.adversarial.attack_split import load_split

    reader = open_capture(model_info.capture_uri)
    penultimate = reader.load("eval", "penultimate", where=reader.last_pass("eval")).float()
    with torch.no_grad():
        probabilities = torch.softmax(model.head(penultimate), dim=1)
    inputs, _, _ = load_split(model_info, "val")
    return Reference(penultimate=penultimate, probabilities=probabilities, inputs=inputs)
