"""Several layers' MMD tests combined into one, calibrated by permutations shared across the layers.

Per-layer tests on the same samples are dependent (every layer is a function of the one before),
so Fisher's ``-2 sum_l log p_l`` is not chi-squared with ``2L`` degrees of freedom: when the layers
agree, it rejects too often (two identical layers at ``alpha = 0.05``: about 9%).  The valid
combination is Pesarin's nonparametric combination: draw one set of permutations of the pooled
rows, apply each to *every* layer, compute the combined statistic for the observed split and for
each permutation (each layer's p-values taken within its own permutation distribution), and read
the combined p-value off that joint null.  Any dependence between the layers is then in the null.

With a class-matched reference the permutations move rows only within a predicted class
(:func:`monitors.mmd.permutation.draw_stratified_permutations`), the exact conditional test.

Combined statistics (larger means more evidence against the null):

- ``fisher``: ``-2 sum_l log p_l`` (:func:`monitors.mmd.pvalues.fisher_combination`);
- ``min_p``: ``-log min_l p_l`` (Tippett's), the most powerful when one layer carries the signal;
- ``sum_z``: ``sum_l (S_l - mean_l) / sd_l``, each layer's MMD² standardized by its permutation
  mean and standard deviation.

Everything here is plain torch on shape-(..., L, Q) statistics (column 0 observed, columns
``1..P`` permuted), so the same functions serve one test and the batched tests of a detection rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from scipy.special import chdtrc
from torch import Tensor

from monitors.mmd.kernel import GaussianKernelSum, median_bandwidth
from monitors.mmd.permutation import draw_permutations, draw_stratified_permutations, permutation_mmd2
from monitors.mmd.pvalues import fisher_combination, plus_one_p_value
from monitors.mmd.standardize import Standardizer

COMBINATIONS = ("fisher", "min_p", "sum_z")


def _check_method(method: str) -> None:
    if method not in COMBINATIONS:
        raise ValueError(f"`method` must be one of {', '.join(COMBINATIONS)}. Got: {method!r}")


def permutation_p_values(stats: Tensor) -> Tensor:
    """Shape-(..., L, Q) p-value of every column within its layer: ``#{b' : S_lb' >= S_lb} / Q``.

    For column 0 this is the +1-corrected p-value of the observed statistic.
    """
    stats = stats.to(torch.float64)
    ascending = stats.sort(dim=-1).values.contiguous()
    below = torch.searchsorted(ascending, stats.contiguous(), side="left")
    return (stats.shape[-1] - below).to(torch.float64) / stats.shape[-1]


def combine(stats: Tensor, method: str = "fisher") -> Tensor:
    """Shape-(..., Q) combined statistic of every column of shape-(..., L, Q) per-layer ``stats``."""
    _check_method(method)
    stats = stats.to(torch.float64)
    if method == "fisher":
        return fisher_combination(stats)
    if method == "min_p":
        return -permutation_p_values(stats).amin(dim=-2).log()
    resampled = stats[..., 1:]
    scale = resampled.std(dim=-1, keepdim=True)
    z = (stats - resampled.mean(dim=-1, keepdim=True)) / torch.where(scale > 0, scale, torch.ones_like(scale))
    return z.sum(dim=-2)


def combined_p_value(stats: Tensor, method: str = "fisher") -> Tensor:
    """Shape-(...) permutation p-value of the combined statistic: valid under any dependence between layers."""
    return plus_one_p_value(combine(stats, method))


def naive_fisher_p_value(p_values: Tensor) -> Tensor:
    """Fisher's chi-squared p-value for shape-(..., L) per-layer p-values.

    Valid only for independent layers; kept to show, and test, how far it is off for dependent ones.
    """
    p_values = p_values.to(torch.float64)
    statistic = -2.0 * p_values.log().sum(dim=-1)
    return torch.as_tensor(chdtrc(2 * p_values.shape[-1], statistic.numpy()), dtype=torch.float64)


def draw_joint_permutations(
    n_reference: int,
    n_batch: int,
    n_permutations: int,
    *,
    labels: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Shape-(P, n_reference + n_batch) permutations of the pooled rows, one set for every layer.

    ``labels`` (shape ``(n_reference + n_batch,)``, reference first): predicted classes; each
    permutation then moves rows only among rows of the same class.
    """
    if labels is None:
        return draw_permutations(n_reference + n_batch, n_permutations, generator)
    if labels.shape != (n_reference + n_batch,):
        raise ValueError(f"`labels` must have shape ({n_reference + n_batch},). Got: {tuple(labels.shape)}")
    return draw_stratified_permutations(labels, n_permutations, generator)


def layer_statistics(
    reference: Mapping[str, Tensor], batch: Mapping[str, Tensor], permutations: Tensor
) -> Tensor:
    """Shape-(L, P + 1) MMD² per layer for the observed split and each of the shared ``permutations``.

    Each layer is standardized by its pooled rows and gets the pooled median distance as
    bandwidth, both symmetric in the pooled rows, so each layer's test is exact on its own.
    """
    if set(reference) != set(batch):
        raise ValueError(f"`reference` and `batch` must name the same layers. Got: {sorted(reference)} and {sorted(batch)}")
    rows = []
    for name, x_raw in reference.items():
        standardizer = Standardizer.pooled(x_raw, batch[name])
        x, y = standardizer(x_raw), standardizer(batch[name])
        sigma = median_bandwidth(torch.cat([x, y]))
        if sigma <= 0:
            raise ValueError(f"Layer {name!r}: the pooled rows are all equal; MMD needs spread.")
        tile_size = min(1024, x.shape[0] + y.shape[0])  # the default 1024² buffers cost more than a small test
        rows.append(permutation_mmd2(x, y, GaussianKernelSum(sigma), permutations, tile_size=tile_size))
    return torch.stack(rows)


@dataclass(frozen=True)
class CombinedTest:
    """One combined test.

    Attributes
    ----------
    p_value
        The permutation p-value of the combined statistic.
    layer_p_values
        Layer name -> that layer's own permutation p-value.
    naive_fisher_p_value
        Fisher's chi-squared p-value of ``layer_p_values``: *not* valid for dependent layers.
    statistic
        The observed combined statistic.
    method
        The combination (one of :data:`COMBINATIONS`).
    """

    p_value: float
    layer_p_values: dict[str, float]
    naive_fisher_p_value: float
    statistic: float
    method: str


def combined_test(
    reference: Mapping[str, Tensor],
    batch: Mapping[str, Tensor],
    *,
    method: str = "fisher",
    n_permutations: int = 199,
    reference_labels: Tensor | None = None,
    batch_labels: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> CombinedTest:
    """Test shape-(n, D_l) ``reference`` against shape-(m, D_l) ``batch`` activations in every layer at once.

    Pass both ``reference_labels`` and ``batch_labels`` (predicted classes) for within-class
    permutations, the right null when the reference was drawn class-matched to the batch.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(60, 4, generator=g)
    >>> y = torch.randn(60, 4, generator=g) + 0.6
    >>> result = combined_test({"a": x, "b": x ** 3}, {"a": y, "b": y ** 3}, n_permutations=99, generator=g)
    >>> result.p_value <= 0.05
    True
    """
    _check_method(method)
    if (reference_labels is None) != (batch_labels is None):
        raise ValueError("Pass both `reference_labels` and `batch_labels` (class-matched) or neither.")
    n_reference, n_batch = next(iter(reference.values())).shape[0], next(iter(batch.values())).shape[0]
    labels = None if reference_labels is None else torch.cat([reference_labels, batch_labels])
    permutations = draw_joint_permutations(n_reference, n_batch, n_permutations, labels=labels, generator=generator)
    stats = layer_statistics(reference, batch, permutations)
    layer_p = plus_one_p_value(stats)
    combined = combine(stats, method)
    return CombinedTest(
        p_value=float(plus_one_p_value(combined)),
        layer_p_values={name: float(p) for name, p in zip(reference, layer_p)},
        naive_fisher_p_value=float(naive_fisher_p_value(layer_p)),
        statistic=float(combined[0]),
        method=method,
    )
