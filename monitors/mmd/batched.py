"""MMD² with resampling for many small tests at once: the repeated tests of the detection rate.

Each of ``T`` tests compares its own ``n`` reference rows with its own ``m`` batch rows.  The
``T`` pooled kernels are built with batched matrix products, and every test's permutations
(or bootstrap signs) are applied by one ``bmm``, as in :mod:`monitors.mmd.permutation`.  The
reference-reference blocks can be gathered from a fitted monitor's cached reference kernel
instead of being recomputed for every test.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from monitors.mmd.kernel import GaussianKernelSum, augmented_factors
from monitors.mmd.permutation import mmd2_from_products, paired_kernel_sum, wild_mmd2_from_products

CHUNK_BYTES = 2**27
"""Largest pooled-kernel stack built at once (128 MiB); more tests are processed in chunks."""


def _kernel_between(a: Tensor, b: Tensor, kernel: GaussianKernelSum, out: Tensor) -> Tensor:
    left, _ = augmented_factors(a)
    _, right = augmented_factors(b)
    squared = torch.bmm(left, right.transpose(1, 2)).clamp_(min=0)
    return kernel.fill(squared, out)


def pooled_kernels(
    x: Tensor, y: Tensor, kernel: GaussianKernelSum, *, reference_blocks: Tensor | None = None
) -> Tensor:
    """Shape-(T, n + m, n + m) zero-diagonal kernels of ``cat([x[t], y[t]])`` for shape-(T, n, D) ``x``, (T, m, D) ``y``.

    ``reference_blocks`` (shape ``(T, n, n)``), when given, is used as the reference-reference block.
    """
    n_tests, n, _ = x.shape
    n_total = n + y.shape[1]
    kernels = torch.empty(n_tests, n_total, n_total, dtype=x.dtype, device=x.device)
    if reference_blocks is None:
        z = torch.cat([x, y], dim=1)
        _kernel_between(z, z, kernel, kernels)
    else:
        kernels[:, :n, :n] = reference_blocks
        _kernel_between(x, y, kernel, kernels[:, :n, n:])
        kernels[:, n:, :n] = kernels[:, :n, n:].transpose(1, 2)
        _kernel_between(y, y, kernel, kernels[:, n:, n:])
    kernels.diagonal(dim1=1, dim2=2).zero_()
    return kernels


def batched_mmd2(
    x: Tensor, y: Tensor, kernel: GaussianKernelSum, weights: Tensor, *, reference_blocks: Tensor | None = None
) -> Tensor:
    """Shape-(T, P + 1) unbiased MMD² per test, for :func:`~monitors.mmd.permutation.permutation_weights` of shape (T, N, P + 2)."""
    products = torch.bmm(pooled_kernels(x, y, kernel, reference_blocks=reference_blocks), weights.to(x.dtype))
    return mmd2_from_products(weights, products, x.shape[1], y.shape[1])


def batched_wild_mmd2(
    x: Tensor, y: Tensor, kernel: GaussianKernelSum, weights: Tensor, *, reference_blocks: Tensor | None = None
) -> Tensor:
    """Shape-(T, B + 1) paired MMD² per test, for :func:`~monitors.mmd.permutation.wild_bootstrap_weights`."""
    products = torch.bmm(pooled_kernels(x, y, kernel, reference_blocks=reference_blocks), weights.to(x.dtype))
    return wild_mmd2_from_products(weights, products, paired_kernel_sum(x, y, kernel), y.shape[1])


def chunks_of_tests(n_tests: int, n_total: int, itemsize: int, budget: int = CHUNK_BYTES) -> Iterator[slice]:
    """Consecutive slices of ``range(n_tests)`` whose pooled kernels fit in ``budget`` bytes."""
    per_test = max(1, n_total * n_total * itemsize)
    size = max(1, budget // per_test)
    for start in range(0, n_tests, size):
        yield slice(start, min(start + size, n_tests))
