"""Argument and input checks shared by the charts; each error says what was given and what is allowed."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from monitors.errors import MonitorConfigError, MonitorInputError


def real(value: Any, name: str) -> float:
    """``value`` as a finite float, or a :class:`MonitorConfigError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise MonitorConfigError(f"`{name}` must be a finite real number. Got: {value!r}")
    return float(value)


def optional_real(value: Any, name: str) -> float | None:
    return None if value is None else real(value, name)


def integer(value: Any, name: str, *, minimum: int) -> int:
    """``value`` as an int ``>= minimum``, or a :class:`MonitorConfigError`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise MonitorConfigError(f"`{name}` must be an integer >= {minimum}. Got: {value!r}")
    if value < minimum:
        raise MonitorConfigError(f"`{name}` must satisfy {name} >= {minimum}. Got: {value!r}")
    return int(value)


def require(ok: bool, name: str, condition: str, got: Any) -> None:
    """Raise ``"`name` must satisfy <condition>. Got: <got>"`` unless ``ok``."""
    if not ok:
        raise MonitorConfigError(f"`{name}` must satisfy {condition}. Got: {got!r}")


def choice(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise MonitorConfigError(f"`{name}` must be one of {', '.join(map(repr, allowed))}. Got: {value!r}")
    return value


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
