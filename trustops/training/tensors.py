"""Tables to tensors, in the model's input layout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import TensorDataset


def features_tensor(frame: pd.DataFrame, feature_columns: Sequence[str], input_shape: Sequence[int]) -> torch.Tensor:
    """shape-(N, *input_shape) float32 tensor of the feature columns."""
    values = frame[list(feature_columns)].to_numpy(dtype=np.float32)
    return torch.from_numpy(values).reshape(len(frame), *input_shape)


def encode_rows(frame: pd.DataFrame, feature_columns: Sequence[str], categories: dict[str, Sequence[str]]) -> np.ndarray:
    """shape-(N, D) float32 raw rows: numeric columns as they are, categorical ones as codes into their vocabulary.

    ``categories`` maps a column to its training vocabulary (values compared as strings); a value
    outside it is -1, which the model's one-hot layer turns into an all-zero block.
    """
    from trustops.data.loading import category_codes

    rows = frame[list(feature_columns)].copy()
    for column, vocabulary in categories.items():
        if column in rows.columns:
            rows[column] = category_codes(rows[column], list(vocabulary))
    return rows.to_numpy(dtype=np.float32)


def label_indices(labels: pd.Series, classes: Sequence[Any]) -> torch.Tensor:
    """Class labels to indices into ``classes``; labels outside ``classes`` map to -1."""
    position = {label: index for index, label in enumerate(classes)}
    return torch.tensor([position.get(label, -1) for label in labels.tolist()], dtype=torch.long)


def split_dataset(
    frame: pd.DataFrame,
    split: str,
    *,
    feature_columns: Sequence[str],
    label_column: str,
    split_column: str,
    input_shape: Sequence[int],
    classes: Sequence[Any],
) -> TensorDataset:
    rows = frame[frame[split_column] == split]
    return TensorDataset(features_tensor(rows, feature_columns, input_shape), label_indices(rows[label_column], classes))
