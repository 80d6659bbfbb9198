"""Reference subsamples whose predicted-class mix matches the batch's.

Penultimate activations cluster by class, so a batch that is merely richer in one class than
the reference would look "shifted" to MMD.  Drawing the reference subsample with the batch's
predicted class proportions removes that: the test then asks whether the activations differ
*given* the predicted classes, which is what an adversarial perturbation changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from monitors.errors import MonitorInputError


@dataclass(frozen=True)
class ClassIndex:
    """The reference rows of each predicted class.

    Attributes
    ----------
    members
        Class label -> shape-(N_c,) tensor of reference row indices.
    """

    members: dict[int, Tensor]

    @classmethod
    def from_predictions(cls, predictions: Tensor) -> ClassIndex:
        """Group the row indices of shape-(N,) integer ``predictions`` by label."""
        labels = predictions.unique(sorted=True)
        return cls({int(label): (predictions == label).nonzero().flatten() for label in labels})

    def counts(self) -> dict[int, int]:
        return {label: int(rows.numel()) for label, rows in self.members.items()}


def _batch_counts(batch_predictions: Tensor, index: ClassIndex) -> dict[int, int]:
    labels, counts = batch_predictions.unique(sorted=True, return_counts=True)
    batch_counts = {int(label): int(count) for label, count in zip(labels, counts)}
    missing = sorted(set(batch_counts) - set(index.members))
    if missing:
        raise MonitorInputError(
            f"The batch has predicted classes {missing} that no reference row has (reference classes: "
            f"{sorted(index.members)}); the reference cannot be matched to the batch's class mix. "
            "Fit on a reference that covers every class, or construct the monitor with class_matching=False."
        )
    return batch_counts


def quotas(batch_counts: dict[int, int], size: int) -> dict[int, int]:
    """Rows per class for a subsample of ``size`` with the proportions of ``batch_counts``.

    Largest-remainder rounding in integer arithmetic: the quotas sum to ``size`` exactly and
    each is within 1 of ``size * count / total``; ties go to the smaller label.
    """
    total = sum(batch_counts.values())
    floors = {label: size * count // total for label, count in batch_counts.items()}
    remainders = sorted(batch_counts, key=lambda label: (-(size * batch_counts[label] % total), label))
    for label in remainders[: size - sum(floors.values())]:
        floors[label] += 1
    return floors


def largest_matched_size(index: ClassIndex, batch_predictions: Tensor) -> int:
    """The largest subsample size for which every class quota is available in the reference.

    With batch count ``b_c`` of ``m`` and reference count ``r_c`` that is ``min_c floor(r_c m / b_c)``
    (a ceiling-rounded quota ``<= r_c`` then holds too); it never exceeds the reference size.
    """
    batch_counts = _batch_counts(batch_predictions, index)
    total, available = sum(batch_counts.values()), index.counts()
    return min(available[label] * total // count for label, count in batch_counts.items())


def draw_matched(
    index: ClassIndex, batch_predictions: Tensor, size: int, generator: torch.Generator | None = None
) -> Tensor:
    """Shape-(size,) reference row indices, drawn without replacement, with the batch's class mix.

    Raises
    ------
    MonitorInputError
        If the batch predicts a class the reference lacks, or a class quota exceeds its reference rows.
    """
    batch_counts = _batch_counts(batch_predictions, index)
    chosen = []
    for label, quota in quotas(batch_counts, size).items():
        rows = index.members[label]
        if quota > rows.numel():
            raise MonitorInputError(
                f"Matching the batch's class mix in a reference sample of {size} rows needs {quota} rows of "
                f"predicted class {label}, but the reference has only {rows.numel()}. Use a smaller sample, "
                "a larger reference, or class_matching=False."
            )
        chosen.append(rows[torch.randperm(rows.numel(), generator=generator)[:quota]])
    return torch.cat(chosen)
