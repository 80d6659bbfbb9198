"""Load a data set from a file into one table with a train/val/test split.

Supported files: the embedded digits Parquet, a user's tabular CSV or Parquet file
(feature columns + a label column, optionally a split column), or a NumPy ``.npz`` with
``images`` (shape-(N, H, W) or shape-(N, C, H, W)) and ``labels`` (shape-(N,)).
Files without a split column get a seeded stratified split.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trustops.data.split import SPLITS, stratified_split
from trustops.errors import DataError
from trustops.lineage import dvc_lock_hashes, file_md5

FORMATS = ("auto", "parquet", "csv", "npz")


@dataclass(frozen=True)
class DatasetInfo:
    """What the pipeline needs to know about a loaded data set, besides its rows."""

    path: str
    data_hash: str
    dvc_tracked: bool
    feature_columns: list[str]
    label_column: str
    split_column: str
    image_shape: list[int] | None
    classes: list[Any]
    split_sizes: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DatasetInfo:
        return cls(**values)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.image_shape) if self.image_shape else (len(self.feature_columns),)


def resolve_format(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    suffix = path.suffix.lower()
    by_suffix = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".npz": "npz"}
    if suffix not in by_suffix:
        raise DataError(f"Cannot tell the format of {path} from its extension; set data.format to one of parquet, csv, npz.")
    return by_suffix[suffix]


def read_table(path: Path, fmt: str) -> tuple[pd.DataFrame, list[int] | None]:
    """Read ``path`` as a table; for ``.npz`` images, also return the image shape (C, H, W)."""
    if not path.is_file():
        hint = " Run `dvc pull` (or `trustops prepare` for the default digits data) to fetch it." if "data" in path.parts else ""
        raise DataError(f"Data file not found: {path}.{hint}")
    fmt = resolve_format(path, fmt)
    try:
        if fmt == "parquet":
            return pd.read_parquet(path), None
        if fmt == "csv":
            return pd.read_csv(path), None
        return _read_npz(path)
    except DataError:
        raise
    except Exception as error:  # pyarrow, pandas and numpy each raise their own types for a bad file
        raise DataError(f"Could not read {path} as {fmt}: {error}") from error


def _read_npz(path: Path) -> tuple[pd.DataFrame, list[int]]:
    with np.load(path, allow_pickle=False) as arrays:
        missing = {"images", "labels"} - set(arrays.files)
        if missing:
            raise DataError(f"{path} must hold arrays named 'images' and 'labels'; missing: {', '.join(sorted(missing))}.")
        images, labels = arrays["images"], arrays["labels"]
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise DataError(f"'images' in {path} must have shape (N, H, W) or (N, C, H, W). Got {images.shape}.")
    if len(images) != len(labels):
        raise DataError(f"{path} holds {len(images)} images but {len(labels)} labels.")
    flat = images.reshape(len(images), -1).astype("float32")
    frame = pd.DataFrame(flat, columns=[f"pixel_{i}" for i in range(flat.shape[1])])
    frame["label"] = labels
    return frame, list(images.shape[1:])


def load_dataset(
    path: Path,
    *,
    fmt: str = "auto",
    label_column: str = "label",
    split_column: str = "split",
    feature_columns: list[str] | None = None,
    image_shape: list[int] | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    split_seed: int = 0,
) -> tuple[pd.DataFrame, DatasetInfo]:
    """Read, check the layout of, and split a data set.

    Returns the table (features, label, split) and its :class:`DatasetInfo`.
    Raises :class:`DataError` naming the file and the problem.
    """
    path = Path(path).resolve()
    frame, npz_shape = read_table(path, fmt)
    if npz_shape is not None:
        label_column = "label"
    if label_column not in frame.columns:
        raise DataError(
            f"Label column {label_column!r} is not in {path}. Columns found: {', '.join(map(str, frame.columns[:20]))}"
            f"{' ...' if len(frame.columns) > 20 else ''}. Set data.label_column."
        )
    if feature_columns is None:
        feature_columns = [c for c in frame.columns if c not in (label_column, split_column)]
    absent = [c for c in feature_columns if c not in frame.columns]
    if absent:
        raise DataError(f"Feature columns missing from {path}: {', '.join(absent)}.")
    if not feature_columns:
        raise DataError(f"{path} has no feature columns besides the label.")
    shape = npz_shape or (list(image_shape) if image_shape else None)
    if shape is not None and int(np.prod(shape)) != len(feature_columns):
        raise DataError(
            f"data.image_shape {shape} holds {int(np.prod(shape))} values but {path} has {len(feature_columns)} feature columns."
        )
    if split_column in frame.columns:
        unknown = set(frame[split_column].unique()) - set(SPLITS)
        if unknown:
            raise DataError(f"Column {split_column!r} in {path} has values {sorted(map(str, unknown))}; allowed: {', '.join(SPLITS)}.")
    else:
        if frame[label_column].isna().any():
            raise DataError(f"Label column {label_column!r} in {path} has missing values; every row needs a label.")
        frame[split_column] = stratified_split(
            frame[label_column].to_numpy(), val_fraction=val_fraction, test_fraction=test_fraction, seed=split_seed
        )
    frame = frame[[*feature_columns, label_column, split_column]]
    data_hash = file_md5(path)
    info = DatasetInfo(
        path=str(path),
        data_hash=data_hash,
        dvc_tracked=dvc_lock_hashes(_dvc_root(path)).get(str(path)) == data_hash,
        feature_columns=[str(c) for c in feature_columns],
        label_column=label_column,
        split_column=split_column,
        image_shape=shape,
        classes=sorted(_plain(v) for v in frame.loc[frame[split_column] == "train", label_column].dropna().unique()),
        split_sizes={s: int((frame[split_column] == s).sum()) for s in SPLITS},
    )
    return frame, info


def _plain(value: Any) -> Any:
    """numpy scalars to Python ones, so the class list survives JSON and MLflow tags."""
    return value.item() if hasattr(value, "item") else value


def _dvc_root(path: Path) -> Path:
    for folder in path.parents:
        if (folder / "dvc.yaml").is_file():
            return folder
    return path.parent
