"""Activations of every capturable layer, for the layer table.

The layers, in order: ``input`` (the standardized input), each activation module inside
``features`` (the hidden layers), ``penultimate`` and ``logits``.  Each is flattened to
shape-(N, D).
"""

from __future__ import annotations

import torch
from torch import nn

from trustops.models.activations import SmeLU

_ACTIVATION_TYPES = (nn.ReLU, nn.GELU, nn.SiLU, SmeLU)


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
