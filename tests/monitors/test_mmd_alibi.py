"""Agreement with alibi-detect 0.13's ``MMDDrift`` (PyTorch backend), run directly on the same arrays.

alibi-detect is the reference implementation these tests hold ours to.  Its Gaussian kernel
*averages* the bandwidths we sum, so its MMD² times 5 (the number of bandwidths) is ours.  It
draws permutations with ``torch.randperm`` from torch's global generator; seeding that generator
and replaying the same ``randperm`` calls from a ``torch.Generator`` gives us the very same
permutations, so p-values can be compared exactly, not just in distribution.

These tests need alibi-detect and the packages its import pulls in (see
``monitors.mmd.alibi_backend.INSTALL_HINT``); without them they fail with that hint.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from monitors.mmd.alibi_backend import AlibiDetectMMDMonitor, load_mmd_drift
from monitors.mmd.kernel import GaussianKernelSum
from monitors.mmd.permutation import permutation_mmd2
from monitors.mmd.pvalues import critical_value, max_exceedances, plus_one_p_value
from monitors.mmd_adversarial import MMDAdversarialMonitor

N_BANDWIDTHS = 5


@pytest.fixture(scope="module")
def mmd_drift():
    return load_mmd_drift()


@pytest.fixture
def one_thread():
    """alibi-detect's per-permutation loop works on small tensors, where two busy-waiting threads on a
    shared 2-core machine are ~8x slower than one; restore the caller's setting afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def gaussian(rows: int, dim: int, seed: int, shift: float = 0.0, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(rows, dim, generator=torch.Generator().manual_seed(seed), dtype=dtype) + shift


def standardize_pooled(reference: torch.Tensor, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The monitor's per-test scaling written out independently: mean and population std of the pooled rows."""
    pooled = torch.cat([reference, batch])
    mean, std = pooled.mean(0), pooled.std(0, correction=0)
    return ((reference - mean) / std).numpy(), ((batch - mean) / std).numpy()


def standardize(reference: torch.Tensor, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The monitor's feature scaling written out independently: reference mean and population std."""
    mean, std = reference.mean(0), reference.std(0, correction=0)
    return ((reference - mean) / std).numpy(), ((batch - mean) / std).numpy()


@pytest.mark.parametrize(("dtype", "tolerance"), [("float64", 1e-10), ("float32", 2e-6)])
def test_statistic_equals_alibi_mmd_drift_on_the_same_arrays(mmd_drift, dtype, tolerance):
    """Seeds 0/1; 400 vs 150 rows in 16-D; float64 agrees to 1e-10, float32 to 2e-6 (absolute, on MMD² ~ 0.05).

    The monitor scales by the pooled rows and takes their median distance as the bandwidth; both are
    written out here independently and handed to alibi-detect.
    """
    torch_dtype = getattr(torch, dtype)
    reference, batch = gaussian(400, 16, 0, dtype=torch_dtype), gaussian(150, 16, 1, shift=0.1, dtype=torch_dtype)
    monitor = MMDAdversarialMonitor(class_matching=False, seed=0, dtype=dtype).fit(reference)
    x, y = standardize_pooled(reference.double(), batch.double())
    sigma = float(torch.pdist(torch.from_numpy(np.concatenate([x, y]))).median())
    detector = mmd_drift(
        x.astype(dtype),
        backend="pytorch",
        sigma=np.asarray(GaussianKernelSum(sigma).bandwidths, dtype=dtype),
        configure_kernel_from_x_ref=False,
        n_permutations=10,
        device="cpu",
    )
    _, distance, _ = detector.score(y.astype(dtype))
    assert monitor.check(batch).score == pytest.approx(N_BANDWIDTHS * distance, abs=tolerance)


@pytest.mark.parametrize(("seed", "shift"), [(0, 0.0), (1, 0.0), (2, 0.15)])
def test_same_permutations_give_alibis_p_value_and_threshold(mmd_drift, seed, shift):
    """float64, 200 permutations replayed from seed ``seed``: exceedance count equal, MMD² to 1e-10, critical value to float32 rounding."""
    reference, batch = gaussian(120, 8, seed, dtype=torch.float64), gaussian(80, 8, seed + 10, shift, torch.float64)
    x, y = standardize(reference, batch)
    kernel = GaussianKernelSum(float(torch.pdist(torch.from_numpy(x)).median()))
    n_permutations, alpha = 200, 0.05
    j = max_exceedances(alpha, n_permutations)
    detector = mmd_drift(
        x,
        backend="pytorch",
        p_val=(j + 0.5) / n_permutations,
        sigma=np.asarray(kernel.bandwidths),
        configure_kernel_from_x_ref=False,
        n_permutations=n_permutations,
        device="cpu",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        p_alibi, distance, distance_threshold = detector.score(y)
    generator = torch.Generator().manual_seed(seed)
    permutations = torch.stack([torch.randperm(200, generator=generator) for _ in range(n_permutations)])
    stats = permutation_mmd2(torch.from_numpy(x), torch.from_numpy(y), kernel, permutations)
    assert float(stats[0]) == pytest.approx(N_BANDWIDTHS * distance, abs=1e-10)
    exceedances = round(float(plus_one_p_value(stats)) * (n_permutations + 1)) - 1
    assert exceedances == round(p_alibi * n_permutations)
    # alibi-detect stores the permuted MMD² as float32 (``torch.Tensor([...])``): equal to float32 rounding.
    assert float(critical_value(stats, alpha)) == pytest.approx(N_BANDWIDTHS * distance_threshold, rel=1e-7)


def test_alibi_backend_reports_on_our_scale_with_a_consistent_alarm(one_thread):
    reference = gaussian(300, 8, 0)
    with_alibi = AlibiDetectMMDMonitor(class_matching=False, seed=0).fit(reference)
    ours = MMDAdversarialMonitor(class_matching=False, seed=0).fit(reference)
    for seed, shift in [(1, 0.0), (2, 0.0), (3, 0.4), (4, 3.0)]:
        batch = gaussian(100, 8, seed, shift)
        result = with_alibi.check(batch)
        p = result.details["p_value"]
        assert 0 < p <= 1 and result.details["backend"] == "alibi_detect"
        assert result.alarm == (result.score > result.threshold) == (p <= 0.05)
        assert result.score == pytest.approx(ours.check(batch).score, abs=2e-6)
    assert with_alibi.check(gaussian(100, 8, 5, 3.0)).details["p_value"] == pytest.approx(1 / 101)


@pytest.mark.parametrize(("shift", "seed"), [(0.0, 0), (0.1, 1)])
def test_detection_rates_agree_with_alibi_within_binomial_noise(one_thread, shift, seed):
    """Seeds 0 and 1; 60 tests of 100 vs 100 in 16-D, clean (rate ~ alpha) and shifted by 0.1 (rate ~ 0.4).

    Both monitors share the seed, so every test uses the same rows in both and only the
    permutations differ.  Tolerances: the rates differ by at most 3 standard deviations of the
    difference of two independent binomial proportions (<= 3 sqrt(2 * 0.25 / 60) = 0.27, a loose
    bound since the tests are paired), and the mean |p_ours - p_alibi| is below 0.07.  Each
    p-value is a Monte-Carlo estimate with standard deviation sqrt(p (1 - p) / 100); for uniform
    p (the clean case) two independent estimates differ by 0.044 on average, and the mean of 60
    such differences has a standard deviation of about 0.005 (measured: 0.041 clean, 0.033 shifted).
    """
    reference, batch = gaussian(3000, 16, 10 + seed), gaussian(3000, 16, 20 + seed, shift)
    rates = {}
    for engine in (MMDAdversarialMonitor, AlibiDetectMMDMonitor):
        monitor = engine(class_matching=False, seed=seed).fit(reference)
        rates[engine.backend] = monitor.detection_rate(batch, n_tests=60)
    ours, theirs = rates["trustops"], rates["alibi_detect"]
    p_ours, p_theirs = np.array(ours.p_values), np.array(theirs.p_values)
    assert abs(ours.rate - theirs.rate) <= 3 * math.sqrt(2 * 0.25 / 60)
    assert np.abs(p_ours - p_theirs).mean() < 0.07
    if shift == 0.0:
        assert ours.rejections <= 10 and theirs.rejections <= 10  # 99.9 % binomial range of Binomial(60, 5/101)


def test_alibi_backend_refuses_several_layers():
    with pytest.raises(ValueError, match="tests one layer at a time"):
        AlibiDetectMMDMonitor(class_matching=False).fit(
            {"a": gaussian(20, 2, 0), "b": gaussian(20, 2, 1)}
        )
