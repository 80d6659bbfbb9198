"""The embedded default data set: scikit-learn's 8x8 handwritten digits.

1,797 real images in 10 classes ship inside scikit-learn, so the default pipeline needs
no network.  ``export_digits`` is the command behind the ``prepare`` stage in ``dvc.yaml``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from trustops.data.split import stratified_split

DIGITS_IMAGE_SHAPE = (1, 8, 8)
DIGITS_VALUE_RANGE = (0.0, 16.0)
LABEL_COLUMN = "label"
SPLIT_COLUMN = "split"


def pixel_columns(n: int) -> list[str]:
    return [f"pixel_{i}" for i in range(n)]


def digits_frame(*, val_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 0) -> pd.DataFrame:
    """Digits as one table: 64 float pixel columns, ``label`` and a stratified ``split``."""
    from sklearn.datasets import load_digits  # here: sklearn costs a second to import

    digits = load_digits()
    frame = pd.DataFrame(digits.data.astype("float32"), columns=pixel_columns(digits.data.shape[1]))
    frame[LABEL_COLUMN] = digits.target.astype("int64")
    frame[SPLIT_COLUMN] = stratified_split(digits.target, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    return frame


def export_digits(out: Path, *, val_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 0) -> Path:
    """Write the digits table to ``out`` as Parquet, atomically (DVC hashes what it finds)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    digits_frame(val_fraction=val_fraction, test_fraction=test_fraction, seed=seed).to_parquet(partial, index=False)
    partial.replace(out)
    return out
