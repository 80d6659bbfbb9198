"""SmeLU's defining properties, and the fast autograd function held to the textbook formula.

:func:`smelu` is a custom ``torch.autograd.Function``; ``_smelu_reference`` is the definition
written out with ``torch.where``.  In float64 the two agree to 1e-12 (relative and absolute),
values and gradients; they differ only by the rounding of ``0.5 + x / (2 beta)`` against
``(x + beta) / (2 beta)``, a few units in the last place.
"""

import pickle

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import DataLoader, TensorDataset

from trustops.errors import ConfigError
from trustops.models.activations import SmeLU, _smelu_reference, make_activation, smelu
from trustops.models.networks import build_classifier
from trustops.settings import DPSettings

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


# ---------------------------------------------------------------------------------------------
# The fast autograd function against the reference formula

FLOAT64 = dict(rtol=1e-12, atol=1e-12)
EDGE_BETAS = (1e-3, 0.3, 1.0, 2.5, 10.0)


@st.composite
def tensors_and_beta(draw):
    """A float64 tensor of 1-200 values, biased towards the band and its edges, and a beta."""
    beta = draw(betas)
    scaled = st.floats(min_value=-4.0, max_value=4.0).map(lambda u: u * beta)
    edges = st.sampled_from([-beta, beta, 0.0])
    values = draw(st.lists(st.one_of(reals, scaled, edges), min_size=1, max_size=200))
    return torch.tensor(values, dtype=torch.float64), beta


def value_and_grads(function, x, beta, upstream):
    point = x.clone().requires_grad_()
    y = function(point, beta)
    y.backward(upstream)
    return y.detach(), point.grad


@given(case=tensors_and_beta(), seed=st.integers(0, 2**16))
def test_fast_forward_and_gradient_equal_the_reference(case, seed):
    x, beta = case
    upstream = torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    fast_value, fast_grad = value_and_grads(smelu, x, beta, upstream)
    ref_value, ref_grad = value_and_grads(_smelu_reference, x, beta, upstream)
    torch.testing.assert_close(fast_value, ref_value, **FLOAT64)
    torch.testing.assert_close(fast_grad, ref_grad, **FLOAT64)


@given(beta=betas, shape=st.sampled_from([(7,), (3, 5), (2, 3, 4)]), seed=st.integers(0, 2**16))
def test_float32_agrees_with_the_reference_to_float32_rounding(beta, shape, seed):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 2 * beta
    fast_value, fast_grad = value_and_grads(smelu, x, beta, torch.ones(shape))
    ref_value, ref_grad = value_and_grads(_smelu_reference, x, beta, torch.ones(shape))
    # a few float32 ulps of values up to ~8 beta, and of slopes in [0, 1]
    torch.testing.assert_close(fast_value, ref_value, rtol=1e-5, atol=1e-6 * max(beta, 1.0))
    torch.testing.assert_close(fast_grad, ref_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("beta", EDGE_BETAS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_exactly_at_the_band_edges(beta, dtype):
    # x = -beta: value 0, slope 0 (the flat piece); x = beta: value beta, slope 1 (the identity).
    x = torch.tensor([-beta, beta], dtype=dtype)
    value, grad = value_and_grads(smelu, x, beta, torch.ones(2, dtype=dtype))
    ref_value, ref_grad = value_and_grads(_smelu_reference, x, beta, torch.ones(2, dtype=dtype))
    tolerance = FLOAT64 if dtype == torch.float64 else dict(rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(value, ref_value, **tolerance)
    torch.testing.assert_close(grad, ref_grad, **tolerance)
    torch.testing.assert_close(value, torch.tensor([0.0, float(x[1])], dtype=dtype), **tolerance)
    torch.testing.assert_close(grad, torch.tensor([0.0, 1.0], dtype=dtype), **tolerance)


@pytest.mark.parametrize("beta", EDGE_BETAS)
def test_gradcheck_in_float64_including_the_edges(beta):
    generator = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(40, dtype=torch.float64, generator=generator) * 2 * beta,
                   torch.tensor([-beta, beta, 0.0], dtype=torch.float64)])  # fmt: skip
    # The step shrinks with beta: at an edge the central difference is off by ~ step / (8 beta),
    # half the jump of the second derivative, 1 / (2 beta), times the step over 2.
    step = 1e-6 * min(beta, 1.0) ** 2
    assert torch.autograd.gradcheck(lambda t: smelu(t, beta), (x.requires_grad_(),), eps=step)


@pytest.mark.parametrize("beta", [0.3, 1.0, 2.5])
def test_double_backward_matches_finite_differences(beta):
    # Away from the edges, where the second derivative (1 / 2 beta inside the band, 0 outside) jumps.
    x = torch.tensor([-3.0, -0.7, -0.2, 0.1, 0.6, 3.0], dtype=torch.float64) * beta
    assert torch.autograd.gradgradcheck(lambda t: smelu(t, beta), (x.requires_grad_(),))


def test_special_values_and_layouts():
    x = torch.tensor([float("nan"), float("inf"), -float("inf")], requires_grad=True)
    y = smelu(x, 1.0)
    y.sum().backward()
    assert y[0].isnan() and y[1] == float("inf") and y[2] == 0.0
    assert x.grad[0].isnan() and x.grad[1] == 1.0 and x.grad[2] == 0.0
    strided = torch.randn(4, 6, dtype=torch.float64).t()  # non-contiguous
    torch.testing.assert_close(smelu(strided, 0.5), _smelu_reference(strided, 0.5), **FLOAT64)
    assert smelu(torch.randn(3, dtype=torch.float16), 1.0).dtype == torch.float16


def test_no_graph_and_no_grad_mode():
    x = torch.randn(5)
    assert smelu(x).grad_fn is None
    with torch.no_grad():
        assert smelu(x.requires_grad_()).grad_fn is None


def test_module_api_is_unchanged():
    module = SmeLU(beta=2.0)
    assert module.beta == 2.0 and repr(module) == "SmeLU(beta=2.0)"
    assert module.state_dict() == {} and list(module.parameters()) == []
    restored = pickle.loads(pickle.dumps(module))
    x = torch.linspace(-5, 5, 11)
    torch.testing.assert_close(restored(x), _smelu_reference(x, 2.0))


# ---------------------------------------------------------------------------------------------
# Under Opacus


def smelu_mlp(seed: int = 0):
    torch.manual_seed(seed)
    return build_classifier("mlp", (8,), 3, hidden=[16, 8], activation="smelu", beta=0.5)


def test_opacus_per_sample_gradients_equal_one_backward_per_sample_through_the_reference():
    from opacus import GradSampleModule  # seconds to import: here, not at collection

    model = smelu_mlp()
    inputs, targets = torch.randn(6, 8, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2])
    model = model.double()
    wrapped = GradSampleModule(model, loss_reduction="sum")
    F.cross_entropy(wrapped(inputs), targets, reduction="sum").backward()
    opacus_per_sample = [p.grad_sample for p in model.parameters()]

    reference = smelu_mlp().double()
    for module in reference.modules():  # the same weights, with the straightforward formula
        if isinstance(module, SmeLU):
            module.forward = lambda x, beta=module.beta: _smelu_reference(x, beta)
    for i in range(len(inputs)):
        reference.zero_grad()
        F.cross_entropy(reference(inputs[i : i + 1]), targets[i : i + 1], reduction="sum").backward()
        for per_sample, p in zip(opacus_per_sample, reference.parameters()):
            torch.testing.assert_close(per_sample[i], p.grad, **FLOAT64)


def test_a_dp_sgd_step_through_trustops_privacy_wiring():
    from trustops.training.privacy import make_private  # imports Opacus: here, not at collection

    model = smelu_mlp()
    before = [p.detach().clone() for p in model.parameters()]
    loader = DataLoader(TensorDataset(torch.randn(64, 8), torch.randint(0, 3, (64,))), batch_size=16)
    privacy = make_private(
        model, torch.optim.SGD(model.parameters(), lr=0.5), loader,
        DPSettings(target_epsilon=None, noise_multiplier=1.0, max_grad_norm=1.0),
        epochs=1, n_train=64, generator=torch.Generator().manual_seed(1),
    )  # fmt: skip
    inputs, targets = next(iter(privacy.loader))
    privacy.optimizer.zero_grad()
    F.cross_entropy(privacy.module(inputs), targets).backward()
    assert all(p.grad_sample.shape[0] == len(inputs) for p in model.parameters())
    privacy.optimizer.step()
    after = list(model.parameters())
    assert all(torch.isfinite(p).all() for p in after)
    assert any(not torch.equal(b, a) for b, a in zip(before, after))
    assert privacy.epsilon() > 0
