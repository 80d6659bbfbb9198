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
    labels: torch.Tensor  # shape-(N,), the validation split's class indices

    @property
    def predictions(self) -> torch.Tensor:
        return self.probabilities.argmax(1)

    def halves(self, *, seed: int) -> tuple[Reference, Reference]:
        """Two seeded, disjoint halves of the rows (the inputs are matched row for row when they align)."""
        from trustops.detection.ladis import split_reference

        first, second = split_reference(self.penultimate, seed=seed)
        aligned = len(self.inputs) == len(self.penultimate)
        return tuple(
            Reference(self.penultimate[rows], self.probabilities[rows], *((self.inputs[rows], self.labels[rows]) if aligned
                                                                           else (self.inputs, self.labels)))
            for rows in (first, second)
        )


def load_reference(model: nn.Module, model_info: RegisteredModel) -> Reference:
    from trustops.data.registered import load_split

    reader = open_capture(model_info.capture_uri)
    penultimate = reader.load("eval", "penultimate", where=reader.last_pass("eval")).float()
    with torch.no_grad():
        probabilities = torch.softmax(model.head(penultimate), dim=1)
    inputs, labels, _ = load_split(model_info, "val")
    return Reference(penultimate=penultimate, probabilities=probabilities, inputs=inputs, labels=labels)
