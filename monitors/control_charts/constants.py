"""Control-chart constants and the Phase I estimate for charts of individual observations.

The constants are those tabulated in Montgomery, *Introduction to Statistical Quality Control*
(Appendix VI), computed exactly from their definitions so any subgroup size and any limit width
``L`` work (the tables are the case ``L = 3``):

- ``c4(n)``: E[s] / sigma for a normal subgroup of size n;
- ``A3 = L / (c4 sqrt(n))``: x-bar limits are x-double-bar +/- A3 s-bar;
- ``B3, B4 = 1 -/+ L sqrt(1 - c4^2) / c4`` (B3 floored at 0): s limits are B3 s-bar, B4 s-bar;
- ``B5, B6 = c4 -/+ L sqrt(1 - c4^2)``: s limits when sigma is given;
- ``d2(2) = 2 / sqrt(pi)``: E[moving range of two] / sigma, for individuals.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from monitors import _inputs
from monitors.errors import MonitorInputError

D2_MOVING_RANGE = 2.0 / math.sqrt(math.pi)
SIGMA_METHODS = ("moving_range", "std")


def c4(n: int) -> float:
    """E[s] / sigma for a subgroup of ``n >= 2`` normal observations (s with divisor n - 1)."""
    n = _inputs.integer(n, "n", minimum=2)
    return math.sqrt(2.0 / (n - 1)) * math.exp(math.lgamma(n / 2) - math.lgamma((n - 1) / 2))


def a3(n: int, L: float = 3.0) -> float:
    """Half-width of the x-bar limits in units of s-bar."""
    return L / (c4(n) * math.sqrt(n))


def b3(n: int, L: float = 3.0) -> float:
    """Lower s-chart limit in units of s-bar (0 when the formula goes negative)."""
    c = c4(n)
    return max(0.0, 1.0 - L * math.sqrt(1.0 - c * c) / c)


def b4(n: int, L: float = 3.0) -> float:
    """Upper s-chart limit in units of s-bar."""
    c = c4(n)
    return 1.0 + L * math.sqrt(1.0 - c * c) / c


def b5(n: int, L: float = 3.0) -> float:
    """Lower s-chart limit in units of a given sigma (0 when the formula goes negative)."""
    c = c4(n)
    return max(0.0, c - L * math.sqrt(1.0 - c * c))


def b6(n: int, L: float = 3.0) -> float:
    """Upper s-chart limit in units of a given sigma."""
    c = c4(n)
    return c + L * math.sqrt(1.0 - c * c)


def estimate_individuals(
    reference: Any, *, mean: float | None, sigma: float | None, sigma_method: str, min_baseline: int
) -> dict[str, float]:
    """Phase I for individual observations: the process mean and sigma.

    Whatever is given is kept; the rest is estimated from ``reference`` (shape-(N,)): the mean
    by the sample mean, sigma by the average moving range over ``d2 = 1.128`` (Montgomery's
    individuals chart; robust to slow drift in the baseline) or by ``s / c4(N)``.

    Raises
    ------
    MonitorInputError
        If ``reference`` is not finite and 1-D, shorter than ``min_baseline`` when something has
        to be estimated, or constant (sigma estimate 0).
    """
    data = _inputs.finite_array(reference, "reference", ndims=(1,))
    if mean is not None and sigma is not None:
        return {"mean": mean, "sigma": sigma}
    if data.size < min_baseline:
        raise MonitorInputError(
            f"`reference` has {data.size} observations; Phase I needs at least min_baseline = {min_baseline}."
        )
    if sigma is None:
        if sigma_method == "moving_range":
            sigma = float(np.mean(np.abs(np.diff(data)))) / D2_MOVING_RANGE
        else:
            sigma = float(np.std(data, ddof=1)) / c4(data.size)
        if not sigma > 0.0:
            raise MonitorInputError(
                "The Phase I estimate of sigma is 0 (the reference does not vary); "
                "pass `sigma` or use a varying reference."
            )
    return {"mean": float(np.mean(data)) if mean is None else mean, "sigma": sigma}
