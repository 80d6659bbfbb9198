"""A seeded, stratified train/validation/test split."""

from __future__ import annotations

import numpy as np

from trustops.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")


def stratified_split(
    labels: np.ndarray, *, val_fraction: float, test_fraction: float, seed: int
) -> np.ndarray:
    """Assign every sample to ``train``, ``val`` or ``test``, class by class.

    Within each class the samples are shuffled with ``seed`` and cut at the requested
    fractions (rounded, at least one sample per class in a non-empty split when the
    class has enough samples), so each split keeps the class mix of the whole.

    Parameters
    ----------
    labels
        shape-(N,) class labels.

    Returns
    -------
    numpy.ndarray
        shape-(N,) array of split names.
    """
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"data.{name} must satisfy 0 <= {name} < 1. Got: {value}")
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(
            f"data.val_fraction + data.test_fraction must be < 1 so training data remains. Got: {val_fraction} + {test_fraction}"
        )
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise DataError(f"Labels must be one-dimensional. Got shape {labels.shape}.")
    rng = np.random.default_rng(seed)
    assignment = np.empty(len(labels), dtype=object)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        n_val = _share(len(members), val_fraction)
        n_test = _share(len(members), test_fraction)
        # A tiny class keeps at least one training sample: shrink test, then val, to fit.
        overflow = max(0, n_val + n_test - (len(members) - 1))
        n_test -= min(n_test, overflow)
        n_val -= max(0, n_val + n_test - (len(members) - 1))
        assignment[members[:n_val]] = "val"
        assignment[members[n_val : n_val + n_test]] = "test"
        assignment[members[n_val + n_test :]] = "train"
    return assignment.astype(str)


def _share(n: int, fraction: float) -> int:
    if fraction == 0.0:
        return 0
    return max(1, int(round(n * fraction)))
