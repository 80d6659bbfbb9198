"""Resampling p-values with the +1 correction, the matching critical value, and Fisher combination.

Every function takes ``stats`` of shape ``(..., Q)``: column 0 is the observed statistic and
columns ``1 ... P`` (``P = Q - 1``) the statistics of the permuted or bootstrapped samples.

The p-value is ``(1 + #{b : S_b >= S_0}) / (P + 1)``: never 0, and ``P(p <= alpha) <= alpha``
exactly under exchangeability (Phipson & Smyth 2010).  :func:`critical_value` is the value ``c``
with ``S_0 > c  <=>  p <= alpha`` for the same permuted statistics, so an alarm can be stated
either way.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def exceedances(stats: Tensor) -> Tensor:
    """``#{b >= 1 : stats[..., b] >= stats[..., 0]}``: ties count against the observed value."""
    return (stats[..., 1:] >= stats[..., :1]).sum(dim=-1)


def plus_one_p_value(stats: Tensor) -> Tensor:
    """The float64 p-value ``(1 + exceedances) / (P + 1)``, in ``(0, 1]``."""
    n_draws = stats.shape[-1] - 1
    return (1 + exceedances(stats)).to(torch.float64) / (n_draws + 1)


def max_exceedances(alpha: float, n_draws: int) -> int:
    """The largest count ``j`` with ``(1 + j) / (n_draws + 1) <= alpha``; -1 when even ``j = 0`` fails.

    Evaluated with the same float division as :func:`plus_one_p_value`, so
    ``p <= alpha  <=>  exceedances <= j`` holds exactly, not just up to rounding.
    """
    j = min(n_draws, max(-1, math.floor(alpha * (n_draws + 1)) - 1))
    while j >= 0 and (1 + j) / (n_draws + 1) > alpha:
        j -= 1
    while j < n_draws and (2 + j) / (n_draws + 1) <= alpha:
        j += 1
    return j


def min_draws(alpha: float) -> int:
    """The fewest permutations (or bootstrap draws) with which ``p <= alpha`` is reachable at all."""
    n_draws = max(1, math.ceil(1.0 / alpha) - 2)
    while max_exceedances(alpha, n_draws) < 0:
        n_draws += 1
    return n_draws


def critical_value(stats: Tensor, alpha: float) -> Tensor:
    """The ``(j + 1)``-th largest resampled statistic, ``j = max_exceedances(alpha, P)``; ``+inf`` if ``j < 0``.

    ``S_0 > critical_value  <=>  exceedances <= j  <=>  p <= alpha``: if ``S_0`` exceeds the
    ``(j + 1)``-th largest, at most ``j`` draws reach it; otherwise at least ``j + 1`` do.
    """
    resampled = stats[..., 1:].to(torch.float64)
    j = max_exceedances(alpha, resampled.shape[-1])
    if j < 0:
        return torch.full(resampled.shape[:-1], math.inf, dtype=torch.float64)
    return resampled.sort(dim=-1, descending=True).values[..., j]


def fisher_combination(stats: Tensor) -> Tensor:
    """Fisher's ``-2 sum_l log p_l`` for every column of shape-(..., L, Q) per-layer ``stats``.

    ``p_l`` of column ``b`` is its +1-style p-value among all ``Q`` columns of layer ``l``,
    ``#{b' : S_lb' >= S_lb} / Q`` (for column 0 that is exactly :func:`plus_one_p_value`).
    Comparing the observed combined value with the permuted ones (computed from the *same*
    permutations in every layer) calibrates the combination under any dependence between
    layers: Pesarin's nonparametric combination.  Fisher's chi-squared reference distribution
    would need independent layers, which activations of one network never are.
    """
    stats = stats.to(torch.float64)
    ascending = stats.sort(dim=-1).values.contiguous()
    below = torch.searchsorted(ascending, stats.contiguous(), side="left")
    partial = (stats.shape[-1] - below).to(torch.float64) / stats.shape[-1]
    return -2.0 * partial.log().sum(dim=-2)
