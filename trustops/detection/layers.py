"""Activations of every capturable layer, for the layer table.

The layers, in order: ``input`` (the standardized input), each activation module inside
``features`` (the hidden layers), ``penultimate`` and ``logits``.  Each is flattened to
shape-(N, D).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from trustops.errors import ConfigError
from trustops.models.activations import SmeLU

_ACTIVATION_TYPES = (nn.ReLU, nn.GELU, nn.SiLU, nn.Tanh, SmeLU)  # every activation make_activation builds


def capturable_layers(model: nn.Module) -> list[str]:
    hidden = [f"features.{name}" for name, module in model.features.named_modules() if isinstance(module, _ACTIVATION_TYPES)]
    return ["input", *hidden, "penultimate", "logits"]


@torch.no_grad()
def layer_activations(model: nn.Module, inputs: torch.Tensor, *, batch_size: int = 1024) -> dict[str, torch.Tensor]:
    """``{layer: shape-(N, D) activations}`` for every name in :func:`capturable_layers`."""
    modules = {"input": model.standardize, "penultimate": model.penultimate, "logits": model.head}
    modules.update({name: model.get_submodule(name) for name in capturable_layers(model) if name.startswith("features.")})
    collected: dict[str, list[torch.Tensor]] = {name: [] for name in capturable_layers(model)}
    handles = [
        module.register_forward_hook(lambda _m, _args, output, name=name: collected[name].append(output.flatten(1).clone()))
        for name, module in modules.items()
    ]
    model.eval()
    try:
        for start in range(0, len(inputs), batch_size):
            model(inputs[start : start + batch_size])
    finally:
        for handle in handles:
            handle.remove()
    return {name: torch.cat(parts) for name, parts in collected.items()}


def layer_aliases(model: nn.Module) -> dict[str, str]:
    """``{"block1": "features.2", ...}``: ``block<k>`` is the k-th hidden activation in ``features``
    (for ``fashion_cnn`` the k-th conv block's output), the names ``detect.combine_layers`` accepts
    besides the capturable ones."""
    hidden = [name for name in capturable_layers(model) if name.startswith("features.")]
    return {f"block{k}": name for k, name in enumerate(hidden, start=1)}


def resolve_layers(model: nn.Module, names: Sequence[str]) -> tuple[str, ...]:
    """The capturable layer names for ``names`` (capturable names or ``block<k>`` aliases), in the given order.

    Raises
    ------
    ConfigError
        For a name that is neither, listing the allowed ones.
    """
    aliases, capturable = layer_aliases(model), capturable_layers(model)
    unknown = [name for name in names if name not in aliases and name not in capturable]
    if unknown:
        raise ConfigError(
            f"detect.combine_layers names unknown layer(s) {unknown}. This model's layers: {', '.join(capturable)}; "
            f"aliases: {', '.join(f'{alias}={name}' for alias, name in aliases.items()) or 'none'}."
        )
    resolved = tuple(aliases.get(name, name) for name in names)
    if len(set(resolved)) != len(resolved):
        raise ConfigError(f"detect.combine_layers names a layer twice: {list(names)} -> {list(resolved)}.")
    return resolved
