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


def resolve_layers(model: nn.Module, names: Sequence[str], *, setting: str = "detect.combine_layers",
                   allowed: Sequence[str] | None = None) -> tuple[str, ...]:
    """The capturable layer names for ``names`` (capturable names or ``block<k>`` aliases), in the given order.

    ``setting`` is how the error names the option; ``allowed`` narrows the capturable names (e.g.
    :func:`hooked_layers` for what a capture hook can record).

    Raises
    ------
    ConfigError
        For a name that is neither, listing the allowed ones.
    """
    aliases, capturable = layer_aliases(model), list(allowed) if allowed is not None else capturable_layers(model)
    unknown = [name for name in names if name not in aliases and name not in capturable]
    if unknown:
        raise ConfigError(
            f"{setting} names unknown layer(s) {unknown}. This model's layers: {', '.join(capturable)}; "
            f"aliases: {', '.join(f'{alias}={name}' for alias, name in aliases.items()) or 'none'}."
        )
    resolved = tuple(aliases.get(name, name) for name in names)
    if len(set(resolved)) != len(resolved):
        raise ConfigError(f"{setting} names a layer twice: {list(names)} -> {list(resolved)}.")
    return resolved


def hooked_layers(model: nn.Module) -> list[str]:
    """The capturable layers that are modules of the classifier under the same name (the hidden layers and
    ``penultimate``), so a capture hook records them as tensors of that name: what ``capture.layers`` and
    the monitor's ``--combine-layers`` accept.  ``input`` and ``logits`` are captured as ``inputs`` and
    ``outputs`` of PREDICT steps only, never in the reference."""
    return [name for name in capturable_layers(model) if name not in ("input", "logits")]
