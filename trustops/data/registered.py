"""The data a registered model was trained on, read back split by split (for attacks and monitoring)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from trustops.data.loading import load_dataset
from trustops.registry import RegisteredModel
from trustops.training.tensors import split_dataset


def load_split(model_info: RegisteredModel, split: str) -> tuple[torch.Tensor, torch.Tensor, tuple[float, float]]:
    """Inputs, labels and the valid input range of a split of the model's training data."""
    data = model_info.training.data
    frame, info = load_dataset(
        Path(data.path) if Path(data.path).is_absolute() else _root() / data.path,
        fmt=data.format, label_column=data.label_column, split_column=data.split_column,
        feature_columns=data.feature_columns, image_shape=data.image_shape,
        val_fraction=data.val_fraction, test_fraction=data.test_fraction, split_seed=data.split_seed,
    )
    dataset = split_dataset(frame, split, feature_columns=info.feature_columns, label_column=info.label_column,
                            split_column=info.split_column, input_shape=info.input_shape, classes=info.classes)
    if data.value_range:
        bounds = (float(data.value_range[0]), float(data.value_range[1]))
    else:  # the range the data itself spans, as the validation suite learns it
        values = frame[info.feature_columns].to_numpy(dtype=np.float64)
        bounds = (float(values.min()), float(values.max()))
    return dataset.tensors[0], dataset.tensors[1], bounds


def _root():
    from trustops.paths import project_root

    return project_root()
