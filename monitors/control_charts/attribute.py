"""p and np charts: the fraction or number of nonconforming items in subgroups of size n.

For trust metrics "nonconforming" is e.g. "flagged as adversarial" or "misclassified", out of a
batch of ``n`` inputs.  Limits use the normal approximation, ``p +/- L sqrt(p (1 - p) / n)``
(times ``n`` for the np chart), clipped to the possible range (Montgomery section 7.2).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from monitors import _inputs
from monitors.control_charts.run_rules import ShewhartPanel
from monitors.control_charts.shewhart import ShewhartChart
from monitors.errors import MonitorInputError

KINDS = ("count", "proportion")


class _AttributeChart(ShewhartChart):
    """Shared Phase I and input checks of the p and np charts."""

    kind = "count"

    def __init__(
        self,
        *,
        n: int,
        L: float = 3.0,
        rules: tuple[int, ...] | list[int] = (1,),
        p0: float | None = None,
        min_baseline: int = 20,
        history_size: int | None = 1_000,
    ) -> None:
        super().__init__(L=L, rules=rules, min_baseline=min_baseline, history_size=history_size)
        self.n = _inputs.integer(n, "n", minimum=1)
        self.p0 = _inputs.optional_real(p0, "p0")
        if self.p0 is not None:
            _inputs.require(0.0 < self.p0 < 1.0, "p0", "0 < p0 < 1", p0)
            self._set_params({"p": self.p0})
            self.reset()

    def _validated(self, data: Any, name: str, ndims: tuple[int, ...]) -> np.ndarray:
        """Validated shape-(T,) counts (or fractions, for a p chart of kind "proportion")."""
        array = _inputs.finite_array(data, name, ndims=ndims).reshape(-1)
        if self.kind == "proportion":
            bad = (array < 0) | (array > 1)
            if bad.any():
                i = int(np.argmax(bad))
                raise MonitorInputError(f"`{name}` proportions must lie in [0, 1]. Got: {array[i]} at position {i}")
            return array
        bad = (array < 0) | (array > self.n) | (array != np.round(array))
        if bad.any():
            i = int(np.argmax(bad))
            raise MonitorInputError(
                f"`{name}` counts must be whole numbers with 0 <= count <= n = {self.n}. "
                f"Got: {array[i]} at position {i}"
            )
        return array

    def _estimate(self, reference: Any) -> dict[str, Any]:
        values = self._validated(reference, "reference", (1,))
        if self.p0 is not None:
            return {"p": self.p0}
        if values.size < self.min_baseline:
            raise MonitorInputError(
                f"`reference` has {values.size} subgroups; Phase I needs at least min_baseline = {self.min_baseline}."
            )
        # p-bar = total nonconforming / total inspected (Montgomery eq. 7.7)
        p = float(np.mean(values)) if self.kind == "proportion" else float(np.sum(values)) / (values.size * self.n)
        if not 0.0 < p < 1.0:
            raise MonitorInputError(
                f"The Phase I fraction nonconforming is {p}; limits need 0 < p < 1. "
                "Pass `p0` or use a longer reference."
            )
        return {"p": p}

    def _observations(self, data: Any, *, single: bool) -> np.ndarray:
        return self._validated(data, "x" if single else "batch", (0,) if single else (0, 1))

    @classmethod
    def _unit_test_params(cls) -> list[dict[str, Any]]:
        return [{"n": 50}]

    @classmethod
    def _unit_test_data(cls, generator: np.random.Generator) -> tuple[Any, Any]:
        return generator.binomial(50, 0.1, size=30), generator.binomial(50, 0.1, size=10)


class PChart(_AttributeChart):
    """Fraction nonconforming per subgroup of ``n`` items.

    Score convention: see :mod:`monitors.control_charts.shewhart` (largest run-rule margin in
    standard deviations of the fraction, threshold 0).

    Parameters
    ----------
    n
        Items per subgroup (constant).
    L, rules
        Limit width in sigmas and the Western Electric rules, from ``(1, 2, 3, 4)``.
    p0
        Reference fraction nonconforming, ``0 < p0 < 1`` ("standard given"); estimated by ``fit``
        (as p-bar, the mean fraction of the reference subgroups) when ``None``.
    kind
        What ``check``/``update``/``fit`` receive: ``"count"`` (whole numbers 0..n) or
        ``"proportion"`` (fractions in [0, 1]).
    min_baseline, history_size
        See :class:`~monitors.control_charts.base.ControlChart` (``min_baseline`` counts subgroups).

    Examples
    --------
    >>> import numpy as np
    >>> from monitors.control_charts import PChart
    >>> rng = np.random.default_rng(2)
    >>> chart = PChart(n=200).fit(rng.binomial(200, 0.05, size=30))
    >>> round(chart.panel.centre, 4), round(chart.panel.ucl, 4)
    (0.0483, 0.0938)
    >>> chart.check(rng.binomial(200, 0.05, size=20)).alarm
    False
    >>> chart.update(30).signal
    True
    """

    name = "p_chart"

    def __init__(
        self,
        *,
        n: int,
        L: float = 3.0,
        rules: tuple[int, ...] | list[int] = (1,),
        p0: float | None = None,
        kind: str = "count",
        min_baseline: int = 20,
        history_size: int | None = 1_000,
    ) -> None:
        self.kind = _inputs.choice(kind, "kind", KINDS)
        super().__init__(n=n, L=L, rules=rules, p0=p0, min_baseline=min_baseline, history_size=history_size)

    def _set_params(self, params: dict[str, Any]) -> None:
        p = float(params["p"])
        self._params = {"p": p}
        self._panel = ShewhartPanel(
            p, math.sqrt(p * (1.0 - p) / self.n), self.L, self.rules, lower_bound=0.0, upper_bound=1.0
        )

    def _statistic(self, observations: np.ndarray) -> np.ndarray:
        return observations if self.kind == "proportion" else observations / self.n


class NPChart(_AttributeChart):
    """Number nonconforming per subgroup of ``n`` items: centre ``n p``, limits ``n p +/- L sqrt(n p (1 - p))``.

    Takes whole-number counts ``0 <= count <= n``.  Score convention: see
    :mod:`monitors.control_charts.shewhart` (threshold 0).  Parameters as :class:`PChart`
    (without ``kind``).

    Examples
    --------
    >>> import numpy as np
    >>> from monitors.control_charts import NPChart
    >>> rng = np.random.default_rng(3)
    >>> chart = NPChart(n=100, rules=(1, 2, 3, 4)).fit(rng.binomial(100, 0.1, size=25))
    >>> round(chart.panel.centre, 2), round(chart.panel.lcl, 2), round(chart.panel.ucl, 2)
    (9.52, 0.72, 18.32)
    >>> chart.check(rng.binomial(100, 0.1, size=10)).alarm
    False
    >>> result = chart.check(rng.binomial(100, 0.2, size=10))
    >>> result.alarm, result.details["first_signal"]
    (True, 10)
    """

    name = "np_chart"

    def _set_params(self, params: dict[str, Any]) -> None:
        p = float(params["p"])
        self._params = {"p": p}
        self._panel = ShewhartPanel(
            self.n * p,
            math.sqrt(self.n * p * (1.0 - p)),
            self.L,
            self.rules,
            lower_bound=0.0,
            upper_bound=float(self.n),
        )

    def _statistic(self, observations: np.ndarray) -> np.ndarray:
        return observations
