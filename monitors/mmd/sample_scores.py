"""How much each batch sample contributes to the discrepancy from the reference.

With ``mu_P(v) = mean_i k(x_i, v)`` over the ``n`` reference rows and ``mu_Q(v)`` the same over the
batch rows *other than* ``v`` itself (``m - 1`` of them), three scores per batch sample ``y_j``:

``witness``
    ``mu_Q(y_j) - mu_P(y_j)``: the MMD witness function (batch minus reference) at the sample;
    positive where the batch is denser than the reference.
``contribution``
    ``(mean_{i != i'} k(x_i, x_i') + mu_Q(y_j) - 2 mu_P(y_j)) / m``.  These sum exactly to the
    unbiased MMD², so each is the sample's share of the statistic.  Unlike the witness it is also
    large for an isolated sample far from the reference (``mu_Q = mu_P = 0``), which is how a
    lone adversarial input tends to look in activation space.
``mean_embedding``
    The mean-embedding statistic with the sample as its single test location (Chwialkowski et
    al. 2015, Jitkrittum et al. 2016): ``witness² / (var_P / n + var_Q / (m - 1))`` with the
    variances of ``k(., y_j)`` in each sample; a squared z-score of the witness.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from monitors.errors import MonitorConfigError
from monitors.mmd.kernel import GaussianKernelSum, augmented_factors

SCORE_NAMES = ("contribution", "witness", "mean_embedding")


@dataclass(frozen=True)
class SampleScores:
    """Per-sample scores of one batch (see the module docstring for their definitions).

    Attributes
    ----------
    contribution, witness, mean_embedding
        Shape-(M,) float64 arrays, one value per batch row.
    predictions
        Shape-(M,) predicted classes of the batch rows, or ``None`` if none were given.
    mmd2
        The unbiased MMD² of the batch against the reference sample; ``contribution.sum()``.
    layer
        The activation layer the scores are for.
    """

    contribution: np.ndarray
    witness: np.ndarray
    mean_embedding: np.ndarray
    predictions: np.ndarray | None
    mmd2: float
    layer: str

    def ranking(self, by: str = "contribution") -> np.ndarray:
        """The values :meth:`top_k` sorts by; ``mean_embedding`` takes the sign of the witness."""
        if by not in SCORE_NAMES:
            raise MonitorConfigError(f"`by` must be one of {', '.join(map(repr, SCORE_NAMES))}. Got: {by!r}")
        if by == "mean_embedding":
            return np.sign(self.witness) * self.mean_embedding
        return getattr(self, by)

    def top_k(self, k: int = 10, *, by: str = "contribution") -> list[tuple[int, int | None, float]]:
        """The ``k`` highest-scoring samples as ``(row index, predicted class or None, score)``, best first.

        Fewer rows are returned when the batch has fewer than ``k`` samples.
        """
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise MonitorConfigError(f"`k` must be an integer >= 1. Got: {k!r}")
        values = self.ranking(by)
        order = np.argsort(-values, kind="stable")[:k]
        return [
            (int(i), None if self.predictions is None else int(self.predictions[i]), float(values[i])) for i in order
        ]


def kernel_moments(
    x: Tensor, y: Tensor, kernel: GaussianKernelSum, *, tile_size: int = 1024, exclude_diagonal: bool = False
) -> tuple[Tensor, Tensor]:
    """``sum_i k(x_i, y_j)`` and ``sum_i k(x_i, y_j)²`` for every row ``y_j``, float64, in row tiles of ``x``.

    ``exclude_diagonal`` (when ``x`` is ``y``) leaves out the terms ``i == j``.
    """
    left, _ = augmented_factors(x)
    _, right = augmented_factors(y)
    sums = torch.zeros(y.shape[0], dtype=torch.float64, device=y.device)
    squares = torch.zeros_like(sums)
    for start in range(0, x.shape[0], tile_size):
        stop = min(start + tile_size, x.shape[0])
        squared = torch.mm(left[start:stop], right.T).clamp_(min=0)
        block = kernel.fill(squared, torch.empty_like(squared))
        if exclude_diagonal:
            block[:, start:stop].fill_diagonal_(0)
        sums += block.sum(dim=0, dtype=torch.float64)
        squares += block.square_().sum(dim=0, dtype=torch.float64)
    return sums, squares


def sample_scores(
    x: Tensor,
    y: Tensor,
    kernel: GaussianKernelSum,
    *,
    layer: str,
    predictions: Tensor | None = None,
    reference_sum: float | None = None,
    tile_size: int = 1024,
) -> SampleScores:
    """Scores of the shape-(M, D) batch ``y`` against the shape-(N, D) reference ``x`` (both standardized).

    ``reference_sum`` is ``sum_{i != i'} k(x_i, x_i')`` when already known (from a cached
    reference kernel); otherwise it is computed here.
    """
    n, m = x.shape[0], y.shape[0]
    from_reference, from_reference_sq = kernel_moments(x, y, kernel, tile_size=tile_size)
    from_batch, from_batch_sq = kernel_moments(y, y, kernel, tile_size=tile_size, exclude_diagonal=True)
    if reference_sum is None:
        reference_sum = float(kernel_moments(x, x, kernel, tile_size=tile_size, exclude_diagonal=True)[0].sum())
    mu_p, mu_q = from_reference / n, from_batch / (m - 1)
    witness = mu_q - mu_p
    contribution = (reference_sum / (n * (n - 1)) + mu_q - 2.0 * mu_p) / m
    variance = (from_reference_sq / n - mu_p**2).clamp_min(0) / n + (from_batch_sq / (m - 1) - mu_q**2).clamp_min(0) / (
        m - 1
    )
    mean_embedding = witness**2 / variance.clamp_min(torch.finfo(torch.float64).tiny)
    return SampleScores(
        contribution=contribution.cpu().numpy(),
        witness=witness.cpu().numpy(),
        mean_embedding=mean_embedding.cpu().numpy(),
        predictions=None if predictions is None else predictions.cpu().numpy(),
        mmd2=float(contribution.sum()),
        layer=layer,
    )
