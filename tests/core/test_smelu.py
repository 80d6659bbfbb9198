"""SmeLU's defining properties, checked with Hypothesis."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from trustops.errors import ConfigError
from trustops.models.activations import SmeLU, make_activation, smelu

betas = st.floats(min_value=1e-3, max_value=10.0)
reals = st.floats(min_value=-50.0, max_value=50.0)


def value_and_grad(x: float, beta: float) -> tuple[float, float]:
    point = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = smelu(point, beta)
    y.backward()
    return y.item(), point.grad.item()


@given(beta=betas, side=st.sampled_from([-1.0, 1.0]))
def test_value_and_gradient_are_continuous_at_the_band_edges(beta, side):
    edge = side * beta
    eps = beta * 1e-7
    left_value, left_grad = value_and_grad(edge - eps, beta)
    right_value, right_grad = value_and_grad(edge + eps, beta)
    # Continuous: across a gap of 2*eps the value moves by at most the slope (<= 1) times the gap,
    # and the gradient by at most the curvature 1/(2*beta) times the gap; a kink would jump by 1.
    assert abs(left_value - right_value) <= 2 * eps + 1e-12
    assert abs(left_grad - right_grad) <= 2 * eps / (2 * beta) + 1e-9


@given(x=reals, beta=betas)
def test_equals_relu_outside_the_band(x, beta):
    if abs(x) >= beta:
        assert smelu(torch.tensor(x, dtype=torch.float64), beta).item() == pytest.approx(max(x, 0.0), abs=1e-12)


@given(x=reals, y=reals, beta=betas)
def test_is_monotone_and_non_negative(x, y, beta):
    low, high = sorted((x, y))
    f_low = smelu(torch.tensor(low, dtype=torch.float64), beta).item()
    f_high = smelu(torch.tensor(high, dtype=torch.float64), beta).item()
    assert 0.0 <= f_low <= f_high


@given(x=reals)
def test_tends_to_relu_as_beta_shrinks(x):
    # Inside the band SmeLU differs from ReLU by at most beta/4, so the gap shrinks with beta.
    for beta in (1.0, 0.1, 0.01, 0.001):
        gap = abs(smelu(torch.tensor(x, dtype=torch.float64), beta).item() - max(x, 0.0))
        assert gap <= beta / 4 + 1e-12


def test_quadratic_inside_the_band_matches_the_definition():
    x = torch.linspace(-0.9, 0.9, 19, dtype=torch.float64)
    assert torch.allclose(SmeLU(beta=1.0)(x), (x + 1.0) ** 2 / 4.0)


@pytest.mark.parametrize("beta", [0.0, -1.0, float("nan")])
def test_rejects_a_non_positive_beta(beta):
    with pytest.raises(ConfigError, match="beta"):
        SmeLU(beta=beta)


def test_unknown_activation_lists_the_choices():
    with pytest.raises(ConfigError, match="relu, smelu, gelu, swish"):
        make_activation("tanhh")
