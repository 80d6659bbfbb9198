"""What a monitored model's normal traffic looks like: its captured validation pass."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from trustops.capture import open_capture
from trustops.registry import RegisteredModel


@dataclass(frozen=True)
class Reference:
    """The whole validation split: rows the model was not trained on, all of them used.

    Every monitor in the loop compares a batch with all of it, and each test accounts for the
    reference's own sampling error, so nothing is held back for a Phase I.
    """

    penultimate: torch.Tensor  # shape-(N, D), the last captured validation pass
    probabilities: torch.Tensor  # shape-(N, K)
    inputs: torch.Tensor  # shape-(N, ...), the validation split itself
    labels: torch.Tensor  # shape-(N,), the validation split's class indices
    value_range: tuple[float, float]  # the inputs' valid range (declared, or spanned by the data)
    squeezing_scores: np.ndarray | None = field(default=None, compare=False)  # shape-(N,), when computed
    # The data's feature names (the inputs flattened), so drift reports and expectations name real columns.
    columns: tuple[str, ...] | None = field(default=None, compare=False)

    @property
    def predictions(self) -> torch.Tensor:
        return self.probabilities.argmax(1)


def load_reference(model: nn.Module, model_info: RegisteredModel, *, squeezing: bool = False) -> Reference:
    """The reference of ``model_info``; ``squeezing`` also scores its inputs for the feature-squeezing monitor."""
    from trustops.data.registered import load_split_with_columns
    from trustops.monitoring.squeezing import squeezing_scores

    reader = open_capture(model_info.capture_uri)
    penultimate = reader.load("eval", "penultimate", where=reader.last_pass("eval")).float()
    with torch.no_grad():
        probabilities = torch.softmax(model.head(penultimate), dim=1)
    inputs, labels, value_range, columns = load_split_with_columns(model_info, "val")
    scores = squeezing_scores(model, inputs, value_range).numpy() if squeezing else None
    return Reference(penultimate=penultimate, probabilities=probabilities, inputs=inputs, labels=labels,
                     value_range=value_range, squeezing_scores=scores, columns=tuple(columns))
