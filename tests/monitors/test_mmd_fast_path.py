"""The fast MMD paths (tiled pooled kernel, batched tests, squaring-chain kernel) against the naive reference.

All comparisons run the fast path in float64 so that the only differences are summation order:
statistics must agree to 1e-9 absolute (kernel values are at most 5, so MMD² is O(1)), and
p-values must agree exactly except where a resampled statistic lies within that tolerance of the
observed one (a tie the two summation orders may break differently).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from monitors.mmd.batched import batched_mmd2, batched_wild_mmd2, chunks_of_tests
from monitors.mmd.kernel import GaussianKernelSum, median_bandwidth
from monitors.mmd.permutation import (
    draw_permutations,
    draw_signs,
    draw_stratified_permutations,
    permutation_mmd2,
    permutation_weights,
    reference_kernel,
    wild_bootstrap_mmd2,
    wild_bootstrap_weights,
)
from monitors.mmd.pvalues import critical_value, fisher_combination, max_exceedances, min_draws, plus_one_p_value
from tests.monitors.test_mmd_naive import (
    naive_kernel,
    naive_mmd2,
    naive_p_value,
    naive_permutation_stats,
    naive_wild_stats,
)

TOLERANCE = 1e-9

values = st.floats(min_value=-10, max_value=10, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def two_samples(draw, *, equal_sizes: bool = False):
    d = draw(st.integers(1, 4))
    n = draw(st.integers(2, 12))
    m = n if equal_sizes else draw(st.integers(2, 12))
    x = torch.from_numpy(draw(arrays(np.float64, (n, d), elements=values)))
    y = torch.from_numpy(draw(arrays(np.float64, (m, d), elements=values)))
    sigma = draw(st.floats(min_value=0.2, max_value=20))
    return x, y, GaussianKernelSum(sigma)


def assert_same_test(fast: torch.Tensor, naive: torch.Tensor) -> None:
    """Statistics within TOLERANCE; p-value counts equal up to ties within TOLERANCE."""
    assert fast.shape == naive.shape
    assert torch.allclose(fast, naive, rtol=0, atol=TOLERANCE), (fast - naive).abs().max()
    observed, resampled = float(naive[0]), naive[1:]
    at_least = int((resampled > observed + TOLERANCE).sum())
    at_most = int((resampled >= observed - TOLERANCE).sum())
    n_draws = len(resampled)
    fast_count = round(float(plus_one_p_value(fast)) * (n_draws + 1)) - 1
    assert at_least <= fast_count <= at_most
    if at_least == at_most:
        assert float(plus_one_p_value(fast)) == naive_p_value(naive)


@given(two_samples(), st.integers(1, 30), st.integers(1, 7), st.integers(0, 2**32 - 1), st.booleans())
def test_tiled_permutation_path_equals_naive_path(samples, n_permutations, tile_size, seed, cached):
    x, y, kernel = samples
    permutations = draw_permutations(len(x) + len(y), n_permutations, torch.Generator().manual_seed(seed))
    block = reference_kernel(x, kernel, tile_size=tile_size) if cached else None
    fast = permutation_mmd2(x, y, kernel, permutations, tile_size=tile_size, reference_block=block)
    assert_same_test(fast, naive_permutation_stats(x, y, kernel.sigma, permutations))


@given(two_samples(equal_sizes=True), st.integers(1, 30), st.integers(1, 7), st.integers(0, 2**32 - 1))
def test_tiled_wild_bootstrap_path_equals_naive_path(samples, n_draws, tile_size, seed):
    x, y, kernel = samples
    signs = draw_signs(n_draws, len(y), torch.Generator().manual_seed(seed))
    fast = wild_bootstrap_mmd2(x, y, kernel, signs, tile_size=tile_size)
    assert_same_test(fast, naive_wild_stats(x, y, kernel.sigma, signs))


@given(two_samples(equal_sizes=True), st.integers(1, 4), st.integers(1, 20), st.integers(0, 2**32 - 1), st.booleans())
def test_batched_path_equals_naive_path_for_every_test(samples, n_tests, n_draws, seed, cached):
    x0, y0, kernel = samples
    generator = torch.Generator().manual_seed(seed)
    x = torch.stack([x0[torch.randperm(len(x0), generator=generator)] for _ in range(n_tests)])
    y = torch.stack([y0[torch.randperm(len(y0), generator=generator)] + t for t in range(n_tests)])
    n = x.shape[1]
    permutations = draw_permutations(2 * n, n_tests * n_draws, generator).view(n_tests, n_draws, 2 * n)
    blocks = torch.stack([reference_kernel(xt, kernel) for xt in x]) if cached else None
    stats = batched_mmd2(x, y, kernel, permutation_weights(n, permutations, dtype=x.dtype), reference_blocks=blocks)
    signs = draw_signs(n_tests * n_draws, n, generator).view(n_tests, n_draws, n)
    wild = batched_wild_mmd2(x, y, kernel, wild_bootstrap_weights(signs, dtype=x.dtype), reference_blocks=blocks)
    for t in range(n_tests):
        assert_same_test(stats[t], naive_permutation_stats(x[t], y[t], kernel.sigma, permutations[t]))
        assert_same_test(wild[t], naive_wild_stats(x[t], y[t], kernel.sigma, signs[t]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_and_naive_p_values_are_identical_on_continuous_data(seed):
    """Seeded Gaussian data (no ties): p-values and critical values agree exactly / to 1e-12."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(40, 5, generator=generator, dtype=torch.float64)
    y = torch.randn(30, 5, generator=generator, dtype=torch.float64) + 0.2
    kernel = GaussianKernelSum(median_bandwidth(x))
    permutations = draw_permutations(70, 199, generator)
    fast = permutation_mmd2(x, y, kernel, permutations, tile_size=16)
    naive = naive_permutation_stats(x, y, kernel.sigma, permutations)
    assert float(plus_one_p_value(fast)) == naive_p_value(naive)
    assert math.isclose(float(critical_value(fast, 0.05)), float(critical_value(naive, 0.05)), abs_tol=1e-12)


def test_float32_path_stays_close_to_float64():
    """The default float32 path (seed 0, 2,000 vs 2,000 rows, 8 tiles a side): MMD² within 2e-5 of float64."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 32, generator=generator, dtype=torch.float64)
    y = torch.randn(2000, 32, generator=generator, dtype=torch.float64) * 1.05
    kernel = GaussianKernelSum(median_bandwidth(x))
    permutations = draw_permutations(4000, 20, generator)
    exact = permutation_mmd2(x, y, kernel, permutations, tile_size=512)
    fast = permutation_mmd2(x.float(), y.float(), kernel, permutations, tile_size=512)
    assert torch.allclose(fast, exact, rtol=0, atol=2e-5), (fast - exact).abs().max()


@given(two_samples())
def test_mmd2_is_symmetric_in_its_two_samples(samples):
    x, y, kernel = samples
    none = torch.empty(0, len(x) + len(y), dtype=torch.long)
    forward = permutation_mmd2(x, y, kernel, none)[0]
    backward = permutation_mmd2(y, x, kernel, none)[0]
    assert math.isclose(float(forward), float(backward), abs_tol=TOLERANCE)
    assert math.isclose(float(forward), naive_mmd2(y, x, kernel.sigma), abs_tol=TOLERANCE)


@given(two_samples())
def test_mmd2_of_a_sample_against_itself_is_about_zero(samples):
    """Unbiased MMD²(x, x) = -2 (k(0) - mean_{i != j} k(x_i, x_j)) / n: in [-2 k(0) / n, 0]; biased MMD² is 0."""
    x, _, kernel = samples
    n = len(x)
    unbiased = float(permutation_mmd2(x, x.clone(), kernel, torch.empty(0, 2 * n, dtype=torch.long))[0])
    assert -2 * kernel.diagonal / n - TOLERANCE <= unbiased <= TOLERANCE
    k = naive_kernel(x, x, kernel.sigma)
    biased = float(k.mean() + k.mean() - 2 * k.mean())
    assert abs(biased) <= TOLERANCE
    within = (k.sum() - k.diagonal().sum()) / (n * (n - 1))
    assert math.isclose(unbiased, float(-2 * (kernel.diagonal - within) / n), abs_tol=TOLERANCE)


@given(two_samples())
def test_squaring_chain_kernel_equals_one_exp_per_bandwidth(samples):
    x, y, kernel = samples
    assert torch.allclose(kernel.matrix(x, y), naive_kernel(x, y, kernel.sigma), rtol=1e-10, atol=1e-12)
    assert kernel.bandwidths == tuple(kernel.sigma * 2.0**k for k in range(-2, 3))


@given(arrays(np.float64, st.integers(2, 60), elements=values), st.floats(0.001, 0.999))
def test_critical_value_rule_agrees_with_the_p_value_rule(raw, alpha):
    """``S_0 > critical_value  <=>  p <= alpha``, including ties (values are drawn from a small grid too)."""
    for stats in (torch.from_numpy(raw), torch.from_numpy(np.round(raw))):
        p = float(plus_one_p_value(stats))
        assert 0 < p <= 1
        assert (float(stats[0]) > float(critical_value(stats, alpha))) == (p <= alpha)
        assert p == naive_p_value(stats)


@given(st.floats(0.0005, 0.9995), st.integers(1, 5000))
def test_max_exceedances_is_the_largest_count_meeting_alpha(alpha, n_draws):
    j = max_exceedances(alpha, n_draws)
    assert j == -1 or (1 + j) / (n_draws + 1) <= alpha
    assert j == n_draws or (2 + j) / (n_draws + 1) > alpha
    smallest = min_draws(alpha)
    assert 1 / (smallest + 1) <= alpha and (smallest == 1 or 1 / smallest > alpha)


@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(2, 40)), elements=values))
def test_fisher_combination_of_layer_p_values(raw):
    """Column 0's combined value is ``-2 sum log p_layer``; with one layer it orders columns like the statistic."""
    stats = torch.from_numpy(raw)
    combined = fisher_combination(stats)
    p_layers = torch.tensor([naive_p_value(row) for row in stats], dtype=torch.float64)
    assert math.isclose(float(combined[0]), float(-2 * p_layers.log().sum()), rel_tol=1e-12)
    if stats.shape[0] == 1:
        assert float(plus_one_p_value(combined)) == naive_p_value(stats[0])


@given(st.lists(st.integers(-3, 3), min_size=1, max_size=30), st.integers(1, 10), st.integers(0, 2**32 - 1))
def test_stratified_permutations_only_move_rows_within_their_class(labels, n_permutations, seed):
    labels = torch.tensor(labels)
    batch = torch.stack([labels, labels.flip(0)])
    permutations = draw_stratified_permutations(batch, n_permutations, torch.Generator().manual_seed(seed))
    assert permutations.shape == (2, n_permutations, len(labels))
    for t in range(2):
        assert (permutations[t].sort(dim=1).values == torch.arange(len(labels))).all()
        assert (batch[t][permutations[t]] == batch[t]).all()


def test_stratified_permutations_are_uniform_within_a_class():
    """Seed 0, 20,000 draws over labels [0, 1, 0, 0]: each class-0 row reaches each class-0 position
    with frequency 1/3 within 0.02 (about 5 binomial standard deviations of 0.0033)."""
    permutations = draw_stratified_permutations(torch.tensor([0, 1, 0, 0]), 20000, torch.Generator().manual_seed(0))
    for position in (0, 2, 3):
        frequencies = torch.bincount(permutations[:, position], minlength=4).double() / 20000
        assert frequencies[1] == 0
        assert torch.allclose(frequencies[[0, 2, 3]], torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.02)


def test_chunks_cover_every_test_once_within_budget():
    chunks = list(chunks_of_tests(100, 200, 4, budget=200 * 200 * 4 * 7))
    assert [c.stop - c.start for c in chunks] == [7] * 14 + [2]
    assert chunks[0].start == 0 and chunks[-1].stop == 100
