"""DP-SGD really happens: per-sample clipping, Gaussian noise, and epsilon that grows with steps.

Opacus's Lightning support is thin, so trustops wires DP itself; these tests look inside the
wiring rather than trusting that a flag was passed.
"""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader, TensorDataset

from trustops.errors import ConfigError
from trustops.models.networks import build_classifier
from trustops.settings import DPSettings
# Opacus (and trustops.training.privacy, which imports it) take seconds to import: each test imports what it uses.

MAX_GRAD_NORM = 0.5


def private_setup(*, noise_multiplier: float, n: int = 64, batch_size: int = 16, seed: int = 0):
    from trustops.training.privacy import make_private

    torch.manual_seed(seed)
    model = build_classifier("mlp", (8,), 3, hidden=[16, 8])
    inputs = torch.randn(n, 8) * 50  # large inputs give per-sample gradients far above the clip norm
    targets = torch.randint(0, 3, (n,))
    loader = DataLoader(TensorDataset(inputs, targets), batch_size=batch_size, generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    privacy = make_private(
        model,
        optimizer,
        loader,
        DPSettings(target_epsilon=None, noise_multiplier=noise_multiplier, max_grad_norm=MAX_GRAD_NORM),
        epochs=1,
        n_train=n,
        generator=torch.Generator().manual_seed(seed + 1),
    )
    return privacy, inputs, targets


def backward(privacy, inputs, targets):
    privacy.optimizer.zero_grad()
    F.cross_entropy(privacy.module(inputs), targets).backward()


def flat_norm(tensors) -> float:
    return torch.cat([t.reshape(-1) for t in tensors]).norm().item()


def test_wiring_uses_opacus_optimizer_and_poisson_sampling():
    from opacus.data_loader import DPDataLoader
    from opacus.optimizers import DPOptimizer

    privacy, _, _ = private_setup(noise_multiplier=1.0)
    assert isinstance(privacy.optimizer, DPOptimizer)
    assert isinstance(privacy.loader, DPDataLoader)  # Poisson sampling, as the accounting assumes
    batch_sizes = {len(batch[1]) for batch in privacy.loader for _ in range(1)}
    batch_sizes |= {len(batch[1]) for batch in privacy.loader}
    assert len(batch_sizes) > 1, "Poisson batches should vary in size"


def test_each_sample_gradient_is_clipped_to_the_max_norm():
    privacy, inputs, targets = private_setup(noise_multiplier=1.0)  # noise comes later, at step()
    one = inputs[:1], targets[:1]
    backward(privacy, *one)
    unclipped = flat_norm(p.grad_sample[0] for p in privacy.module.parameters() if p.requires_grad)
    assert unclipped > 10 * MAX_GRAD_NORM  # otherwise clipping would be untested
    privacy.optimizer.clip_and_accumulate()
    clipped = flat_norm(p.summed_grad for p in privacy.module.parameters() if p.requires_grad)
    assert clipped == pytest.approx(MAX_GRAD_NORM, rel=1e-4)

    batch = inputs[:8], targets[:8]
    backward(privacy, *batch)
    privacy.optimizer.clip_and_accumulate()
    assert flat_norm(p.summed_grad for p in privacy.module.parameters() if p.requires_grad) <= 8 * MAX_GRAD_NORM + 1e-4


def test_noise_is_added_with_the_calibrated_scale():
    sigma = 2.0
    privacy, inputs, targets = private_setup(noise_multiplier=sigma)
    batch = inputs[:4], targets[:4]
    grads = []
    for _ in range(200):
        backward(privacy, *batch)
        privacy.optimizer.step()  # lr=0: parameters stay, p.grad holds the noisy gradient
        grads.append(torch.cat([p.grad.reshape(-1) for p in privacy.module.parameters()]).clone())
    stacked = torch.stack(grads)
    assert not torch.allclose(stacked[0], stacked[1])
    # Noise per coordinate has std sigma * C / expected batch size (Opacus divides the noisy sum by it
    # for mean-reduced losses). 200 draws x ~400 coordinates: the pooled std is within 5% (seeded).
    expected = sigma * MAX_GRAD_NORM / privacy.optimizer.expected_batch_size
    assert stacked.std(dim=0).mean().item() == pytest.approx(expected, rel=0.05)


def test_epsilon_grows_with_every_step():
    privacy, inputs, targets = private_setup(noise_multiplier=1.0)
    epsilons = [privacy.epsilon()]
    for _ in range(5):
        backward(privacy, inputs[:8], targets[:8])
        privacy.optimizer.step()
        epsilons.append(privacy.epsilon())
    assert epsilons[0] == 0.0
    assert all(later > earlier for earlier, later in zip(epsilons, epsilons[1:]))


def test_an_unreachable_budget_is_a_config_error():
    from trustops.training.privacy import make_private

    model = build_classifier("mlp", (8,), 3, hidden=[4])
    loader = DataLoader(TensorDataset(torch.randn(64, 8), torch.randint(0, 3, (64,))), batch_size=32)
    with pytest.raises(ConfigError, match="cannot be met"):
        make_private(
            model, torch.optim.SGD(model.parameters(), lr=0.1), loader, DPSettings(target_epsilon=1e-4),
            epochs=50, n_train=64, generator=torch.Generator().manual_seed(0),
        )


# ---------------------------------------------------------------------------------------------
# The cached RDP epsilon is Opacus's, bit for bit

steps_of = st.tuples(st.floats(0.3, 8.0), st.floats(1e-3, 0.5), st.integers(1, 5_000))


@settings(max_examples=25)  # each example runs Opacus's uncached series (~0.2 s)
@given(history=st.lists(steps_of, min_size=1, max_size=3), delta=st.floats(1e-8, 1e-3))
def test_cached_rdp_epsilon_equals_the_opacus_accountant_exactly(history, delta):
    from opacus.accountants import RDPAccountant

    from trustops.training.privacy import rdp_epsilon

    accountant = RDPAccountant()
    accountant.history = list(history)
    assert rdp_epsilon(history, delta) == accountant.get_epsilon(delta)


def test_epsilon_and_the_budget_plan_equal_the_opacus_accountant():
    from opacus.accountants import RDPAccountant

    from trustops.training.privacy import planned_epsilon

    privacy, inputs, targets = private_setup(noise_multiplier=1.3)
    for _ in range(3):
        backward(privacy, inputs[:8], targets[:8])
        privacy.optimizer.step()
        assert privacy.epsilon() == privacy.engine.get_epsilon(privacy.delta)
    accountant = RDPAccountant()
    accountant.history = [(1.3, 0.25, 40)]
    assert planned_epsilon("rdp", 1.3, 0.25, 40, 1e-5) == accountant.get_epsilon(1e-5)
