"""Statistical behaviour of the detector: false-alarm rate near alpha, power on shifted data, class matching.

Tolerances come from the binomial distribution, not from tuning: with the +1-corrected p-value
and P = 100 permutations, one permutation test on exchangeable data rejects at alpha = 0.05
with probability exactly floor(0.05 * 101) / 101 = 5/101.  The repeated tests of one detection
rate share the two data pools, so their rejections are slightly dependent; the 99.9 % binomial
ranges below leave room for that.
"""

from __future__ import annotations

import pytest
import torch
from scipy.stats import binom

from monitors.mmd_adversarial import MMDAdversarialMonitor

LEVEL = 5 / 101  # exact rejection probability of one test at alpha = 0.05 with 100 permutations
SEEDS = (0, 1, 2)


def binomial_range(n_tests: int, probability: float = LEVEL, coverage: float = 0.999) -> tuple[int, int]:
    tail = (1 - coverage) / 2
    return int(binom.ppf(tail, n_tests, probability)), int(binom.ppf(1 - tail, n_tests, probability))


def mixture(rows: int, seed: int, *, weights=(0.25, 0.25, 0.25, 0.25), shift: float = 0.0):
    """16-D activations of 4 classes (class means 3 units apart on axis c), with their class labels."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.multinomial(torch.tensor(weights), rows, replacement=True, generator=generator)
    x = torch.randn(rows, 16, generator=generator)
    x[torch.arange(rows), labels] += 3.0
    return x + shift, labels


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "class_matching"), [("permutation", True), ("permutation", False), ("wild_bootstrap", True)]
)
def test_detection_rate_on_clean_data_stays_near_alpha(method, class_matching):
    """Seeds 0, 1, 2 (both pools drawn afresh per seed); 100 tests of 100 vs 100 each.

    Each seed's rejections lie in the 99.9 % binomial range of Binomial(100, 5/101), i.e. [0, 13],
    and the 300 tests together in that of Binomial(300, 5/101), [4, 29].  The wild bootstrap is
    only asymptotically exact; at 100 pairs it is held to the same ranges.  (Before class-matched
    tests permuted within classes, they rejected 4 of 300 here: the pooled range caught it.)
    """
    total = 0
    for seed in SEEDS:
        reference, labels = mixture(3000, seed)
        held_out, held_out_labels = mixture(3000, 100 + seed)
        monitor = MMDAdversarialMonitor(seed=seed, method=method, class_matching=class_matching)
        monitor.fit(reference, predictions=labels)
        rate = monitor.baseline_rate(held_out, predictions=held_out_labels)
        low, high = binomial_range(100)
        assert low <= rate.rejections <= high, (seed, rate.rate)
        assert rate.n_tests == 100 and len(rate.p_values) == 100 and rate.rate == rate.rejections / 100
        assert all(0 < p <= 1 for p in rate.p_values)
        total += rate.rejections
    low, high = binomial_range(300)
    assert low <= total <= high, total / 300


@pytest.mark.slow
def test_detection_rate_on_shifted_data_is_high():
    """Seed 0: every unit shifted by 0.5 (in units of the within-class spread); at least 95 of 100 tests reject."""
    reference, labels = mixture(3000, 0)
    shifted, shifted_labels = mixture(3000, 1, shift=0.5)
    monitor = MMDAdversarialMonitor(seed=0).fit(reference, predictions=labels)
    rate = monitor.detection_rate(shifted, predictions=shifted_labels)
    assert rate.rejections >= 95
    assert rate.confidence_interval[0] <= rate.rate <= rate.confidence_interval[1]


@pytest.mark.slow
def test_class_matching_ignores_a_change_of_class_mix_only():
    """Seed 0: the batch is 70 % class 0 but each class looks as in the reference.

    Class-matched, the false-alarm rate stays in the 99.9 % binomial range of alpha ([0, 13] of 100);
    unmatched, the class mix alone makes at least 90 of 100 tests reject.
    """
    reference, labels = mixture(3000, 0)
    skewed, skewed_labels = mixture(3000, 1, weights=(0.7, 0.1, 0.1, 0.1))
    matched = MMDAdversarialMonitor(seed=0).fit(reference, predictions=labels)
    unmatched = MMDAdversarialMonitor(seed=0, class_matching=False).fit(reference)
    low, high = binomial_range(100)
    assert low <= matched.detection_rate(skewed, predictions=skewed_labels).rejections <= high
    assert unmatched.detection_rate(skewed).rejections >= 90


@pytest.mark.slow
def test_fisher_combination_of_dependent_layers_keeps_the_level():
    """Seeds 0, 1, 2; two strongly dependent layers (the second is a noisy projection of the first).

    Fisher's chi-squared reference would be anti-conservative here; calibrating the combined
    statistic with the shared permutations keeps the 300 tests in the 99.9 % binomial range
    of Binomial(300, 5/101), [4, 29].
    """
    total = 0
    for seed in SEEDS:
        generator = torch.Generator().manual_seed(seed)
        reference, held_out = torch.randn(2000, 16, generator=generator), torch.randn(2000, 16, generator=generator)
        projection = torch.randn(16, 6, generator=generator)

        def layers(x):
            return {"fc1": x, "fc2": torch.relu(x @ projection) + 0.1 * torch.randn(len(x), 6, generator=generator)}

        monitor = MMDAdversarialMonitor(seed=seed, class_matching=False).fit(layers(reference))
        total += monitor.baseline_rate(layers(held_out)).rejections
    low, high = binomial_range(300)
    assert low <= total <= high, total / 300
