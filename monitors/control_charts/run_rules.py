"""Western Electric run rules and the Shewhart panel that applies them.

Each of the four classic rules has the same shape, "at least ``count`` of the last ``window``
points beyond ``sigmas`` standard deviations on the same side of the centre line", and fires at
the point that completes the pattern (that point is itself beyond the zone line):

====  ===================================  =====  ======  ======
rule  name                                 count  window  sigmas
====  ===================================  =====  ======  ======
1     one point beyond the control limits  1      1       L
2     2 of 3 beyond 2 sigma                2      3       2
3     4 of 5 beyond 1 sigma                4      5       1
4     8 in a row on one side               8      8       0
====  ===================================  =====  ======  ======

The decision is made in the statistic's own units against the limits and zone lines that are
plotted, so a point on or inside the limits never fires rule 1.  Each rule's *margin* is how far,
in standard deviations of the statistic, the pattern's weakest point lies beyond its zone line:
for rule 1 the distance of the point beyond the nearer limit; for rules 2-4 the smaller of the
current point's and the ``count``-th most extreme point's distance beyond the zone line.  A rule
fires exactly when its margin is positive, and the panel's score is the largest margin.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from monitors.errors import MonitorConfigError


@dataclass(frozen=True)
class WesternElectricRule:
    """At least ``count`` of the last ``window`` points beyond ``sigmas`` (None: the limits) on one side."""

    number: int
    name: str
    description: str
    count: int
    window: int
    sigmas: float | None


WESTERN_ELECTRIC_RULES = MappingProxyType(
    {
        1: WesternElectricRule(1, "western_electric_1", "1 point beyond the control limits", 1, 1, None),
        2: WesternElectricRule(2, "western_electric_2", "2 of 3 successive points beyond 2 sigma, one side", 2, 3, 2.0),
        3: WesternElectricRule(3, "western_electric_3", "4 of 5 successive points beyond 1 sigma, one side", 4, 5, 1.0),
        4: WesternElectricRule(4, "western_electric_4", "8 successive points on one side of the centre", 8, 8, 0.0),
    }
)


def validate_rules(rules: Iterable[int]) -> tuple[int, ...]:
    """The enabled rule numbers, sorted; a :class:`MonitorConfigError` unless a non-empty subset of 1-4."""
    try:
        numbers = list(rules)
    except TypeError:
        raise MonitorConfigError(f"`rules` must be a sequence of rule numbers from 1 to 4. Got: {rules!r}") from None
    if not numbers or any(isinstance(n, bool) or n not in WESTERN_ELECTRIC_RULES for n in numbers):
        raise MonitorConfigError(f"`rules` must be a non-empty subset of (1, 2, 3, 4). Got: {rules!r}")
    if len(set(numbers)) != len(numbers):
        raise MonitorConfigError(f"`rules` must not repeat a rule. Got: {rules!r}")
    return tuple(sorted(int(n) for n in numbers))


class ShewhartPanel:
    """Centre line, limits, zones and run rules of one Shewhart statistic.

    Parameters
    ----------
    centre, sigma
        Centre line and standard deviation of the plotted statistic (``sigma > 0``).
    L
        Limits are ``centre +/- L sigma``, clipped to ``[lower_bound, upper_bound]`` (the range the
        statistic can take, e.g. ``[0, 1]`` for a proportion).
    rules
        Enabled Western Electric rule numbers.
    """

    def __init__(
        self,
        centre: float,
        sigma: float,
        L: float,
        rules: tuple[int, ...],
        *,
        lower_bound: float = -math.inf,
        upper_bound: float = math.inf,
    ) -> None:
        self.centre = centre
        self.sigma = sigma
        self.L = L
        self.rules = rules
        self.lcl = max(lower_bound, centre - L * sigma)
        self.ucl = min(upper_bound, centre + L * sigma)
        self.names = tuple(WESTERN_ELECTRIC_RULES[number].name for number in rules)
        self.memory = max(WESTERN_ELECTRIC_RULES[number].window for number in rules) - 1

    def initial_tail(self, replications: int) -> np.ndarray:
        """The last ``memory`` points of fresh streams.

        A fresh stream behaves as if preceded by points on the centre line.  Such a point is never
        beyond a zone line (every rule needs a point strictly beyond ``centre + sigmas sigma`` with
        ``sigmas >= 0``), so no rule fires before enough real points exist, and every margin is finite.
        """
        return np.full((replications, self.memory), self.centre)

    def evaluate(self, values: np.ndarray, tail: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rule margins of shape-(R, T) new values following shape-(R, memory) ``tail``.

        Returns
        -------
        margins
            Shape-(R, T, len(rules)); rule j fires at a point when ``margins[..., j] > 0``.
        tail
            The new shape-(R, memory) tail.
        """
        extended = np.concatenate([tail, values], axis=1)
        # windows[:, t, -w:] are the last w points up to new point t, for every rule's w
        windows = sliding_window_view(extended, self.memory + 1, axis=1)
        margins = np.empty(values.shape + (len(self.rules),))
        for j, number in enumerate(self.rules):
            rule = WESTERN_ELECTRIC_RULES[number]
            if rule.sigmas is None:
                margins[..., j] = np.maximum(values - self.ucl, self.lcl - values) / self.sigma
                continue
            upper = self.centre + rule.sigmas * self.sigma
            lower = self.centre - rule.sigmas * self.sigma
            window = windows[..., windows.shape[-1] - rule.window :]
            above = _pattern_margin(window - upper, values - upper, rule.count)
            below = _pattern_margin(lower - window, lower - values, rule.count)
            margins[..., j] = np.maximum(above, below) / self.sigma
        return margins, extended[:, extended.shape[1] - self.memory :]


def _pattern_margin(beyond: np.ndarray, current: np.ndarray, count: int) -> np.ndarray:
    """min(current point's excess, ``count``-th largest excess in the window)."""
    window = beyond.shape[-1]
    kth_largest = np.partition(beyond, window - count, axis=-1)[..., window - count]
    return np.minimum(current, kth_largest)
