"""What a monitored model's normal traffic looks like: its captured validation pass."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from trustops.capture import LayerNotFoundError, open_capture
from trustops.errors import ConfigError
from trustops.registry import RegisteredModel


@dataclass(frozen=True)
class Reference:
    """The whole validation split: rows the model was not trained on, all of them used.

    Every monitor in the loop compares a batch with all of it, and each test accounts for the
    reference's own sampling error, so nothing is held back for a Phase I.
    """

    penultimate: torch.Tensor  # shape-(N, D), the last captured validation pass
    probabilities: torch.Tensor  # shape-(N, K)
    inputs: torch.Tensor  # shape-(N, ...), the validation split itself
    labels: torch.Tensor  # shape-(N,), the validation split's class indices
    value_range: tuple[float, float]  # the inputs' valid range (declared, or spanned by the data)
    squeezing_scores: np.ndarray | None = field(default=None, compare=False)  # shape-(N,), when computed
    # The data's feature names (the inputs flattened), so drift reports and expectations name real columns.
    columns: tuple[str, ...] | None = field(default=None, compare=False)
    # ``{layer: shape-(N, D)}`` of the layers the MMD monitor tests together (``--combine-layers``), from the
    # same validation pass; None: the penultimate layer alone.
    layers: Mapping[str, torch.Tensor] | None = field(default=None, compare=False)

    @property
    def predictions(self) -> torch.Tensor:
        return self.probabilities.argmax(1)


def load_reference(
    model: nn.Module, model_info: RegisteredModel, *, squeezing: bool = False, layers: Sequence[str] = ()
) -> Reference:
    """The reference of ``model_info``; ``squeezing`` also scores its inputs for the feature-squeezing monitor;
    ``layers`` (captured layer names) are loaded from the same validation pass for the combined MMD test.

    Raises
    ------
    ConfigError
        When the reference lacks one of ``layers`` (a model trained without ``capture.layers``).
    """
    from trustops.data.registered import load_split_with_columns
    from trustops.monitoring.squeezing import squeezing_scores

    reader = open_capture(model_info.capture_uri)
    last_pass = reader.last_pass("eval")
    penultimate = reader.load("eval", "penultimate", where=last_pass).float()
    combined = {name: penultimate if name == "penultimate" else _reference_layer(reader, model_info, name, last_pass)
                for name in layers} or None
    with torch.no_grad():
        probabilities = torch.softmax(model.head(penultimate), dim=1)
    inputs, labels, value_range, columns = load_split_with_columns(model_info, "val")
    scores = squeezing_scores(model, inputs, value_range).numpy() if squeezing else None
    return Reference(penultimate=penultimate, probabilities=probabilities, inputs=inputs, labels=labels,
                     value_range=value_range, squeezing_scores=scores, columns=tuple(columns), layers=combined)


def _reference_layer(reader, model_info: RegisteredModel, name: str, last_pass: dict) -> torch.Tensor:
    try:
        return reader.load("eval", name, where=last_pass).flatten(1).float()
    except LayerNotFoundError as error:
        raise ConfigError(missing_layers_message(model_info, [name], error.available)) from None


def missing_layers_message(model_info: RegisteredModel, missing: Sequence[str], captured: Sequence[str]) -> str:
    """Why a combined test cannot run on ``model_info``'s reference, and what to do about it."""
    return (f"The reference of {model_info.name} v{model_info.version} holds no layer(s) {', '.join(missing)} to combine "
            f"(its captured layers: {', '.join(captured) or 'none'}): it was trained without them in capture.layers. "
            f"Retrain with capture.layers=[{','.join(missing)}], or monitor without --combine-layers.")


def resolve_combined_layers(model: nn.Module, model_info: RegisteredModel, names: Sequence[str]) -> tuple[str, ...]:
    """The captured layer names the monitor's ``--combine-layers`` ``names`` stand for (``block<k>`` aliases
    resolved), checked against the model and its reference before a pass starts.

    Raises
    ------
    ConfigError
        For a name the model does not have (listing those it has), or a layer its reference lacks.
    """
    from trustops.detection.layers import hooked_layers, resolve_layers

    resolved = resolve_layers(model, names, setting="--combine-layers", allowed=hooked_layers(model))
    captured = open_capture(model_info.capture_uri).layers("eval")
    missing = [name for name in resolved if name not in captured]
    if missing:
        raise ConfigError(missing_layers_message(model_info, missing, captured))
    return resolved
