"""The one validation toolkit of the monitors: argument and input checks shared by every monitor and chart.

Every error says what was given and what is allowed.  The MMD monitor's tensor coercions
(layers, predicted classes) stay in :mod:`monitors.mmd.inputs` and build on these.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from monitors.errors import MonitorConfigError, MonitorInputError, MonitorNotFittedError


def real(value: Any, name: str, *, low: float = -math.inf, high: float = math.inf, condition: str = "") -> float:
    """``value`` as a finite float in ``[low, high]``, or a :class:`MonitorConfigError`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise MonitorConfigError(f"`{name}` must be a finite real number. Got: {value!r}")
    if not low <= float(value) <= high:
        raise MonitorConfigError(f"`{name}` must satisfy {condition or f'{low} <= {name} <= {high}'}. Got: {value!r}")
    return float(value)


def optional_real(value: Any, name: str) -> float | None:
    return None if value is None else real(value, name)


def require(ok: bool, name: str, condition: str, got: Any) -> None:
    """Raise ``"`name` must satisfy <condition>. Got: <got>"`` unless ``ok``."""
    if not ok:
        raise MonitorConfigError(f"`{name}` must satisfy {condition}. Got: {got!r}")


def probability(value: Any, name: str) -> float:
    """``value`` as a float with ``0 < value < 1``."""
    value = real(value, name, low=0.0, high=1.0, condition=f"0 < {name} < 1")
    if value in (0.0, 1.0):
        raise MonitorConfigError(f"`{name}` must satisfy 0 < {name} < 1. Got: {value!r}")
    return value


def integer(value: Any, name: str, *, minimum: int) -> int:
    """``value`` as an int ``>= minimum``, or a :class:`MonitorConfigError`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise MonitorConfigError(f"`{name}` must be an integer >= {minimum}. Got: {value!r}")
    return int(value)


def choice(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise MonitorConfigError(f"`{name}` must be one of {', '.join(map(repr, allowed))}. Got: {value!r}")
    return value


def require_fitted(fitted: bool, owner: object, method: str = "check") -> None:
    if not fitted:
        raise MonitorNotFittedError(
            f"{type(owner).__name__}.{method} was called before fit; call fit(reference) first."
        )


def finite_array(data: Any, name: str, *, ndims: tuple[int, ...]) -> np.ndarray:
    """``data`` as a float array with one of ``ndims`` dimensions, non-empty and finite.

    Raises
    ------
    MonitorInputError
        Naming the first offending position.
    """
    try:
        array = np.asarray(data, dtype=float)
    except (TypeError, ValueError) as error:
        raise MonitorInputError(f"`{name}` must be an array of numbers. Got: {type(data).__name__} ({error})") from None
    if array.ndim not in ndims:
        wanted = " or ".join(f"{d}-D" for d in ndims)
        raise MonitorInputError(f"`{name}` must be {wanted}. Got: shape {array.shape}")
    if array.size == 0:
        raise MonitorInputError(f"`{name}` is empty; it needs at least one observation. Got: shape {array.shape}")
    bad = ~np.isfinite(array)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        position = where[0] if len(where) == 1 else where
        raise MonitorInputError(
            f"`{name}` must contain only finite numbers. Got: {array[bad][0]} at position {position}"
        )
    return array


def finite_matrix(data: Any, name: str, *, width: int | None = None, min_rows: int = 1) -> np.ndarray:
    """``data`` as a finite shape-(N, D) float array with ``N >= min_rows`` (and ``D == width``)."""
    try:
        array = np.asarray(data, dtype=float)
    except (TypeError, ValueError) as error:
        raise MonitorInputError(f"`{name}` must be an array of numbers. Got: {type(data).__name__} ({error})") from None
    if array.ndim != 2:
        raise MonitorInputError(f"`{name}` must be 2-D, shape (N, D). Got: shape {array.shape}")
    if array.shape[0] < min_rows or array.shape[1] == 0:
        raise MonitorInputError(f"`{name}` needs at least {min_rows} row(s) and one column. Got: shape {array.shape}")
    if width is not None and array.shape[1] != width:
        raise MonitorInputError(f"`{name}` must have {width} columns, as in the reference. Got: shape {array.shape}")
    bad = ~np.isfinite(array)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise MonitorInputError(
            f"`{name}` must contain only finite numbers. Got: {array[row, column]} at ({row}, {column})"
        )
    return array


def probabilities(data: Any, name: str, *, width: int | None = None, min_rows: int = 1) -> np.ndarray:
    """``data`` as shape-(N, K) class probabilities: finite, in [0, 1], rows summing to 1."""
    array = finite_matrix(data, name, width=width, min_rows=min_rows)
    if array.shape[1] < 2:
        raise MonitorInputError(f"`{name}` must hold probabilities of at least 2 classes. Got: shape {array.shape}")
    if (array < 0).any() or (array > 1).any():
        raise MonitorInputError(
            f"`{name}` must hold probabilities in [0, 1]. Got values in [{array.min()}, {array.max()}]"
        )
    sums = array.sum(axis=1)
    off = np.abs(sums - 1) > 1e-3
    if off.any():
        row = int(np.argmax(off))
        raise MonitorInputError(
            f"Each row of `{name}` must sum to 1 (softmax outputs). Got: row {row} sums to {sums[row]}"
        )
    return array


def classes(data: Any, name: str, *, min_rows: int = 1) -> np.ndarray:
    """Predicted classes as a shape-(N,) int array: 1-D non-negative integers, or 2-D probabilities (argmax)."""
    try:
        array = np.asarray(data, dtype=float)
    except (TypeError, ValueError) as error:
        raise MonitorInputError(
            f"`{name}` must be an array of class indices. Got: {type(data).__name__} ({error})"
        ) from None
    if array.ndim == 2:
        return probabilities(array, name, min_rows=min_rows).argmax(axis=1)
    if array.ndim != 1:
        raise MonitorInputError(
            f"`{name}` must be shape-(N,) class indices or shape-(N, K) probabilities. Got: shape {array.shape}"
        )
    if array.shape[0] < min_rows:
        raise MonitorInputError(f"`{name}` needs at least {min_rows} element(s). Got: {array.shape[0]}")
    bad = ~np.isfinite(array) | (array < 0) | (array != np.round(array))
    if bad.any():
        index = int(np.argmax(bad))
        raise MonitorInputError(
            f"`{name}` must hold non-negative integer class indices. Got: {array[index]} at {index}"
        )
    return array.astype(np.int64)


def pair(data: Any, name: str) -> tuple[Any, Any]:
    """``(predictions, labels)`` from a 2-tuple or a mapping with those keys."""
    if isinstance(data, Mapping):
        missing = {"predictions", "labels"} - set(data)
        if missing:
            raise MonitorInputError(
                f"`{name}` as a mapping needs the keys 'predictions' and 'labels'. Missing: {sorted(missing)}; "
                f"got keys: {sorted(map(str, data))}"
            )
        return data["predictions"], data["labels"]
    if isinstance(data, tuple | list) and len(data) == 2:
        return data[0], data[1]
    raise MonitorInputError(
        f"`{name}` must be a (predictions, labels) tuple or a mapping with keys 'predictions' and 'labels'. "
        f"Got: {type(data).__name__}"
    )
