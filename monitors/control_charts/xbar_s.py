"""x-bar and s charts for subgroups of fixed size n (Montgomery section 6.3)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from monitors import _inputs
from monitors.control_charts.base import ChartPoint, ControlChart, Stream
from monitors.control_charts.constants import c4
from monitors.control_charts.run_rules import ShewhartPanel, validate_rules
from monitors.control_charts.shewhart import panel_points
from monitors.errors import MonitorConfigError, MonitorInputError


class XbarSChart(ControlChart):
    """Paired x-bar and s charts of subgroups of ``n`` observations.

    Phase I from ``m`` subgroups: x-bar limits ``x-double-bar +/- A3 s-bar``, s limits ``B3 s-bar``
    and ``B4 s-bar`` (with ``L = 3`` these are the textbook constants; other ``L`` scale them).
    With ``sigma`` given: x-bar limits ``mean +/- L sigma / sqrt(n)``, s centre ``c4 sigma`` and
    limits ``B5 sigma``, ``B6 sigma``.

    ``update`` takes one shape-(n,) subgroup; ``check`` takes shape-(m, n) subgroups (a shape-(n,)
    array is one subgroup).  Each point is the x-bar point, with the s point as its ``companion``;
    the chart signals when either panel does, and s-panel rule names carry an ``"s:"`` prefix.
    Score convention: see :mod:`monitors.control_charts.shewhart`; the score is the larger of the
    two panels' scores, threshold 0.  The enabled run rules apply to both panels (the s statistic is skewed, so rules
    2-4 on the s panel have a false-alarm rate different from the normal-theory one).

    Parameters
    ----------
    n
        Subgroup size (>= 2); taken from the reference's shape when ``None``.
    L, rules
        Limit width in sigmas and the Western Electric rules, from ``(1, 2, 3, 4)``.
    mean, sigma
        Process mean and standard deviation of single observations ("standards given"); whichever
        is ``None`` is estimated by ``fit``.  With both given, ``n`` is required.
    min_baseline, history_size
        See :class:`~monitors.control_charts.base.ControlChart` (``min_baseline`` counts subgroups).

    Examples
    --------
    >>> import numpy as np
    >>> from monitors.control_charts import XbarSChart
    >>> rng = np.random.default_rng(1)
    >>> chart = XbarSChart().fit(rng.normal(10.0, 2.0, size=(25, 5)))
    >>> chart.params["n"]
    5
    >>> chart.check(rng.normal(10.0, 2.0, size=(10, 5))).alarm
    False
    >>> point = chart.update(rng.normal(14.0, 2.0, size=5))
    >>> point.signal, point.rules
    (True, ('western_electric_1',))
    """

    name = "xbar_s"

    def __init__(
        self,
        *,
        n: int | None = None,
        L: float = 3.0,
        rules: tuple[int, ...] | list[int] = (1,),
        mean: float | None = None,
        sigma: float | None = None,
        min_baseline: int = 20,
        history_size: int | None = 1_000,
    ) -> None:
        super().__init__(min_baseline=min_baseline, history_size=history_size)
        if n is not None:
            if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 2:
                raise MonitorConfigError(
                    f"`n` must satisfy n >= 2 (the s chart needs two observations per subgroup). Got: {n!r}"
                )
            n = int(n)
        self.n = n
        self.L = _inputs.real(L, "L")
        _inputs.require(self.L > 0, "L", "L > 0", L)
        self.rules = validate_rules(rules)
        self.mean = _inputs.optional_real(mean, "mean")
        self.sigma = _inputs.optional_real(sigma, "sigma")
        if self.sigma is not None:
            _inputs.require(self.sigma > 0, "sigma", "sigma > 0", sigma)
        if self.mean is not None and self.sigma is not None:
            if self.n is None:
                raise MonitorConfigError("`n` is needed when both `mean` and `sigma` are given. Got: n=None")
            self._set_params(self._given_params(self.n, self.mean, self.sigma))
            self.reset()

    @property
    def threshold(self) -> float:
        """0.0: a subgroup signals when the larger of its two panels' rule margins is positive."""
        return 0.0

    @property
    def panels(self) -> tuple[ShewhartPanel, ShewhartPanel]:
        """The x-bar and s panels."""
        self._require_fitted()
        return self._xbar, self._s

    @staticmethod
    def _given_params(n: int, mean: float, sigma: float) -> dict[str, Any]:
        c = c4(n)
        return {
            "n": n,
            "sigma": sigma,
            "xbar_centre": mean,
            "xbar_sigma": sigma / math.sqrt(n),
            "s_centre": c * sigma,
            "s_sigma": sigma * math.sqrt(1.0 - c * c),
        }

    def _estimate(self, reference: Any) -> dict[str, Any]:
        data = _inputs.finite_array(reference, "reference", ndims=(2,))
        m, n = data.shape
        if n < 2:
            raise MonitorInputError(
                "Subgroup size n must be >= 2 for the s chart "
                f"(`reference` has shape (m, n) = {data.shape}). Got: n={n}"
            )
        if self.n is not None and n != self.n:
            raise MonitorInputError(f"`reference` subgroups must have n = {self.n} observations. Got: {n}")
        if self.mean is not None and self.sigma is not None:
            return self._given_params(n, self.mean, self.sigma)
        if m < self.min_baseline:
            raise MonitorInputError(
                f"`reference` has {m} subgroups; Phase I needs at least min_baseline = {self.min_baseline}."
            )
        c = c4(n)
        mean = float(np.mean(data.mean(axis=1))) if self.mean is None else self.mean
        if self.sigma is not None:
            return self._given_params(n, mean, self.sigma)
        s_bar = float(np.mean(data.std(axis=1, ddof=1)))
        if not s_bar > 0.0:
            raise MonitorInputError("s-bar is 0 (no subgroup varies); pass `sigma` or use a varying reference.")
        return {
            "n": n,
            "sigma": s_bar / c,
            "xbar_centre": mean,
            "xbar_sigma": s_bar / (c * math.sqrt(n)),  # L times this is A3 s-bar
            "s_centre": s_bar,
            "s_sigma": s_bar * math.sqrt(1.0 - c * c) / c,  # B3, B4 = 1 -/+ L times this / s-bar
        }

    def _set_params(self, params: dict[str, Any]) -> None:
        self._params = {key: int(value) if key == "n" else float(value) for key, value in params.items()}
        p = self._params
        self._xbar = ShewhartPanel(p["xbar_centre"], p["xbar_sigma"], self.L, self.rules)
        self._s = ShewhartPanel(p["s_centre"], p["s_sigma"], self.L, self.rules, lower_bound=0.0)

    def _observations(self, data: Any, *, single: bool) -> np.ndarray:
        name = "subgroup" if single else "batch"
        array = _inputs.finite_array(data, name, ndims=(1,) if single else (1, 2))
        array = array.reshape(1, -1) if array.ndim == 1 else array
        n = self._params["n"]  # type: ignore[index]
        if array.shape[1] != n:
            raise MonitorInputError(
                f"`{name}` subgroups must have n = {n} observations (as in Phase I). Got: {array.shape[1]}"
            )
        return array

    def _initial_stream(self, replications: int) -> Stream:
        return {"xbar_tail": self._xbar.initial_tail(replications), "s_tail": self._s.initial_tail(replications)}

    def _advance(self, stream: Stream, observations: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray], Stream]:
        xbar = observations.mean(axis=-1)
        s = observations.std(axis=-1, ddof=1)
        xbar_margins, xbar_tail = self._xbar.evaluate(xbar, stream["xbar_tail"])
        s_margins, s_tail = self._s.evaluate(s, stream["s_tail"])
        xbar_score, s_score = xbar_margins.max(axis=-1), s_margins.max(axis=-1)
        parts = {"xbar": xbar, "s": s, "xbar_margins": xbar_margins, "s_margins": s_margins, "s_score": s_score}
        parts["xbar_score"] = xbar_score
        return np.maximum(xbar_score, s_score), parts, {"xbar_tail": xbar_tail, "s_tail": s_tail}

    def _points(
        self, score: np.ndarray, signal: np.ndarray, parts: dict[str, np.ndarray], start: int
    ) -> list[ChartPoint]:
        xbar_points = panel_points(
            self._xbar, parts["xbar"], parts["xbar_margins"], parts["xbar_score"], parts["xbar_score"] > 0, start
        )
        s_points = panel_points(
            self._s, parts["s"], parts["s_margins"], parts["s_score"], parts["s_score"] > 0, start, prefix="s:"
        )
        return [
            ChartPoint(
                index=x.index,
                value=x.value,
                centre=x.centre,
                lcl=x.lcl,
                ucl=x.ucl,
                score=point_score,
                signal=point_signal,
                rules=x.rules + s.rules,
                companion=s,
            )
            for x, s, point_score, point_signal in zip(xbar_points, s_points, score.tolist(), signal.tolist())
        ]

    def _sample(self, generator: np.random.Generator, shape: tuple[int, int], shift: float) -> np.ndarray:
        mean, sigma, n = self._params["xbar_centre"], self._params["sigma"], self._params["n"]  # type: ignore[index]
        return generator.normal(mean + shift * sigma, sigma, size=shape + (n,))

    @classmethod
    def _unit_test_data(cls, generator: np.random.Generator) -> tuple[Any, Any]:
        return generator.normal(0.0, 1.0, size=(25, 4)), generator.normal(0.0, 1.0, size=(10, 4))
