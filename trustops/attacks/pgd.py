"""Projected gradient descent (PGD) attacks, built on rAI-toolbox's projected optimizers.

The perturbation is an :class:`rai_toolbox.perturbations.AdditivePerturbation` (``x + delta``)
updated by :class:`rai_toolbox.optim.LinfProjectedOptim` (signed gradient, clamp to the
L∞ ball) or :class:`rai_toolbox.optim.L2ProjectedOptim` (per-sample normalized gradient,
renorm into the L2 ball).  After each step :func:`project_perturbation` also keeps
``x + delta`` inside the valid input range; clipping each coordinate towards ``x`` only
shrinks ``|delta|``, so the result stays inside the ε-ball.  FGSM is PGD with one step.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from trustops.errors import ConfigError
from trustops.progress import progress

NORMS = ("inf", "l2")


def _check_options(norm: str, epsilon: float, step_size: float, steps: int, clamp: tuple[float, float]) -> None:
    if norm not in NORMS:
        raise ConfigError(f"Unknown attack norm {norm!r}. Choose one of: {', '.join(NORMS)}.")
    if not (isinstance(epsilon, (int, float)) and math.isfinite(epsilon) and epsilon > 0):
        raise ConfigError(f"`epsilon` must be a finite number > 0. Got: {epsilon!r}")
    if not (isinstance(step_size, (int, float)) and math.isfinite(step_size) and step_size > 0):
        raise ConfigError(f"`step_size` must be a finite number > 0. Got: {step_size!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"`steps` must be an integer >= 1. Got: {steps!r}")
    try:
        lo, hi = clamp
    except (TypeError, ValueError):
        raise ConfigError(f"`clamp` must be a pair (lo, hi) of the valid input range. Got: {clamp!r}") from None
    if not lo < hi:
        raise ConfigError(f"`clamp` must satisfy lo < hi. Got: {clamp!r}")


def project_perturbation(
    delta: torch.Tensor, x: torch.Tensor, *, norm: str, epsilon: float, clamp: tuple[float, float]
) -> torch.Tensor:
    """Project ``delta`` into the per-sample ε-ball and so that ``x + delta`` lies in ``clamp``.

    Parameters
    ----------
    delta, x
        shape-(N, ...) perturbations and the clean inputs they perturb.
    norm
        ``"inf"`` (clamp each coordinate to [-ε, ε]) or ``"l2"`` (scale each sample's
        perturbation down to L2 norm ε when it is longer).

    Returns
    -------
    torch.Tensor
        shape-(N, ...); projecting it again changes nothing (up to float rounding).
    """
    if norm == "inf":
        delta = delta.clamp(-epsilon, epsilon)
    elif norm == "l2":
        norms = delta.flatten(1).norm(p=2, dim=1).view(-1, *([1] * (delta.ndim - 1)))
        delta = delta * torch.clamp(epsilon / norms.clamp_min(torch.finfo(delta.dtype).tiny), max=1.0)
    else:
        raise ConfigError(f"Unknown attack norm {norm!r}. Choose one of: {', '.join(NORMS)}.")
    lo, hi = clamp
    return (x + delta).clamp(lo, hi) - x


@contextlib.contextmanager
def _frozen_eval(model: nn.Module) -> Iterator[None]:
    """Eval mode and no parameter gradients for the attack; both restored afterwards."""
    was_training = model.training
    requires_grad = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in requires_grad:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in requires_grad:
            p.requires_grad_(flag)
        model.train(was_training)


def pgd_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    norm: str = "inf",
    epsilon: float,
    step_size: float,
    steps: int,
    clamp: tuple[float, float],
    random_start: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Untargeted PGD: perturb ``x`` within an ε-ball to maximize the cross-entropy of ``y``.

    Parameters
    ----------
    model
        A classifier returning logits of shape-(N, C); it is put in eval mode with frozen
        parameters during the attack and restored afterwards.
    x
        shape-(N, ...) clean inputs, inside ``clamp``.
    y
        shape-(N,) true labels.
    norm
        ``"inf"`` or ``"l2"``: the ball's norm, per sample.
    epsilon
        The ball's radius (in input units: digits pixels run 0-16).
    step_size
        The optimizer's learning rate: the L∞ step per coordinate, or the L2 step length.
    steps
        Number of projected steps (1 with ``step_size=epsilon`` and ``norm="inf"`` is FGSM).
    clamp
        ``(lo, hi)``, the valid input range; adversarial inputs stay inside it.
    random_start
        Start from a uniform draw in the ε-ball instead of ``x``.
    generator
        Controls the random start.

    Returns
    -------
    torch.Tensor
        shape-(N, ...) adversarial inputs, detached.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Linear(2, 2)
    >>> x = torch.tensor([[0.5, 0.5]]); y = torch.tensor([0])
    >>> x_adv = pgd_attack(model, x, y, epsilon=0.1, step_size=0.05, steps=3, clamp=(0.0, 1.0))
    >>> bool((x_adv - x).abs().max() <= 0.1 + 1e-6)
    True
    """
    _check_options(norm, epsilon, step_size, steps, clamp)
    if torch.is_inference_mode_enabled():
        raise ConfigError("pgd_attack needs autograd: call it outside torch.inference_mode().")
    if x.shape[:1] != y.shape[:1]:
        raise ConfigError(f"`x` and `y` must hold the same number of samples. Got shapes {tuple(x.shape)} and {tuple(y.shape)}.")
    lo, hi = clamp
    x = x.detach()
    if x.numel() and (x.min() < lo or x.max() > hi):
        raise ConfigError(
            f"`clamp`={tuple(clamp)} must contain the clean inputs, which range over [{x.min().item():g}, {x.max().item():g}]."
        )
    from rai_toolbox.optim import L2ProjectedOptim, LinfProjectedOptim
    from rai_toolbox.perturbations import AdditivePerturbation, uniform_like_l2_n_ball_, uniform_like_linf_n_ball_

    if random_start:
        init = uniform_like_linf_n_ball_ if norm == "inf" else uniform_like_l2_n_ball_
        kwargs = {"epsilon": epsilon} if generator is None else {"epsilon": epsilon, "generator": generator}
        perturbation = AdditivePerturbation(x, init, **kwargs)
    else:
        perturbation = AdditivePerturbation(x)
    if norm == "inf":
        optimizer = LinfProjectedOptim(perturbation.parameters(), lr=step_size, epsilon=epsilon)
    else:
        optimizer = L2ProjectedOptim(perturbation.parameters(), lr=step_size, epsilon=epsilon, param_ndim=-1)
    delta = perturbation.delta
    with torch.no_grad():
        delta.copy_(project_perturbation(delta, x, norm=norm, epsilon=epsilon, clamp=clamp))
    with _frozen_eval(model), torch.enable_grad(), warnings.catch_warnings():
        # rai-toolbox 0.2.1 compares storages through the deprecated TypedStorage API.
        warnings.filterwarnings("ignore", message="TypedStorage is deprecated", category=UserWarning)
        for _ in progress(range(steps), desc=f"PGD L{'∞' if norm == 'inf' else '2'} ε={epsilon:g} on {len(x)} inputs", unit="step"):
            optimizer.zero_grad()
            # The optimizers minimize; ascending the loss means descending its negative.
            loss = -F.cross_entropy(model(perturbation(x)), y, reduction="sum")
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                delta.copy_(project_perturbation(delta, x, norm=norm, epsilon=epsilon, clamp=clamp))
    return (x + delta.detach()).clamp(lo, hi)


def fgsm_attack(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epsilon: float, clamp: tuple[float, float]
) -> torch.Tensor:
    """Fast gradient sign method: one L∞ PGD step of size ``epsilon``."""
    return pgd_attack(model, x, y, norm="inf", epsilon=epsilon, step_size=epsilon, steps=1, clamp=clamp)
