"""Load a data set from a file into one table with a train/val/test split.

Supported files: the embedded digits Parquet, a user's tabular CSV or Parquet file
(feature columns + a label column, optionally a split column), or a NumPy ``.npz`` with
``images`` (shape-(N, H, W) or shape-(N, C, H, W)) and ``labels`` (shape-(N,)).
Files without a split column get a seeded stratified split.

A table (not images) is also checked for what would silently make a poor or leaky model,
each reported as one :class:`DataError` line naming the file, the column and a few rows:
non-numeric values in a numeric column, missing or infinite values, an empty or
header-only file, duplicate column names, a label value that is unseen (versus
``data.classes``) or too rare to split, a constant column and an ID-like column (unique per
row and monotone, or named like an ID).  Categorical columns (``data.categorical_columns``)
are replaced by integer codes into their training-split vocabulary (-1: unseen), which the
tabular model one-hot encodes; the vocabulary is in :attr:`DatasetInfo.categories`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import csv
import re

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
    #: categorical column -> its training vocabulary (values as strings; code = position)
    categories: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

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
        hint = f" Run `dvc pull {path}` (or `trustops prepare` for the default digits data) to fetch it." if "data" in path.parts else ""
        raise DataError(f"Data file not found: {path}.{hint}")
    fmt = resolve_format(path, fmt)
    try:
        if fmt == "parquet":
            # Single-threaded: Arrow's reader threads can abort the interpreter at exit
            # (apache/arrow#34314), which turned a clean exit 2 on refused data into SIGABRT.
            return pd.read_parquet(path, use_threads=False), None
        if fmt == "csv":
            _check_csv_header(path)
            return pd.read_csv(path), None
        return _read_npz(path)
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty: it needs a header row and data rows.") from None
    except Exception as error:  # pyarrow, pandas and numpy each raise their own types for a bad file
        raise DataError(f"Could not read {path} as {fmt}: {error}") from error


def _check_csv_header(path: Path) -> None:
    """pandas renames a repeated column to ``name.1``; refuse it before it becomes a feature."""
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        header = next(csv.reader(handle), None)
    if not header or not any(cell.strip() for cell in header):
        raise DataError(f"{path} is empty: it needs a header row and data rows.")
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise DataError(f"{path} repeats column name(s) {', '.join(map(repr, repeated))} in its header; each column needs its own name.")


def _read_npz(path: Path) -> tuple[pd.DataFrame, list[int]]:
    """``images`` and ``labels``, and ``split`` (train/val/test per image) when the file has one."""
    with np.load(path, allow_pickle=False) as arrays:
        missing = {"images", "labels"} - set(arrays.files)
        if missing:
            raise DataError(f"{path} must hold arrays named 'images' and 'labels'; missing: {', '.join(sorted(missing))}.")
        images, labels = arrays["images"], arrays["labels"]
        split = arrays["split"] if "split" in arrays.files else None
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise DataError(f"'images' in {path} must have shape (N, H, W) or (N, C, H, W). Got {images.shape}.")
    if len(images) != len(labels):
        raise DataError(f"{path} holds {len(images)} images but {len(labels)} labels.")
    if split is not None and split.shape != labels.shape:
        raise DataError(f"'split' in {path} must have one entry per image, shape ({len(labels)},). Got {split.shape}.")
    # float32, never float64: 70,000 Fashion-MNIST images are 220 MB as float32.
    flat = images.reshape(len(images), -1).astype("float32", copy=False)
    frame = pd.DataFrame(flat, columns=[f"pixel_{i}" for i in range(flat.shape[1])], copy=False)
    frame["label"] = labels
    if split is not None:
        frame["split"] = split.astype(str)
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
    classes: list[Any] | None = None,
    categorical_columns: list[str] | None = None,
    drop_columns: list[str] | None = None,
    max_train_rows: int | None = None,
) -> tuple[pd.DataFrame, DatasetInfo]:
    """Read, check the layout of, and split a data set.

    Returns the table (features, label, split) and its :class:`DatasetInfo`.
    Raises :class:`DataError` naming the file and the problem.
    ``classes`` are the declared labels (every label must be one of them); ``categorical_columns``
    are encoded as codes into their training vocabulary; ``drop_columns`` are left out.
    ``max_train_rows`` keeps at most that many ``train`` rows (see :func:`cap_train_rows`).
    """
    path = Path(path).resolve()
    frame, npz_shape = read_table(path, fmt)
    if npz_shape is not None:  # an .npz names its arrays itself
        label_column, split_column = "label", "split"
    if frame.columns.duplicated().any():
        repeated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise DataError(f"{path} repeats column name(s) {', '.join(map(repr, repeated))}; each column needs its own name.")
    for option, names in (("data.drop_columns", drop_columns), ("data.categorical_columns", categorical_columns)):
        absent = [c for c in names or () if c not in frame.columns]
        if absent:
            raise DataError(f"{option} names column(s) not in {path}: {', '.join(map(repr, absent))}.")
    if drop_columns:
        frame = frame.drop(columns=list(drop_columns))
    if label_column not in frame.columns:
        raise DataError(
            f"Label column {label_column!r} is not in {path}. Columns found: {', '.join(map(str, frame.columns[:20]))}"
            f"{' ...' if len(frame.columns) > 20 else ''}. Set data.label_column."
        )
    if feature_columns is None:
        feature_columns = [c for c in frame.columns if c not in (label_column, split_column)]
    categorical = [c for c in categorical_columns or () if c in feature_columns]
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
    if npz_shape is None:
        check_table(frame, path, feature_columns=feature_columns, label_column=label_column,
                    categorical_columns=categorical, classes=classes, is_image=shape is not None)
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
    if max_train_rows is not None:
        frame = cap_train_rows(frame, label_column=label_column, split_column=split_column, max_rows=max_train_rows, seed=split_seed)
    categories = {}
    if categorical:
        frame = frame.copy()
        for column in categorical:
            frame[column], categories[column] = encode_categorical(frame[column], frame[split_column] == "train")
    data_hash = file_md5(path)
    info = DatasetInfo(
        path=str(path),
        data_hash=data_hash,
        dvc_tracked=dvc_lock_hashes(_dvc_root(path)).get(str(path)) == data_hash,
        feature_columns=[str(c) for c in feature_columns],
        label_column=label_column,
        split_column=split_column,
        image_shape=shape,
        classes=_classes(frame.loc[frame[split_column] == "train", label_column], classes),
        split_sizes={s: int((frame[split_column] == s).sum()) for s in SPLITS},
        categories=categories,
    )
    return frame, info


def load_configured(path: Path, data: Any) -> tuple[pd.DataFrame, DatasetInfo]:
    """:func:`load_dataset` with every option taken from ``data`` (a ``DataSettings`` or its dict)."""
    get = data.get if isinstance(data, dict) else (lambda key, default=None: getattr(data, key, default))
    return load_dataset(
        path, fmt=get("format", "auto"), label_column=get("label_column", "label"), split_column=get("split_column", "split"),
        feature_columns=get("feature_columns"), image_shape=get("image_shape"), val_fraction=get("val_fraction", 0.2),
        test_fraction=get("test_fraction", 0.2), split_seed=get("split_seed", 0), classes=get("classes"),
        categorical_columns=get("categorical_columns"), drop_columns=get("drop_columns"),
        max_train_rows=get("max_train_rows"),
    )


def cap_train_rows(frame: pd.DataFrame, *, label_column: str, split_column: str, max_rows: int, seed: int) -> pd.DataFrame:
    """``frame`` with at most ``max_rows`` of its ``train`` rows, a seeded sample that keeps the class mix.

    Each class keeps its share of ``max_rows``, rounded down, and the classes with the largest
    remainders get the rows left over, so exactly ``max_rows`` are kept.  Validation and test
    rows are untouched, so accuracies stay comparable across caps.  Rows keep their index (their
    position in the file).
    """
    if max_rows < 1:
        raise DataError(f"data.max_train_rows must be >= 1. Got: {max_rows}")
    train = np.flatnonzero((frame[split_column] == "train").to_numpy())
    if len(train) <= max_rows:
        return frame
    labels = frame[label_column].to_numpy()[train]
    values, counts = np.unique(labels, return_counts=True)
    exact = counts * (max_rows / len(train))
    quota = np.floor(exact).astype(int)
    quota[np.argsort(quota - exact, kind="stable")[: max_rows - quota.sum()]] += 1
    rng = np.random.default_rng(seed)
    kept = np.concatenate([rng.permutation(train[labels == value])[:n] for value, n in zip(values, quota)])
    keep = np.ones(len(frame), dtype=bool)
    keep[train] = False
    keep[kept] = True
    return frame[keep]


def _classes(train_labels: pd.Series, declared: list[Any] | None) -> list[Any]:
    """The declared classes (typed like the label column's values), else those the training split has."""
    seen = sorted(_plain(v) for v in train_labels.dropna().unique())
    if declared is None:
        return seen
    by_text = {str(v): v for v in seen}
    return [by_text.get(str(c), c) for c in declared]


def _plain(value: Any) -> Any:
    """numpy scalars to Python ones, so the class list survives JSON and MLflow tags."""
    return value.item() if hasattr(value, "item") else value


def _dvc_root(path: Path) -> Path:
    for folder in path.parents:
        if (folder / "dvc.yaml").is_file():
            return folder
    return path.parent


def encode_categorical(values: pd.Series, train: pd.Series) -> tuple[pd.Series, list[str]]:
    """Codes into the vocabulary of ``values[train]`` (sorted, as strings); -1 for values outside it."""
    vocabulary = sorted(values[train].astype(str).unique().tolist())
    return category_codes(values, vocabulary), vocabulary


def category_codes(values: pd.Series, vocabulary: list[str]) -> pd.Series:
    """shape-(N,) float32 codes of ``values`` in ``vocabulary``; -1 for a value outside it."""
    position = {value: index for index, value in enumerate(vocabulary)}
    return values.astype(str).map(position).fillna(-1).astype("float32")


#: A label value needs this many rows, so the stratified split can put it in train, val and test.
MIN_CLASS_ROWS = 3
_ID_NAME = re.compile(r"(^|[_\s.-])(id|uuid|index|row)$|^unnamed: ?\d+$", re.IGNORECASE)


def _rows(mask: np.ndarray | pd.Series, limit: int = 5) -> str:
    """'rows 3, 17, 40 and 12 more', 1-based data rows (the header is not a row)."""
    where = np.flatnonzero(np.asarray(mask)) + 1
    shown = ", ".join(map(str, where[:limit]))
    more = f" and {len(where) - limit} more" if len(where) > limit else ""
    return f"row{'s' if len(where) > 1 else ''} {shown}{more}"


def check_table(
    frame: pd.DataFrame,
    path: Path,
    *,
    feature_columns: list[str],
    label_column: str,
    categorical_columns: list[str] = (),
    classes: list[Any] | None = None,
    is_image: bool = False,
) -> None:
    """Refuse a table that would train a poor or leaky model without saying so (see the module doc).

    Rows are numbered from 1, the first row after the header.  Constant and ID-like columns
    are only refused for tables of named columns, not for pixels (``is_image``).
    """
    if frame.empty:
        raise DataError(f"{path} has a header but no data rows.")
    for column in feature_columns:
        if column in categorical_columns:
            continue
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            numbers = pd.to_numeric(values, errors="coerce")
            bad = numbers.isna() & values.notna()
            if bad.any():
                examples = ", ".join(repr(v) for v in pd.unique(values[bad])[:3])
                raise DataError(
                    f"{path}: column {column!r} holds non-numeric values ({examples}) on {_rows(bad)}; "
                    f"fix them, list the column in data.categorical_columns, or drop it with data.drop_columns."
                )
            values = numbers
        numbers = values.to_numpy(dtype="float64")
        missing = ~np.isfinite(numbers)
        if missing.any():
            kind = "missing (NaN)" if np.isnan(numbers[missing]).all() else "missing or infinite"
            raise DataError(f"{path}: column {column!r} has {kind} values on {_rows(missing)}; fill or remove those rows.")
    labels = frame[label_column]
    if labels.isna().any():
        raise DataError(f"{path}: label column {label_column!r} is empty on {_rows(labels.isna())}; every row needs a label.")
    if classes is not None:
        declared = {str(c) for c in classes}
        unseen = ~labels.astype(str).isin(declared)
        if unseen.any():
            values = ", ".join(repr(v) for v in pd.unique(labels[unseen])[:5])
            raise DataError(
                f"{path}: label column {label_column!r} holds {values} on {_rows(unseen)}, not among the declared "
                f"data.classes {list(classes)}; fix those rows or declare the class."
            )
    else:
        counts = labels.value_counts()
        rare = counts[counts < MIN_CLASS_ROWS]
        if len(rare):
            value = rare.index[0]
            raise DataError(
                f"{path}: label {value!r} in column {label_column!r} appears on only {int(rare.iloc[0])} {_rows(labels == value)} "
                f"(a class needs at least {MIN_CLASS_ROWS}, one per split); fix or drop the row, or declare the classes "
                "with data.classes=[...] if it is real."
            )
    if is_image:
        return
    constant = [c for c in feature_columns if frame[c].nunique(dropna=False) <= 1]
    if constant:
        raise DataError(
            f"{path}: column(s) {', '.join(map(repr, constant))} hold one value on every row and carry no information; "
            f"drop them with data.drop_columns=[{','.join(constant)}]."
        )
    ids = [c for c in feature_columns if _looks_like_id(frame[c], str(c))]
    if ids:
        raise DataError(
            f"{path}: column(s) {', '.join(map(repr, ids))} look like row IDs (a different value on every row"
            f"{' and in order' if len(frame) > 2 else ''}): a model would learn the row order, which can leak the label. "
            f"Drop them with data.drop_columns=[{','.join(ids)}], or rename the column if it is a real feature."
        )


def _looks_like_id(values: pd.Series, name: str) -> bool:
    """Unique per row and either named like an ID or integer-valued and monotone."""
    if len(values) < 3 or values.nunique(dropna=False) != len(values):
        return False
    if _ID_NAME.search(name.strip()):
        return True
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.isna().any() or not np.all(np.mod(numbers.to_numpy(dtype="float64"), 1) == 0):
        return False
    return bool(numbers.is_monotonic_increasing or numbers.is_monotonic_decreasing)
