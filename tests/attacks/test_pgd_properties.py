"""Invariants of the PGD projection and attack, for any input, ε, step size and norm."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from trustops.attacks import fgsm_attack, pgd_attack, project_perturbation
from trustops.errors import ConfigError

RANGE = (0.0, 16.0)
REL = 1e-5  # float32 tolerance, relative to the pixel scale
norms = st.sampled_from(["inf", "l2"])
epsilons = st.floats(0.01, 20.0)


def _norm(delta, norm):
    flat = delta.flatten(1)
    return flat.abs().amax(dim=1) if norm == "inf" else flat.norm(dim=1)


def _batch(seed, n, shape):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, *shape, generator=g) * 16
    delta = torch.randn(n, *shape, generator=g) * torch.rand(n, *([1] * len(shape)), generator=g) * 30
    return x, delta


shapes = st.sampled_from([(64,), (1, 8, 8), (3,)])


@given(seed=st.integers(0, 2**31), n=st.integers(1, 8), shape=shapes, norm=norms, epsilon=epsilons)
def test_projection_lands_in_the_ball_and_the_valid_range(seed, n, shape, norm, epsilon):
    x, delta = _batch(seed, n, shape)
    projected = project_perturbation(delta, x, norm=norm, epsilon=epsilon, clamp=RANGE)
    assert (_norm(projected, norm) <= epsilon * (1 + REL) + 16 * REL).all()
    assert ((x + projected) >= RANGE[0]).all() and ((x + projected) <= RANGE[1]).all()


@given(seed=st.integers(0, 2**31), n=st.integers(1, 8), shape=shapes, norm=norms, epsilon=epsilons)
def test_projecting_twice_equals_projecting_once(seed, n, shape, norm, epsilon):
    x, delta = _batch(seed, n, shape)
    once = project_perturbation(delta, x, norm=norm, epsilon=epsilon, clamp=RANGE)
    twice = project_perturbation(once, x, norm=norm, epsilon=epsilon, clamp=RANGE)
    assert torch.allclose(once, twice, rtol=REL, atol=16 * REL)


@given(seed=st.integers(0, 2**31), n=st.integers(1, 8), norm=norms, epsilon=epsilons)
def test_a_perturbation_already_inside_is_left_alone(seed, n, norm, epsilon):
    x, delta = _batch(seed, n, (64,))
    inside = project_perturbation(delta, x, norm=norm, epsilon=epsilon, clamp=RANGE) * 0.5
    assert torch.allclose(project_perturbation(inside, x, norm=norm, epsilon=epsilon, clamp=RANGE), inside, atol=16 * REL)


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 10)).eval()


@given(
    seed=st.integers(0, 2**31),
    norm=norms,
    epsilon=epsilons,
    step_size=st.floats(0.01, 10.0),
    steps=st.integers(1, 5),
    random_start=st.booleans(),
)
def test_every_pgd_perturbation_stays_in_the_ball_and_the_valid_range(small_model, seed, norm, epsilon, step_size, steps, random_start):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(6, 64, generator=g) * 16
    y = torch.randint(0, 10, (6,), generator=g)
    x_adv = pgd_attack(
        small_model, x, y, norm=norm, epsilon=epsilon, step_size=step_size, steps=steps, clamp=RANGE,
        random_start=random_start, generator=g,
    )  # fmt: skip
    assert x_adv.shape == x.shape and not x_adv.requires_grad
    assert (_norm(x_adv - x, norm) <= epsilon * (1 + REL) + 16 * REL).all()
    assert (x_adv >= RANGE[0]).all() and (x_adv <= RANGE[1]).all()


def test_random_start_is_reproducible_with_a_generator(small_model):
    x = torch.rand(4, 64) * 16
    y = torch.zeros(4, dtype=torch.long)
    runs = [
        pgd_attack(small_model, x, y, epsilon=1.0, step_size=0.25, steps=2, clamp=RANGE, random_start=True, generator=torch.Generator().manual_seed(7))
        for _ in range(2)
    ]
    assert torch.equal(runs[0], runs[1])


def test_model_state_is_restored(small_model):
    small_model.train()
    small_model[0].weight.requires_grad_(True)
    pgd_attack(small_model, torch.rand(2, 64), torch.zeros(2, dtype=torch.long), epsilon=0.5, step_size=0.1, steps=2, clamp=RANGE)
    assert small_model.training and small_model[0].weight.requires_grad and small_model[0].weight.grad is None
    small_model.eval()


def test_fgsm_is_one_full_signed_step(small_model):
    x = torch.full((3, 64), 8.0)
    y = torch.tensor([0, 1, 2])
    x_adv = fgsm_attack(small_model, x, y, epsilon=0.5, clamp=RANGE)
    assert torch.allclose((x_adv - x).abs(), torch.full_like(x, 0.5))  # interior points move by exactly ε


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"epsilon": 0.0}, "`epsilon` must be a finite number > 0. Got: 0.0"),
        ({"epsilon": -1.0}, "`epsilon` must be a finite number > 0. Got: -1.0"),
        ({"epsilon": float("nan")}, "`epsilon` must be a finite number > 0"),
        ({"step_size": 0}, "`step_size` must be a finite number > 0. Got: 0"),
        ({"steps": 0}, "`steps` must be an integer >= 1. Got: 0"),
        ({"steps": 2.5}, "`steps` must be an integer >= 1. Got: 2.5"),
        ({"norm": "l1"}, "Unknown attack norm 'l1'. Choose one of: inf, l2"),
        ({"clamp": (16.0, 0.0)}, "`clamp` must satisfy lo < hi"),
        ({"clamp": 16.0}, "`clamp` must be a pair"),
        ({"clamp": (0.0, 1.0)}, r"must contain the clean inputs, which range over \[0, 16\]"),
    ],
)
def test_bad_attack_options_are_clear_config_errors(small_model, options, fragment):
    x = torch.tensor([[0.0] * 63 + [16.0]])
    kwargs = {"norm": "inf", "epsilon": 1.0, "step_size": 0.1, "steps": 3, "clamp": RANGE} | options
    with pytest.raises(ConfigError, match=fragment) as info:
        pgd_attack(small_model, x, torch.tensor([0]), **kwargs)
    assert isinstance(info.value, ValueError)


def test_attacking_inside_inference_mode_is_a_clear_error(small_model):
    with torch.inference_mode(), pytest.raises(ConfigError, match="outside torch.inference_mode"):
        pgd_attack(small_model, torch.rand(1, 64), torch.tensor([0]), epsilon=1.0, step_size=0.1, steps=1, clamp=RANGE)
