"""Coercion of the activations and predictions users hand the MMD monitor; scalar options are checked by
:mod:`monitors._inputs`, like every other monitor's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from monitors.errors import MonitorInputError

SINGLE_LAYER = "activations"
"""The layer name used when activations are given as one array rather than a dict."""


def _matrix(data: Any, label: str) -> Tensor:
    if isinstance(data, Tensor):
        tensor = data.detach().cpu()
    else:
        try:
            tensor = torch.as_tensor(np.asarray(data))
        except (TypeError, ValueError, RuntimeError) as error:
            raise MonitorInputError(
                f"{label} must be a shape-(N, D) array or tensor of numbers. Got: {type(data).__name__} ({error})"
            ) from None
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise MonitorInputError(f"{label} must hold real numbers. Got: dtype {tensor.dtype}")
    if tensor.ndim != 2:
        raise MonitorInputError(f"{label} must be 2-D, shape (N, D) with one row per sample. Got: shape {tuple(tensor.shape)}")
    if tensor.shape[1] == 0:
        raise MonitorInputError(f"{label} has no features. Got: shape {tuple(tensor.shape)}")
    tensor = tensor.to(torch.float64)
    bad = ~torch.isfinite(tensor)
    if bad.any():
        row, column = (int(i) for i in bad.nonzero()[0])
        raise MonitorInputError(
            f"{label} must contain only finite numbers; it has {int(bad.sum())} NaN or infinite value(s), "
            f"the first {float(tensor[row, column])} at row {row}, column {column}."
        )
    return tensor


def as_layers(data: Any, name: str, *, min_rows: int = 2) -> dict[str, Tensor]:
    """Activations as ``{layer name: shape-(N, D) float64 CPU tensor}``, all layers with the same ``N``.

    ``data`` is one shape-(N, D) array or tensor (stored under :data:`SINGLE_LAYER`) or a
    mapping from layer name to such arrays.
    """
    if isinstance(data, Mapping):
        if not data:
            raise MonitorInputError(f"`{name}` is an empty mapping; it needs at least one layer name -> (N, D) array.")
        layers = {}
        for key, value in data.items():
            if not isinstance(key, str) or not key:
                raise MonitorInputError(f"`{name}` layer names must be non-empty strings. Got: {key!r}")
            layers[key] = _matrix(value, f"`{name}[{key!r}]`")
    else:
        layers = {SINGLE_LAYER: _matrix(data, f"`{name}`")}
    rows = {key: value.shape[0] for key, value in layers.items()}
    if len(set(rows.values())) > 1:
        raise MonitorInputError(f"Every layer of `{name}` must have the same number of rows. Got: {rows}")
    n_rows = next(iter(rows.values()))
    if n_rows < min_rows:
        raise MonitorInputError(f"`{name}` needs at least {min_rows} rows (samples). Got: {n_rows}")
    return layers


def as_predictions(data: Any, name: str, n_rows: int) -> Tensor:
    """Predicted classes as a shape-(n_rows,) int64 tensor."""
    tensor = data.detach().cpu() if isinstance(data, Tensor) else torch.as_tensor(np.asarray(data))
    if tensor.ndim != 1 or tensor.shape[0] != n_rows:
        raise MonitorInputError(
            f"`{name}` must be a 1-D array of predicted classes, one per row ({n_rows}). "
            f"Got: shape {tuple(tensor.shape)}"
        )
    if tensor.is_floating_point():
        if not bool((torch.isfinite(tensor) & (tensor == tensor.round())).all()):
            raise MonitorInputError(f"`{name}` must hold integer class labels (not scores or probabilities).")
    elif tensor.dtype == torch.bool or tensor.is_complex():
        raise MonitorInputError(f"`{name}` must hold integer class labels. Got: dtype {tensor.dtype}")
    return tensor.to(torch.int64)


def check_layers_match(batch: dict[str, Tensor], widths: dict[str, int], name: str) -> None:
    """The batch has the fitted layers, each with the fitted width."""
    if set(batch) != set(widths):
        given = sorted(batch) if set(batch) != {SINGLE_LAYER} else "one array"
        fitted = sorted(widths) if set(widths) != {SINGLE_LAYER} else "one array"
        raise MonitorInputError(f"`{name}` must have the layers the monitor was fitted on: {fitted}. Got: {given}")
    for key, width in widths.items():
        if batch[key].shape[1] != width:
            where = "" if key == SINGLE_LAYER else f" in layer {key!r}"
            raise MonitorInputError(
                f"`{name}` has {batch[key].shape[1]} features{where} but the reference had {width}; "
                "reference and batch must come from the same layer."
            )

