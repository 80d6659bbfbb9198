"""Activation functions selectable by config, including SmeLU.

SmeLU (Smooth ReLU; Shamir, Lin & Coviello, 2020) replaces ReLU's kink at 0 with a
quadratic over ``[-beta, beta]``, so its gradient is continuous.  The smoothness is what
reduces the prediction difference between retrainings of the same model.

The definition written out with ``torch.where`` (:func:`_smelu_reference`) costs about a dozen
elementwise kernels forward and backward and allocates a tensor for each.  :func:`smelu` is a
custom autograd function instead, built on the slope ``s = clamp((x + beta) / (2 beta), 0, 1)``,
which is SmeLU's derivative:

* forward: ``max(x, beta * s**2)``.  ``beta * s**2`` is the band's quadratic inside the band, 0
  below it and ``beta <= x`` above it, and the quadratic lies above its tangent ``y = x``, so the
  maximum picks the right piece everywhere: one allocation and four passes over the data;
* backward: ``grad * s``, recomputed from the saved input (no intermediate is kept between the
  passes), with differentiable operations, so double backward still works.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trustops.errors import ConfigError


def _smelu_reference(x: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """SmeLU as written in the paper; the tests hold :func:`smelu` to it, values and gradients."""
    quadratic = (x + beta).square() / (4.0 * beta)
    return torch.where(x >= beta, x, torch.where(x <= -beta, torch.zeros_like(x), quadratic))


def _slope(x: torch.Tensor, beta: float) -> torch.Tensor:
    """SmeLU'(x) = clamp((x + beta) / (2 beta), 0, 1), as a new tensor.

    ``0.5 + x / (2 beta)`` is one kernel (``add`` with ``alpha``) where ``(x + beta) / (2 beta)``
    would be two; the clamp then works in place.
    """
    return torch.add(torch.tensor(0.5, dtype=x.dtype), x, alpha=0.5 / beta).clamp_(0.0, 1.0)


class _SmeLUFunction(torch.autograd.Function):
    # The classic ``forward(ctx, ...)`` form: the ``setup_context`` form that torch.func transforms
    # (vmap, jacrev) need costs ~25 µs more per call, which is most of the time on a training batch.
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, beta: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.beta = beta
        y = _slope(x, beta).square_()
        if beta != 1.0:
            y.mul_(beta)
        return torch.maximum(y, x, out=y)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        return _slope(x, ctx.beta).mul_(grad), None


def smelu(x: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Smooth ReLU: 0 for x <= -beta, (x + beta)^2 / (4 beta) for |x| <= beta, x for x >= beta."""
    if not beta > 0:
        raise ConfigError(f"SmeLU `beta` must be > 0. Got: {beta}")
    return _SmeLUFunction.apply(x, float(beta))


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
        return _SmeLUFunction.apply(x, self.beta)

    def extra_repr(self) -> str:
        return f"beta={self.beta}"


# tanh: the tempered sigmoid that DP-SGD favours (Papernot et al., AAAI 2021; Tramèr & Boneh's CNN)
ACTIVATIONS = ("relu", "smelu", "gelu", "swish", "tanh")


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
    if name == "tanh":
        return nn.Tanh()
    raise ConfigError(f"Unknown activation {name!r}. Choose one of: {', '.join(ACTIVATIONS)}.")
