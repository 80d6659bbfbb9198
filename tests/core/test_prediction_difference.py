"""Prediction-difference metrics: symmetric, bounded, zero exactly for identical predictions."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from trustops.errors import ConfigError
from trustops.trust.prediction_difference import relative_prediction_difference, total_variation_difference


@st.composite
def probability_pairs(draw):
    n, k = draw(st.integers(1, 30)), draw(st.integers(2, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    generator = torch.Generator().manual_seed(seed)
    p1 = torch.rand(n, k, generator=generator).softmax(1)
    p2 = torch.rand(n, k, generator=generator).mul(draw(st.floats(0.0, 5.0))).softmax(1)
    targets = torch.randint(0, k, (n,), generator=generator)
    return p1, p2, targets


@given(probability_pairs())
def test_symmetric_and_bounded(pair):
    p1, p2, targets = pair
    relative = relative_prediction_difference(p1, p2, targets)
    assert relative == pytest.approx(relative_prediction_difference(p2, p1, targets))
    assert 0.0 <= relative <= 2.0
    tv = total_variation_difference(p1, p2)
    assert tv == pytest.approx(total_variation_difference(p2, p1))
    assert 0.0 <= tv <= 1.0 + 1e-12


@given(probability_pairs())
def test_zero_for_identical_predictions(pair):
    p1, _, targets = pair
    assert relative_prediction_difference(p1, p1.clone(), targets) == 0.0
    assert total_variation_difference(p1, p1.clone()) == 0.0


def test_known_values():
    p1 = torch.tensor([[0.8, 0.2], [0.5, 0.5]])
    p2 = torch.tensor([[0.4, 0.6], [0.5, 0.5]])
    targets = torch.tensor([0, 1])
    # sample 0: 2*0.4/1.2 = 2/3; sample 1: 0  -> mean 1/3
    assert relative_prediction_difference(p1, p2, targets) == pytest.approx(1 / 3)
    # sample 0: (0.4 + 0.4)/2 = 0.4; sample 1: 0 -> mean 0.2
    assert total_variation_difference(p1, p2) == pytest.approx(0.2)


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ConfigError, match="same shape"):
        total_variation_difference(torch.ones(3, 2) / 2, torch.ones(3, 3) / 3)
