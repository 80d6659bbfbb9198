"""MMDAdversarialMonitor: the Monitor contract, options, state, per-sample scores and bad input."""

from __future__ import annotations

import doctest
import io
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import monitors.mmd_adversarial
from monitors.errors import (
    MonitorConfigError,
    MonitorDependencyError,
    MonitorInputError,
    MonitorNotFittedError,
)
from monitors.mmd.class_matching import ClassIndex, draw_matched, largest_matched_size, quotas
from monitors.mmd.pvalues import min_draws
from monitors.mmd_adversarial import MMDAdversarialMonitor
from tests.monitors.test_mmd_naive import naive_mmd2


def gaussian(rows: int, dim: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(rows, dim, generator=torch.Generator().manual_seed(seed)) + shift


def classes(rows: int, n_classes: int, seed: int) -> torch.Tensor:
    return torch.randint(0, n_classes, (rows,), generator=torch.Generator().manual_seed(seed))


def plain(**options) -> MMDAdversarialMonitor:
    return MMDAdversarialMonitor(class_matching=False, seed=0, **options)


def test_docstring_example_runs():
    results = doctest.testmod(monitors.mmd_adversarial, verbose=False)
    assert results.attempted > 0 and results.failed == 0


def test_name_is_the_entry_point_name():
    assert MMDAdversarialMonitor.name == "mmd_adversarial"


values = st.floats(min_value=-5, max_value=5, allow_nan=False, allow_infinity=False, width=32)


@given(
    reference=arrays(np.float32, st.tuples(st.integers(2, 25), st.integers(1, 4)), elements=values),
    batch_rows=st.integers(2, 25),
    shift=st.floats(-2, 2),
    alpha=st.floats(0.01, 0.5),
    extra=st.integers(0, 40),
    method=st.sampled_from(["permutation", "wild_bootstrap"]),
    seed=st.integers(0, 2**16),
)
def test_alarm_agrees_with_score_threshold_and_p_value(reference, batch_rows, shift, alpha, extra, method, seed):
    assume(len(np.unique(reference, axis=0)) > 1)
    batch_rows = min(batch_rows, len(reference)) if method == "wild_bootstrap" else batch_rows
    assume(batch_rows >= 2)
    batch = np.roll(reference, 1, axis=0)[:batch_rows] * 1.5 + shift
    if len(batch) < batch_rows:
        batch = np.concatenate([batch, batch])[:batch_rows]
    monitor = MMDAdversarialMonitor(
        alpha=alpha, n_permutations=min_draws(alpha) + extra, method=method, class_matching=False, seed=seed
    ).fit(reference)
    try:
        result = monitor.check(batch)
    except MonitorInputError as error:  # no spread to scale by, or no distinct rows to set a bandwidth from
        assert "reference standard deviations" in str(error) or "rows are all equal" in str(error)
        return
    p = result.details["p_value"]
    assert 0 < p <= 1
    assert result.alarm == (result.score > result.threshold) == (p <= alpha)
    assert math.isfinite(result.score)


def test_p_value_never_reaches_zero_on_a_huge_shift():
    result = plain().fit(gaussian(200, 4, 0)).check(gaussian(50, 4, 1, shift=50.0))
    assert result.alarm and result.details["p_value"] == pytest.approx(1 / 101)


def test_result_details_are_plain_values():
    result = plain().fit(gaussian(100, 4, 0)).check(gaussian(40, 4, 1))
    assert all(isinstance(v, (int, float, str, bool)) for v in result.details.values())
    assert result.details["mmd2"] == result.score
    assert result.details["n_reference"] == 100 and result.details["n_batch"] == 40


def test_numpy_and_torch_inputs_give_the_same_result():
    reference, batch = gaussian(120, 6, 0), gaussian(60, 6, 1, shift=0.2)
    from_torch = plain().fit(reference).check(batch)
    from_numpy = plain().fit(reference.numpy()).check(batch.numpy().astype(np.float64))
    assert from_torch == from_numpy


def test_same_seed_same_result_and_state_dict_round_trip():
    reference, batch = gaussian(150, 5, 0), gaussian(60, 5, 1, shift=0.15)
    labels, batch_labels = classes(150, 3, 2), classes(60, 3, 3)
    first = MMDAdversarialMonitor(seed=7).fit(reference, predictions=labels)
    second = MMDAdversarialMonitor(seed=7).fit(reference, predictions=labels)
    assert first.check(batch, predictions=batch_labels) == second.check(batch, predictions=batch_labels)

    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    restored = MMDAdversarialMonitor(alpha=0.2, class_matching=False)
    restored.load_state_dict(torch.load(buffer))
    for _ in range(2):  # the generator state travels too, so the *next* results match
        assert restored.check(batch, predictions=batch_labels) == first.check(batch, predictions=batch_labels)
    assert restored.detection_rate(batch, predictions=batch_labels, n_tests=20, n_samples=30) == first.detection_rate(
        batch, predictions=batch_labels, n_tests=20, n_samples=30
    )
    assert restored.config == first.config and restored.bandwidths == first.bandwidths


def test_state_dict_of_an_unfitted_monitor_round_trips():
    monitor = MMDAdversarialMonitor(alpha=0.1, n_permutations=50, class_matching=False, seed=3)
    restored = MMDAdversarialMonitor()
    restored.load_state_dict(monitor.state_dict())
    assert restored.config == monitor.config and restored.layers == ()
    with pytest.raises(MonitorNotFittedError):
        restored.check(gaussian(10, 2, 0))


def test_sample_scores_sum_to_the_naive_mmd2_on_the_reference_scaling():
    """The per-sample scores use the scaling and median bandwidth ``fit`` learned from the reference."""
    reference, batch = gaussian(60, 3, 0) * 4 + 2, gaussian(30, 3, 1) * 4 + 3
    monitor = plain(dtype="float64").fit(reference)
    mean, std = reference.double().mean(0), reference.double().std(0, correction=0)
    sigma = monitor.bandwidths["activations"][2]
    expected = naive_mmd2((reference - mean) / std, (batch - mean) / std, sigma)
    assert monitor.sample_scores(batch).contribution.sum() == pytest.approx(expected, abs=1e-12)
    distances = torch.pdist((reference.double() - mean) / std)
    assert sigma == pytest.approx(float(distances.median()), rel=1e-12)


def test_several_layers_are_combined_and_reported():
    reference = {"fc1": gaussian(200, 6, 0), "fc2": gaussian(200, 3, 1)}
    batch = {"fc1": gaussian(80, 6, 2, shift=0.6), "fc2": gaussian(80, 3, 3)}
    monitor = plain().fit(reference)
    result = monitor.check(batch)
    assert monitor.layers == ("fc1", "fc2")
    assert result.details["statistic"] == "fisher_combination"
    assert result.details["p_value/fc1"] <= 0.05 and result.alarm
    assert result.score == pytest.approx(
        -2 * (math.log(result.details["p_value/fc1"]) + math.log(result.details["p_value/fc2"]))
    )
    clean = monitor.check({"fc1": gaussian(80, 6, 4), "fc2": gaussian(80, 3, 5)})
    assert clean.alarm == (clean.details["p_value"] <= 0.05) == (clean.score > clean.threshold)


def test_class_matching_draws_the_batch_class_mix():
    reference_labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    batch_labels = torch.tensor([0] * 2 + [1] * 6 + [2] * 2)
    index = ClassIndex.from_predictions(reference_labels)
    size = largest_matched_size(index, batch_labels)
    assert size == 50  # class 1 limits it: 30 rows at a share of 0.6
    rows = draw_matched(index, batch_labels, size, torch.Generator().manual_seed(0))
    assert rows.unique().numel() == size
    assert torch.bincount(reference_labels[rows]).tolist() == [10, 30, 10]
    assert quotas({0: 1, 1: 1, 2: 1}, 10) == {0: 4, 1: 3, 2: 3}


def test_class_matched_check_uses_the_matched_reference_sample():
    reference, labels = gaussian(300, 4, 0), classes(300, 3, 1)
    batch, batch_labels = gaussian(60, 4, 2), torch.zeros(60, dtype=torch.long)
    result = MMDAdversarialMonitor(seed=0).fit(reference, predictions=labels).check(batch, predictions=batch_labels)
    assert result.details["class_matched"] and result.details["n_reference"] == int((labels == 0).sum())


@pytest.mark.parametrize("method", ["permutation", "wild_bootstrap"])
def test_class_matched_checks_flag_a_shift_within_classes(method):
    """Seed 0: 3 classes; a shift of 1.0 on every feature of 80 batch rows gives the smallest p-value, 1/101."""
    reference, labels = gaussian(400, 4, 0), classes(400, 3, 1)
    monitor = MMDAdversarialMonitor(seed=0, method=method).fit(reference, predictions=labels)
    shifted = monitor.check(gaussian(80, 4, 2, shift=1.0), predictions=classes(80, 3, 3))
    clean = monitor.check(gaussian(80, 4, 4), predictions=classes(80, 3, 5))
    assert shifted.alarm and shifted.details["p_value"] == pytest.approx(1 / 101)
    for result in (shifted, clean):
        assert result.alarm == (result.score > result.threshold) == (result.details["p_value"] <= 0.05)


def test_sample_scores_decompose_the_statistic_and_rank_outliers_first():
    reference, batch = gaussian(200, 4, 0), gaussian(50, 4, 1)
    batch[[3, 17]] += 8.0  # two far-off samples
    labels = classes(50, 4, 2)
    monitor = plain(dtype="float64").fit(reference)  # the scores use the reference's scaling
    scores = monitor.sample_scores(batch, predictions=labels)
    mean, std = reference.double().mean(0), reference.double().std(0, correction=0)
    expected = naive_mmd2((reference - mean) / std, (batch - mean) / std, monitor.bandwidths["activations"][2])
    assert scores.contribution.sum() == pytest.approx(expected, abs=1e-12)
    assert scores.mmd2 == pytest.approx(scores.contribution.sum())
    top = monitor.top_k(batch, 2, predictions=labels)
    assert {row[0] for row in top} == {3, 17}
    assert [row[1] for row in top] == [int(labels[row[0]]) for row in top]
    assert top[0][2] >= top[1][2]
    assert len(scores.top_k(100, by="witness")) == 50 and scores.top_k(1, by="mean_embedding")[0][1] is not None


def test_sample_scores_match_their_definitions():
    reference, batch = gaussian(30, 2, 0), gaussian(12, 2, 1, shift=0.5)
    monitor = plain(dtype="float64").fit(reference)
    scores = monitor.sample_scores(batch)
    mean, std = reference.double().mean(0), reference.double().std(0, correction=0)
    x, y, sigma = (reference - mean) / std, (batch - mean) / std, monitor.bandwidths["activations"][2]
    from tests.monitors.test_mmd_naive import naive_kernel

    kxy, kyy = naive_kernel(x, y, sigma), naive_kernel(y, y, sigma)
    for j in range(len(y)):
        others = torch.cat([kyy[j, :j], kyy[j, j + 1 :]])
        witness = float(others.mean() - kxy[:, j].mean())
        variance = float(kxy[:, j].var(correction=0) / len(x) + others.var(correction=0) / (len(y) - 1))
        assert scores.witness[j] == pytest.approx(witness, abs=1e-12)
        assert scores.mean_embedding[j] == pytest.approx(witness**2 / variance, rel=1e-9)


def test_optional_backend_is_not_imported_with_the_monitor():
    code = "import sys, monitors.mmd_adversarial; print('alibi_detect' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "False"


def test_missing_alibi_detect_fails_only_when_chosen_with_an_install_hint(monkeypatch):
    # A None entry in sys.modules makes `import` raise ImportError, exactly as if the package were absent.
    monkeypatch.setitem(sys.modules, "alibi_detect", None)
    monkeypatch.setitem(sys.modules, "alibi_detect.cd", None)
    plain().fit(gaussian(20, 2, 0)).check(gaussian(10, 2, 1))  # the default backend does not need it
    from monitors.mmd.alibi_backend import AlibiDetectMMDMonitor  # the seam imports, alibi-detect itself does not

    with pytest.raises(MonitorDependencyError, match="pip install --no-deps --target .venv/alibi-reference -r requirements/alibi-reference.txt") as error:
        AlibiDetectMMDMonitor(class_matching=False)
    assert isinstance(error.value, ImportError) and "Business Source License" in str(error.value)


def _fitted(**options):
    return plain(**options).fit(gaussian(50, 3, 0))


def _alibi(**options):
    from monitors.mmd.alibi_backend import AlibiDetectMMDMonitor

    return AlibiDetectMMDMonitor(**options)


def _matched():
    return MMDAdversarialMonitor(seed=0).fit(gaussian(50, 3, 0), predictions=classes(50, 2, 1))


BAD_INPUT = [
    ("alpha above 1", lambda: MMDAdversarialMonitor(alpha=1.5), MonitorConfigError, "0 < alpha < 1. Got: 1.5"),
    ("alpha 0", lambda: MMDAdversarialMonitor(alpha=0), MonitorConfigError, "0 < alpha < 1"),
    ("alpha not a number", lambda: MMDAdversarialMonitor(alpha="0.05"), MonitorConfigError, "alpha"),
    ("no permutations", lambda: MMDAdversarialMonitor(n_permutations=0), MonitorConfigError, ">= 1. Got: 0"),
    ("too few permutations", lambda: MMDAdversarialMonitor(n_permutations=10), MonitorConfigError, ">= 19"),
    ("unknown method", lambda: MMDAdversarialMonitor(method="bootstrap"), MonitorConfigError, "'wild_bootstrap'"),
    ("alibi with class matching", lambda: _alibi(), MonitorConfigError, "use it with class_matching=False"),
    ("alibi with wild bootstrap", lambda: _alibi(method="wild_bootstrap", class_matching=False), MonitorConfigError,
     "method='permutation' only"),
    ("alibi with stop_after", lambda: _alibi(stop_after=10, class_matching=False), MonitorConfigError, "must be None"),
    ("class_matching not bool", lambda: MMDAdversarialMonitor(class_matching=1), MonitorConfigError, "True or False"),
    ("half precision", lambda: MMDAdversarialMonitor(dtype="float16"), MonitorConfigError, "'float64'"),
    ("bad device", lambda: MMDAdversarialMonitor(device="gpu0"), MonitorConfigError, "torch device"),
    ("negative seed", lambda: MMDAdversarialMonitor(seed=-1), MonitorConfigError, "seed"),
    ("check before fit", lambda: plain().check(gaussian(5, 3, 0)), MonitorNotFittedError, "before fit"),
    (
        "NaN in reference",
        lambda: plain().fit(torch.tensor([[0.0, 1.0], [float("nan"), 2.0], [3.0, 4.0]])),
        MonitorInputError,
        "NaN or infinite value(s), the first nan at row 1, column 0",
    ),
    (
        "inf in batch",
        lambda: _fitted().check(torch.tensor([[0.0, 1.0, 2.0], [1.0, float("inf"), 0.0]])),
        MonitorInputError,
        "finite",
    ),
    ("different widths", lambda: _fitted().check(gaussian(20, 4, 1)), MonitorInputError, "4 features but the reference had 3"),
    ("1-D batch", lambda: _fitted().check(np.zeros(3)), MonitorInputError, "2-D"),
    ("one-row batch", lambda: _fitted().check(gaussian(1, 3, 1)), MonitorInputError, "at least 2 rows"),
    ("strings", lambda: _fitted().check([["a", "b", "c"]] * 3), MonitorInputError, "array or tensor of numbers"),
    ("constant reference", lambda: plain().fit(torch.ones(10, 3)), MonitorInputError, "no spread"),
    (
        "batch beyond float32 range after standardization",
        lambda: plain().fit(np.array([[1e-45], [0.0], [1e-45]], dtype=np.float32)).sample_scores(np.ones((2, 1))),
        MonitorInputError,
        "reference standard deviations from the reference mean",
    ),
    ("dict batch, array fit", lambda: _fitted().check({"fc": gaussian(5, 3, 1)}), MonitorInputError, "layers"),
    (
        "missing layer",
        lambda: plain().fit({"a": gaussian(9, 2, 0), "b": gaussian(9, 2, 1)}).check({"a": gaussian(5, 2, 2)}),
        MonitorInputError,
        "['a', 'b']",
    ),
    (
        "layers of different lengths",
        lambda: plain().fit({"a": gaussian(9, 2, 0), "b": gaussian(8, 2, 1)}),
        MonitorInputError,
        "same number of rows",
    ),
    (
        "batch smaller than n_samples",
        lambda: _fitted().detection_rate(gaussian(40, 3, 1), n_samples=100),
        MonitorInputError,
        "the batch has only 40 rows",
    ),
    (
        "reference smaller than n_samples",
        lambda: _fitted().detection_rate(gaussian(400, 3, 1), n_samples=100),
        MonitorInputError,
        "the reference has only 50 rows",
    ),
    ("no tests", lambda: _fitted().detection_rate(gaussian(40, 3, 1), n_tests=0), MonitorConfigError, "n_tests"),
    ("one sample", lambda: _fitted().detection_rate(gaussian(40, 3, 1), n_samples=1), MonitorConfigError, "n_samples"),
    (
        "matching without reference predictions",
        lambda: MMDAdversarialMonitor().fit(gaussian(20, 3, 0)),
        MonitorInputError,
        "class_matching=True needs the reference's predicted classes",
    ),
    (
        "matching without batch predictions",
        lambda: _matched().check(gaussian(20, 3, 1)),
        MonitorInputError,
        "needs the batch's predicted classes",
    ),
    (
        "predictions of the wrong length",
        lambda: _matched().check(gaussian(20, 3, 1), predictions=np.zeros(19, dtype=int)),
        MonitorInputError,
        "one per row (20)",
    ),
    (
        "probabilities as predictions",
        lambda: _matched().check(gaussian(2, 3, 1), predictions=np.array([0.3, 0.7])),
        MonitorInputError,
        "integer class labels",
    ),
    (
        "batch class unknown to the reference",
        lambda: _matched().check(gaussian(20, 3, 1), predictions=np.full(20, 9)),
        MonitorInputError,
        "classes [9] that no reference row has",
    ),
    (
        "wild bootstrap batch larger than reference",
        lambda: _fitted(method="wild_bootstrap").check(gaussian(60, 3, 1)),
        MonitorInputError,
        "must not be larger than the reference",
    ),
    (
        "layer not named",
        lambda: plain().fit({"a": gaussian(9, 2, 0), "b": gaussian(9, 2, 1)}).sample_scores(
            {"a": gaussian(5, 2, 2), "b": gaussian(5, 2, 3)}
        ),
        MonitorInputError,
        "`layer` must name one of the fitted layers ['a', 'b']",
    ),
    ("top_k of 0", lambda: _fitted().top_k(gaussian(9, 3, 1), 0), MonitorConfigError, "`k` must be an integer >= 1"),
    ("unknown score", lambda: _fitted().top_k(gaussian(9, 3, 1), by="loss"), MonitorConfigError, "'witness'"),
    ("foreign state", lambda: plain().load_state_dict({"weights": 1}), MonitorInputError,
     "MMDAdversarialMonitor cannot load this state: got version None, keys ['weights']"),
]


@pytest.mark.parametrize(("case", "call", "error", "message"), BAD_INPUT, ids=[case[0] for case in BAD_INPUT])
def test_bad_input_gets_a_clear_error(case, call, error, message):
    with pytest.raises(error) as raised:
        call()
    assert message in str(raised.value)
    assert isinstance(raised.value, ValueError | RuntimeError)
