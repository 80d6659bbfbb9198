"""Per-column preprocessing for tables, fitted on the training split and shipped inside the model.

Without DP each numeric column is standardized with its training mean and standard deviation.
Under DP those statistics would be computed from the private rows and spend privacy that the
accountant does not see, so a DP model scales each column by public bounds the user declares
(``data.feature_ranges``: ``[low, high]`` maps to ``[-1, 1]``); nothing about the rows is used.
Categorical columns arrive as codes into their training vocabulary and are one-hot encoded;
the vocabulary itself (the set of category names seen in training) is the one thing both
modes take from the training rows, as every tabular pipeline does: declare the columns'
categories in the data, or leave such columns out under a strict reading of DP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from trustops.errors import ConfigError
from trustops.models.networks import TabularPreprocess


def missing_ranges(numeric_columns: Sequence[str], feature_ranges: Mapping[str, Sequence[float]] | None) -> list[str]:
    return [c for c in numeric_columns if c not in (feature_ranges or {})]


def require_public_ranges(numeric_columns: Sequence[str], feature_ranges: Mapping[str, Sequence[float]] | None) -> None:
    """Under DP, every numeric column needs declared bounds; say which are missing and how to give them."""
    missing = missing_ranges(numeric_columns, feature_ranges)
    if missing:
        shown = ",".join(f"{c}:[LOW,HIGH]" for c in missing[:3]) + (",..." if len(missing) > 3 else "")
        raise ConfigError(
            f"With DP, model.family=tabular scales each column by public bounds (statistics of the private rows would "
            f"spend privacy): {len(missing)} column(s) have none ({', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}). "
            f"Set data.feature_ranges={{{shown}}} from what is publicly known about the columns, or train with dp=off."
        )


def fit_preprocess(
    train: pd.DataFrame,
    feature_columns: Sequence[str],
    *,
    categories: Mapping[str, Sequence[str]] | None = None,
    feature_ranges: Mapping[str, Sequence[float]] | None = None,
    private: bool = False,
) -> TabularPreprocess:
    """The :class:`TabularPreprocess` for ``feature_columns``, fitted on the ``train`` rows.

    ``private``: use only ``feature_ranges`` for the numeric columns (see the module doc).
    """
    categories = dict(categories or {})
    numeric = [c for c in feature_columns if c not in categories]
    if private:
        require_public_ranges(numeric, feature_ranges)
        bounds = np.asarray([[float(v) for v in feature_ranges[c]] for c in numeric], dtype=np.float64).reshape(-1, 2)
        center, scale = bounds.mean(axis=1), (bounds[:, 1] - bounds[:, 0]) / 2
    else:
        values = train[numeric].to_numpy(dtype=np.float64)
        if len(values) == 0:
            raise ConfigError("The training split is empty: nothing to fit the preprocessing on.")
        center, scale = values.mean(axis=0), values.std(axis=0)
        # A column constant on the training rows (refused when constant everywhere) is left unscaled.
        scale = np.where(scale > 1e-12 * np.maximum(1.0, np.abs(center)), scale, 1.0)
    return TabularPreprocess(
        center.tolist(), scale.tolist(),
        numeric_index=[list(feature_columns).index(c) for c in numeric],
        categorical_index=[list(feature_columns).index(c) for c in categories],
        cardinalities=[max(1, len(v)) for v in categories.values()],
        categories=categories,
    )
