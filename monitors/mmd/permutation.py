"""MMD² for the observed split and many resampled ones from one pass over the pooled kernel.

Pool the shape-(n, D) reference ``x`` and the shape-(m, D) batch ``y`` into ``z`` (reference
first) and let ``K`` be the kernel of ``z`` with its diagonal set to 0.  For the 0/1 indicator
``u`` of the rows labelled "reference" the three block sums are

    xx = uᵀKu,   xy = uᵀK1 - uᵀKu,   yy = 1ᵀK1 - 2 uᵀK1 + uᵀKu,

and the unbiased MMD² is ``xx / (n(n-1)) + yy / (m(m-1)) - 2 xy / (nm)``.  Stacking the
indicators of the observed split and of every permutation as the columns of ``W`` (plus a
column of ones), all of them need only ``KW``: one matrix product.  ``KW`` is accumulated over
square tiles of the upper triangle of ``K``, so memory stays at a few tiles plus ``W`` and
``KW`` (shape ``(n + m, P + 2)``), and no permuted copy of anything is ever made.

The wild bootstrap (for ``n == m``) uses Rademacher signs instead: columns ``v = [e; -e]`` give
``vᵀKv / (m(m-1))``, the MMD² of the pairs ``(x_i, y_i)``, and ``v = [1; -1]`` the observed value.
"""

from __future__ import annotations

import torch
from torch import Tensor

from monitors.mmd.kernel import GaussianKernelSum, augmented_factors


def draw_permutations(n_total: int, n_permutations: int, generator: torch.Generator | None = None) -> Tensor:
    """Shape-(P, n_total) rows, each a uniformly random permutation of ``range(n_total)``."""
    keys = torch.rand(n_permutations, n_total, generator=generator, dtype=torch.float64)
    return keys.argsort(dim=1)


def draw_stratified_permutations(
    labels: Tensor, n_permutations: int, generator: torch.Generator | None = None
) -> Tensor:
    """Shape-(..., P, N) permutations that move each row only to a position holding the same label.

    With the reference sample class-matched to the batch, the observed split has the same
    classes on both sides; free permutations would not, and the test would be conservative.
    Permuting within classes keeps every class's split and gives the exact conditional test.
    ``labels`` has shape ``(..., N)``.
    """
    ranks = torch.unique(labels, return_inverse=True)[1].to(torch.float64)
    *batch, n_total = labels.shape
    keys = ranks.unsqueeze(-2) + torch.rand(*batch, n_permutations, n_total, generator=generator, dtype=torch.float64)
    shuffled = keys.argsort(dim=-1)  # grouped by class, random order inside each class
    grouped = ranks.argsort(dim=-1, stable=True).unsqueeze(-2).expand_as(shuffled)  # grouped, original order
    return torch.empty_like(shuffled).scatter_(-1, grouped, shuffled)


def draw_signs(n_draws: int, n_pairs: int, generator: torch.Generator | None = None) -> Tensor:
    """Shape-(B, n_pairs) independent Rademacher signs (+1 or -1, each with probability 1/2)."""
    return torch.randint(0, 2, (n_draws, n_pairs), generator=generator).mul_(2).sub_(1)


def permutation_weights(n_reference: int, permutations: Tensor, *, dtype: torch.dtype = torch.float32) -> Tensor:
    """Shape-(..., N, P + 2) weights: the observed split, one indicator per permutation, then ones.

    ``permutations`` has shape ``(..., P, N)``; in permutation ``p`` the rows
    ``permutations[..., p, :n_reference]`` play the reference.
    """
    *batch, n_permutations, n_total = permutations.shape
    weights = torch.zeros(*batch, n_total, n_permutations + 2, dtype=dtype)
    weights[..., :n_reference, 0] = 1
    weights[..., -1] = 1
    weights[..., 1:-1].scatter_(-2, permutations[..., :n_reference].transpose(-1, -2), 1.0)
    return weights


def random_split_weights(
    n_reference: int, n_total: int, n_splits: int, generator: torch.Generator | None = None, *, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Shape-(N, P + 2) weights of the observed split and ``n_splits`` uniformly random ones, then ones.

    The same law as ``permutation_weights(n_reference, draw_permutations(N, P))``: the rows
    playing the reference in a random split are the ``n_reference`` smallest of ``N`` uniform
    keys, found by selection instead of a full sort (the sort was a third of a sequential MMD
    check, ``bench/bench_monitor_scaling.py``).
    """
    weights = torch.zeros(n_total, n_splits + 2, dtype=dtype)
    weights[:n_reference, 0] = 1
    weights[:, -1] = 1
    if n_splits:
        keys = torch.rand(n_splits, n_total, generator=generator, dtype=torch.float64)
        cut = keys.kthvalue(n_reference, dim=1, keepdim=True).values
        chosen = keys <= cut
        if bool((chosen.sum(dim=1) != n_reference).any()):  # tied keys (about N² / 2⁵³): sort those splits instead
            chosen = torch.zeros_like(chosen).scatter_(1, keys.argsort(dim=1)[:, :n_reference], True)
        weights[:, 1:-1] = chosen.T
    return weights


def wild_bootstrap_weights(signs: Tensor, *, dtype: torch.dtype = torch.float32) -> Tensor:
    """Shape-(..., 2m, B + 1) weights ``[e; -e]``: the observed ``e = 1`` first, then each row of ``signs``."""
    *batch, _, n_pairs = signs.shape
    ones = torch.ones(*batch, 1, n_pairs, dtype=signs.dtype)
    e = torch.cat([ones, signs], dim=-2).transpose(-1, -2).to(dtype)
    return torch.cat([e, -e], dim=-2)


def kernel_products(
    z: Tensor,
    weights: Tensor,
    kernel: GaussianKernelSum,
    *,
    tile_size: int = 1024,
    reference_block: Tensor | None = None,
) -> Tensor:
    """``K @ weights`` for the zero-diagonal kernel ``K`` of shape-(N, D) ``z``, tile by tile.

    Only tiles on or above the diagonal are evaluated; each also serves its mirror image.
    ``reference_block`` is the zero-diagonal kernel of the first ``r`` rows of ``z``, already
    computed (the reference kernel a fitted monitor caches); its tiles are read, not recomputed.
    """
    n_total = z.shape[0]
    n_cached = 0 if reference_block is None else reference_block.shape[0]
    edges = [*range(0, n_cached, tile_size), *range(n_cached, n_total, tile_size), n_total]
    tiles = list(zip(edges[:-1], edges[1:]))
    left, right = augmented_factors(z)
    products = torch.zeros(n_total, weights.shape[1], dtype=z.dtype, device=z.device)
    weights = weights.to(dtype=z.dtype, device=z.device)
    squared = torch.empty(tile_size * tile_size, dtype=z.dtype, device=z.device)
    values = torch.empty_like(squared)
    for position, (i0, i1) in enumerate(tiles):
        for j0, j1 in tiles[position:]:
            if j1 <= n_cached:
                block = reference_block[i0:i1, j0:j1]
            else:
                shape = (i1 - i0, j1 - j0)
                distances = torch.mm(left[i0:i1], right[j0:j1].T, out=squared[: shape[0] * shape[1]].view(shape))
                block = kernel.fill(distances.clamp_(min=0), values[: shape[0] * shape[1]].view(shape))
                if i0 == j0:
                    block.fill_diagonal_(0)
            products[i0:i1].addmm_(block, weights[j0:j1])
            if i0 != j0:
                products[j0:j1].addmm_(block.T, weights[i0:i1])
    return products


def reference_kernel(x: Tensor, kernel: GaussianKernelSum, *, tile_size: int = 1024) -> Tensor:
    """The shape-(n, n) zero-diagonal kernel of ``x``, built row tile by row tile."""
    left, right = augmented_factors(x)
    block = torch.empty(x.shape[0], x.shape[0], dtype=x.dtype, device=x.device)
    squared = torch.empty(min(tile_size, x.shape[0]), x.shape[0], dtype=x.dtype, device=x.device)
    for start in range(0, x.shape[0], tile_size):
        stop = min(start + tile_size, x.shape[0])
        distances = torch.mm(left[start:stop], right.T, out=squared[: stop - start])
        kernel.fill(distances.clamp_(min=0), block[start:stop])
    return block.fill_diagonal_(0)


def mmd2_from_products(weights: Tensor, products: Tensor, n_reference: int, n_batch: int) -> Tensor:
    """Float64 MMD² per permutation column from :func:`permutation_weights` and ``K @ weights``.

    Returns shape ``(..., P + 1)``: the observed value first.
    """
    quad = (weights.to(products.dtype) * products).sum(dim=-2, dtype=torch.float64)
    lin = products.sum(dim=-2, dtype=torch.float64)
    total = lin[..., -1:]
    quad, lin = quad[..., :-1], lin[..., :-1]
    xx, xy, yy = quad, lin - quad, total - 2.0 * lin + quad
    n, m = n_reference, n_batch
    return xx / (n * (n - 1)) + yy / (m * (m - 1)) - 2.0 * xy / (n * m)


def paired_kernel_sum(x: Tensor, y: Tensor, kernel: GaussianKernelSum) -> Tensor:
    """``sum_i k(x_i, y_i)`` over the last-but-one axis of equal-shape ``x`` and ``y``, float64."""
    squared = ((x - y) ** 2).sum(dim=-1)
    return kernel.fill(squared, torch.empty_like(squared)).sum(dim=-1, dtype=torch.float64)


def wild_mmd2_from_products(weights: Tensor, products: Tensor, paired_sum: Tensor, n_pairs: int) -> Tensor:
    """Float64 paired MMD² per column of :func:`wild_bootstrap_weights`.

    ``vᵀKv`` also holds the terms ``-2 e_i² k(x_i, y_i)`` of the pairs themselves, which the
    paired statistic ``sum_{i != j} e_i e_j h(i, j)`` leaves out; since ``e_i² = 1`` they are the
    same for every column, and ``paired_sum`` (:func:`paired_kernel_sum`) puts them back.
    """
    quad = (weights.to(products.dtype) * products).sum(dim=-2, dtype=torch.float64)
    return (quad + 2.0 * paired_sum.unsqueeze(-1)) / (n_pairs * (n_pairs - 1))


def permutation_mmd2(
    x: Tensor,
    y: Tensor,
    kernel: GaussianKernelSum,
    permutations: Tensor,
    *,
    tile_size: int = 1024,
    reference_block: Tensor | None = None,
) -> Tensor:
    """Unbiased MMD² of ``x`` vs ``y`` (first) and of every permuted split: shape ``(P + 1,)``, float64."""
    weights = permutation_weights(x.shape[0], permutations, dtype=x.dtype)
    products = kernel_products(
        torch.cat([x, y]), weights, kernel, tile_size=tile_size, reference_block=reference_block
    )
    return mmd2_from_products(weights, products, x.shape[0], y.shape[0])


def wild_bootstrap_mmd2(
    x: Tensor,
    y: Tensor,
    kernel: GaussianKernelSum,
    signs: Tensor,
    *,
    tile_size: int = 1024,
    reference_block: Tensor | None = None,
) -> Tensor:
    """Paired MMD² of ``x`` vs ``y`` (equal sizes; first) and for every row of ``signs``: shape ``(B + 1,)``."""
    weights = wild_bootstrap_weights(signs, dtype=x.dtype)
    products = kernel_products(
        torch.cat([x, y]), weights, kernel, tile_size=tile_size, reference_block=reference_block
    )
    return wild_mmd2_from_products(weights, products, paired_kernel_sum(x, y, kernel), y.shape[0])
