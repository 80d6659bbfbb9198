"""A straightforward MMD reference implementation (float64, explicit copies, loops) and its own checks.

The fast paths in ``monitors.mmd`` are tested against these functions.  Nothing here is
clever: every permutation materializes its permuted samples and recomputes MMD² from the
textbook formula, exactly as alibi-detect's ``mmd2_from_kernel_matrix`` does per permutation.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor


def naive_kernel(x: Tensor, y: Tensor, sigma: float, powers=(-2, -1, 0, 1, 2)) -> Tensor:
    """``sum_k exp(-||x_i - y_j||² / (2 (sigma 2^k)²))`` with one ``exp`` per bandwidth, float64."""
    x, y = x.to(torch.float64), y.to(torch.float64)
    squared = ((x[:, None, :] - y[None, :, :]) ** 2).sum(dim=-1)
    return sum(torch.exp(-squared / (2.0 * (sigma * 2.0**k) ** 2)) for k in powers)


def naive_mmd2(x: Tensor, y: Tensor, sigma: float) -> float:
    """Unbiased MMD²: within-sample means over distinct pairs, cross-sample mean over all pairs."""
    n, m = x.shape[0], y.shape[0]
    kxx, kyy, kxy = naive_kernel(x, x, sigma), naive_kernel(y, y, sigma), naive_kernel(x, y, sigma)
    within_x = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    within_y = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(within_x + within_y - 2.0 * kxy.mean())


def naive_paired_mmd2(x: Tensor, y: Tensor, sigma: float) -> float:
    """MMD² of the pairs ``(x_i, y_i)``: the mean of ``h(i, j)`` over ``i != j``."""
    m = x.shape[0]
    kxx, kyy, kxy = naive_kernel(x, x, sigma), naive_kernel(y, y, sigma), naive_kernel(x, y, sigma)
    h = kxx + kyy - kxy - kxy.T
    return float((h.sum() - h.diagonal().sum()) / (m * (m - 1)))


def naive_permutation_stats(x: Tensor, y: Tensor, sigma: float, permutations: Tensor) -> Tensor:
    """``[MMD²(x, y), MMD²(z[perm[:n]], z[perm[n:]]) for perm in permutations]`` by explicit copies."""
    pooled, n = torch.cat([x, y]).to(torch.float64), x.shape[0]
    stats = [naive_mmd2(x, y, sigma)]
    for permutation in permutations:
        shuffled = pooled[permutation]
        stats.append(naive_mmd2(shuffled[:n], shuffled[n:], sigma))
    return torch.tensor(stats, dtype=torch.float64)


def naive_wild_stats(x: Tensor, y: Tensor, sigma: float, signs: Tensor) -> Tensor:
    """``[paired MMD²]`` then ``sum_{i != j} e_i e_j h(i, j) / (m(m-1))`` for each sign row ``e``."""
    m = x.shape[0]
    kxx, kyy, kxy = naive_kernel(x, x, sigma), naive_kernel(y, y, sigma), naive_kernel(x, y, sigma)
    h = kxx + kyy - kxy - kxy.T
    h = h - torch.diag(h.diagonal())
    stats = [float(h.sum() / (m * (m - 1)))]
    for e in signs.to(torch.float64):
        stats.append(float(e @ h @ e / (m * (m - 1))))
    return torch.tensor(stats, dtype=torch.float64)


def naive_p_value(stats: Tensor) -> float:
    """``(1 + #{b : S_b >= S_0}) / (P + 1)`` by a Python loop."""
    observed, resampled = float(stats[0]), [float(s) for s in stats[1:]]
    return (1 + sum(s >= observed for s in resampled)) / (len(resampled) + 1)


def test_naive_mmd2_matches_the_double_sum_definition():
    """The vectorized naive formula equals the definition written as explicit double loops."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, generator=generator, dtype=torch.float64)
    y, sigma = torch.randn(4, 3, generator=generator, dtype=torch.float64) + 1, 1.3

    def k(a, b):
        return sum(math.exp(-float(((a - b) ** 2).sum()) / (2 * (sigma * 2.0**p) ** 2)) for p in range(-2, 3))

    n, m = len(x), len(y)
    within_x = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    within_y = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    cross = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    assert math.isclose(naive_mmd2(x, y, sigma), within_x + within_y - 2 * cross, rel_tol=1e-12)


def test_naive_wild_statistic_with_all_plus_signs_is_the_paired_mmd2():
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(6, 2, generator=generator, dtype=torch.float64)
    y = torch.randn(6, 2, generator=generator, dtype=torch.float64)
    stats = naive_wild_stats(x, y, 0.8, torch.ones(1, 6))
    assert math.isclose(float(stats[1]), naive_paired_mmd2(x, y, 0.8), rel_tol=1e-12)
    assert math.isclose(float(stats[0]), float(stats[1]), rel_tol=1e-12)
