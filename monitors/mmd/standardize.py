"""Feature scaling, so every activation unit weighs alike in the kernel: by the pooled rows of a test, or by the reference."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Standardizer:
    """``(x - mean) / scale`` per feature, with ``mean`` and ``scale`` learned from the reference.

    Attributes
    ----------
    mean, scale
        Shape-(D,) float64 tensors.  A feature that is constant on the reference gets
        ``scale = 1`` (it only shifts, so any batch spread on it still shows as a difference).
    """

    mean: Tensor
    scale: Tensor

    @classmethod
    def from_reference(cls, reference: Tensor) -> Standardizer:
        """Statistics of shape-(N, D) ``reference`` (population standard deviation)."""
        reference = reference.to(torch.float64)
        std = reference.std(dim=0, correction=0)
        return cls(mean=reference.mean(dim=0), scale=torch.where(std > 0, std, torch.ones_like(std)))

    @classmethod
    def pooled(cls, *samples: Tensor) -> Standardizer:
        """Statistics of the rows of all ``samples`` together.

        A symmetric function of the pooled rows: permuting which rows are "reference" and which
        "batch" leaves it unchanged, so a permutation test on the standardized rows stays exact.
        Statistics of the reference alone would not (the reference is then closer to its own
        mean than any batch is): at 50 rows a side that rejected 8% of clean tests at alpha = 0.05.
        """
        return cls.from_reference(torch.cat([sample.to(torch.float64) for sample in samples]))

    def __call__(self, x: Tensor, *, dtype: torch.dtype = torch.float64) -> Tensor:
        """Shape-(N, D) ``x`` standardized, computed in float64 and returned as ``dtype``."""
        return ((x.to(torch.float64) - self.mean) / self.scale).to(dtype)
