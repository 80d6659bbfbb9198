"""A small MLP trained on sklearn's digits (bundled with scikit-learn, no download)."""

import pytest
import torch
from torch import nn


@pytest.fixture
def single_thread():
    """One intra-op thread: on 2 shared cores, torch's default oversubscribes and slows tiny models 10-40x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Rescale(nn.Module):
    """Digits pixels run 0-16; the network sees them scaled to 0-1, the attack in pixel units."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x / 16.0)


@pytest.fixture(scope="module")
def digits_model():
    from sklearn.datasets import load_digits

    from trustops.models.networks import build_classifier

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        digits = load_digits()
        generator = torch.Generator().manual_seed(0)
        order = torch.randperm(len(digits.target), generator=generator)
        x = torch.tensor(digits.data, dtype=torch.float32)[order]
        y = torch.tensor(digits.target)[order]
        x_train, y_train, x_test, y_test = x[:1400], y[:1400], x[1400:], y[1400:]
        torch.manual_seed(0)
        model = Rescale(build_classifier("mlp", (64,), 10))
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(25):
            for batch in torch.randperm(len(x_train), generator=generator).split(128):
                loss = nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        model.eval()
        yield model, x_test, y_test
    finally:
        torch.set_num_threads(threads)
