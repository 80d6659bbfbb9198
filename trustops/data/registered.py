"""The data a registered model was trained on, read back split by split (for attacks and monitoring)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from trustops.data.loading import load_configured
from trustops.registry import RegisteredModel
from trustops.training.tensors import split_dataset


def load_split(model_info: RegisteredModel, split: str) -> tuple[torch.Tensor, torch.Tensor, tuple[float, float]]:
    """Inputs, labels and the valid input range of a split of the model's training data."""
    inputs, labels, bounds, _ = load_split_with_columns(model_info, split)
    return inputs, labels, bounds


def load_split_with_columns(
    model_info: RegisteredModel, split: str
) -> tuple[torch.Tensor, torch.Tensor, tuple[float, float], list[str]]:
    """:func:`load_split`, plus the feature columns' names in the order the inputs flatten to."""
    data = model_info.training.data
    frame, info = load_configured(Path(data.path) if Path(data.path).is_absolute() else _root() / data.path, data)
    dataset = split_dataset(frame, split, feature_columns=info.feature_columns, label_column=info.label_column,
                            split_column=info.split_column, input_shape=info.input_shape, classes=info.classes)
    if data.value_range:
        bounds = (float(data.value_range[0]), float(data.value_range[1]))
    else:  # the range the data itself spans, in the model's float32 (float64 bounds of a column in the
        # hundred thousands sit below its float32 rounding, and clean rows were then out of range)
        values = frame[info.feature_columns].to_numpy(dtype=np.float32)
        bounds = (float(values.min()), float(values.max()))
    return dataset.tensors[0], dataset.tensors[1], bounds, list(info.feature_columns)


def _root():
    from trustops.paths import project_root

    return project_root()
