"""The permutation-calibrated multi-layer combination: level, power, and why naive Fisher is not enough.

Seeds are fixed (generator seeds 0, 1, 2 per test), so each rate below is one deterministic number;
the tolerances say how far an honest level-0.05 test could land from 0.05 by chance.

- Level: 200 null repetitions, two *dependent* layers (the second a noisy non-linear function of
  the first), 99 permutations, alpha = 0.05.  Every combination must reject at most
  0.05 + 2.5 binomial standard deviations = 0.05 + 2.5 * sqrt(0.05 * 0.95 / 200) = 0.089.
- Power: the shift is split between two independent layers; over 100 shifted repetitions the
  combination must reject at least 10 points more often than the better single layer.
- Naive Fisher: with two near-identical layers under the null its chi-squared p-value rejects
  about 9% (theory for identical layers: P(p <= e^{-9.49/4}) = 0.093); the permutation
  combination on the same statistics stays at the level.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from trustops.detection.combination import (
    COMBINATIONS,
    combine,
    combined_p_value,
    combined_test,
    draw_joint_permutations,
    layer_statistics,
    naive_fisher_p_value,
)
from monitors.mmd.pvalues import plus_one_p_value

ALPHA = 0.05
N_PERMUTATIONS = 99
LEVEL_REPS = 200
LEVEL_TOLERANCE = ALPHA + 2.5 * math.sqrt(ALPHA * (1 - ALPHA) / LEVEL_REPS)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny kernels: threads only add contention on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _dependent_layers(base: torch.Tensor, mixing: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {"block": base, "penultimate": torch.tanh(base @ mixing) + 0.3 * torch.randn(base.shape[0], mixing.shape[1], generator=generator)}


def _rejections(p_values: list[float]) -> float:
    return sum(p <= ALPHA for p in p_values) / len(p_values)


@pytest.mark.parametrize("class_matched", [False, True], ids=["free", "within_class"])
def test_every_combination_holds_its_level_on_dependent_layers(class_matched):
    generator = torch.Generator().manual_seed(0)
    mixing = torch.randn(6, 4, generator=generator)
    centres = 3 * torch.randn(3, 6, generator=generator)
    rejected = {method: [] for method in COMBINATIONS}
    for _ in range(LEVEL_REPS):
        # Strongly class-clustered rows.  Class-matched: both sides hold the same class mix, and
        # permutations stay within classes; free: each side draws its classes independently.
        if class_matched:
            x_labels = y_labels = torch.arange(50) % 3
        else:
            x_labels, y_labels = (torch.randint(0, 3, (50,), generator=generator) for _ in range(2))
        x = centres[x_labels] + torch.randn(50, 6, generator=generator)
        y = centres[y_labels] + torch.randn(50, 6, generator=generator)
        pooled = torch.cat([x_labels, y_labels]) if class_matched else None
        permutations = draw_joint_permutations(50, 50, N_PERMUTATIONS, labels=pooled, generator=generator)
        stats = layer_statistics(_dependent_layers(x, mixing, generator), _dependent_layers(y, mixing, generator), permutations)
        for method in COMBINATIONS:
            rejected[method].append(float(combined_p_value(stats, method)))
    rates = {method: _rejections(p) for method, p in rejected.items()}
    assert all(rate <= LEVEL_TOLERANCE for rate in rates.values()), rates
    assert all(rate > 0 for rate in rates.values()), rates  # a test that never rejects would pass trivially


def test_a_shift_split_across_two_layers_is_found_more_often_combined():
    generator = torch.Generator().manual_seed(1)
    p = {"block": [], "penultimate": [], "combined": []}
    for _ in range(100):
        reference = {"block": torch.randn(50, 4, generator=generator), "penultimate": torch.randn(50, 4, generator=generator)}
        batch = {"block": torch.randn(50, 4, generator=generator) + 0.35, "penultimate": torch.randn(50, 4, generator=generator) + 0.35}
        result = combined_test(reference, batch, method="fisher", n_permutations=N_PERMUTATIONS, generator=generator)
        p["combined"].append(result.p_value)
        for layer, value in result.layer_p_values.items():
            p[layer].append(value)
    rates = {name: _rejections(values) for name, values in p.items()}
    assert rates["combined"] >= max(rates["block"], rates["penultimate"]) + 0.10, rates


def test_naive_fisher_over_rejects_dependent_layers_where_the_permutation_combination_does_not():
    generator = torch.Generator().manual_seed(2)
    naive, calibrated = [], []
    for _ in range(400):
        x, y = torch.randn(40, 3, generator=generator), torch.randn(40, 3, generator=generator)
        reference = {"block": x, "penultimate": x + 0.01 * torch.randn(40, 3, generator=generator)}
        batch = {"block": y, "penultimate": y + 0.01 * torch.randn(40, 3, generator=generator)}
        result = combined_test(reference, batch, n_permutations=N_PERMUTATIONS, generator=generator)
        naive.append(result.naive_fisher_p_value)
        calibrated.append(result.p_value)
    naive_rate, calibrated_rate = _rejections(naive), _rejections(calibrated)
    tolerance = ALPHA + 2.5 * math.sqrt(ALPHA * (1 - ALPHA) / 400)
    assert calibrated_rate <= tolerance
    assert naive_rate > tolerance and naive_rate > calibrated_rate + 0.02, (naive_rate, calibrated_rate)


def test_within_class_permutations_keep_every_row_in_its_class():
    labels = torch.tensor([0, 1, 1, 2, 0, 2, 1, 0])
    permutations = draw_joint_permutations(4, 4, 30, labels=labels, generator=torch.Generator().manual_seed(0))
    assert torch.equal(labels[permutations], labels.expand(30, -1))
    assert all(sorted(row.tolist()) == list(range(8)) for row in permutations)


@given(st.integers(min_value=1, max_value=4), st.integers(min_value=2, max_value=30), st.integers(min_value=0, max_value=2**31))
def test_combined_p_values_are_valid_and_ignore_layer_order(n_layers, n_draws, seed):
    stats = torch.rand(n_layers, n_draws + 1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    for method in COMBINATIONS:
        p = float(combined_p_value(stats, method))
        assert 1 / (n_draws + 1) <= p <= 1
        assert torch.allclose(combine(stats, method), combine(stats.flip(0), method))
    if n_layers == 1:  # one layer: Fisher and min-p are monotone in its own p-value, so they reproduce it
        assert float(combined_p_value(stats, "fisher")) == float(plus_one_p_value(stats[0]))
        assert float(combined_p_value(stats, "min_p")) == float(plus_one_p_value(stats[0]))


def test_naive_fisher_matches_the_chi_squared_formula_for_two_layers():
    # For 2 layers the chi-squared(4) tail has a closed form: e^{-s/2} (1 + s/2) with s = -2 log(p1 p2).
    p = torch.tensor([[0.2, 0.3], [0.01, 0.9]], dtype=torch.float64)
    s = -2 * p.log().sum(dim=-1)
    assert torch.allclose(naive_fisher_p_value(p), torch.exp(-s / 2) * (1 + s / 2))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda x: combine(torch.zeros(2, 5), "mean"), "`method` must be one of fisher, min_p, sum_z. Got: 'mean'"),
        (lambda x: combined_test({"a": x}, {"b": x}), "must name the same layers"),
        (lambda x: combined_test({"a": x}, {"a": x}, reference_labels=torch.zeros(10)), "Pass both"),
        (lambda x: draw_joint_permutations(10, 10, 5, labels=torch.zeros(7)), r"must have shape \(20,\)"),
    ],
)
def test_bad_inputs_are_refused_with_a_clear_message(call, message):
    with pytest.raises(ValueError, match=message):
        call(torch.randn(10, 2, generator=torch.Generator().manual_seed(0)))


def test_the_docstring_example_runs():
    import doctest

    import trustops.detection.combination as module

    assert doctest.testmod(module).failed == 0
