"""Activation functions selectable by config, including SmeLU.

SmeLU (Smooth ReLU; Shamir, Lin & Coviello, 2020) replaces ReLU's kink at 0 with a
quadratic over ``[-beta, beta]``, so its gradient is continuous.  The smoothness is what
reduces the prediction difference between retrainings of the same model.
"""

from __future__ import annotations

import torch
from torch import nn

from trustops.errors import ConfigError


def smelu(x: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Smooth ReLU: 0 for x <= -beta, (x + beta)^2 / (4 beta) for |x| <= beta, x for x >= beta."""
    if not beta > 0:
        raise ConfigError(f"SmeLU `beta` must be > 0. Got: {beta}")
    quadratic = (x + beta).square() / (4.0 * beta)
    return torch.where(x >= beta, x, torch.where(x <= -beta, torch.zeros_like(x), quadratic))


class SmeLU(nn.Module):
    """Smooth ReLU as a module.

    Parameters
    ----------
    beta
        Half-width of the quadratic band around 0; as beta -> 0 SmeLU tends to ReLU.

    Examples
    --------
    >>> import torch
    >>> SmeLU(beta=1.0)(torch.tensor([-2.0, 0.0, 0.5, 2.0]))
    tensor([0.0000, 0.2500, 0.5625, 2.0000])
    """

    def __init__(self, beta: float = 1.0) -> None:
        super().__init__()
        if not beta > 0:
            raise ConfigError(f"SmeLU `beta` must be > 0. Got: {beta}")
        self.beta = float(beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return smelu(x, self.beta)

    def extra_repr(self) -> str:
        return f"beta={self.beta}"


ACTIVATIONS = ("relu", "smelu", "gelu", "swish")


def make_activation(name: str, *, beta: float = 1.0) -> nn.Module:
    """Build the activation called ``name`` (one of :data:`ACTIVATIONS`)."""
    if name == "relu":
        return nn.ReLU()
    if name == "smelu":
        return SmeLU(beta)
    if name == "gelu":
        return nn.GELU()
    if name == "swish":
        return nn.SiLU()
    raise ConfigError(f"Unknown activation {name!r}. Choose one of: {', '.join(ACTIVATIONS)}.")
