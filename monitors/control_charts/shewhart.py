"""The shared Shewhart machinery: one panel, fixed limits, optional Western Electric rules.

Score convention of every Shewhart chart (individuals, x-bar/s, p, np): a point's ``score`` is
its largest run-rule margin (see :mod:`monitors.control_charts.run_rules`), in standard
deviations of the plotted statistic: negative inside the limits, positive beyond them (or when a
run pattern completes).  ``threshold`` is ``0.0``; ``alarm``/``signal`` is ``score > 0``.  With
only rule 1 enabled the score is simply how far the point lies beyond the nearer control limit,
so ``score + L`` is the familiar ``|x - centre| / sigma`` (up to rounding, when limits are not
clipped).  The margin, not ``|z|``, is the score because run rules can fire inside the limits.
"""

from __future__ import annotations


import numpy as np

from monitors import _inputs
from monitors.control_charts.base import ChartPoint, ControlChart, Stream
from monitors.control_charts.run_rules import ShewhartPanel, validate_rules


class ShewhartChart(ControlChart):
    """Base of the single-panel Shewhart charts; subclasses build ``self._panel`` in ``_set_params``."""

    _panel: ShewhartPanel

    def __init__(
        self,
        *,
        L: float = 3.0,
        rules: tuple[int, ...] | list[int] = (1,),
        min_baseline: int = 20,
        history_size: int | None = 1_000,
    ) -> None:
        super().__init__(min_baseline=min_baseline, history_size=history_size)
        self.L = _inputs.real(L, "L")
        _inputs.require(self.L > 0, "L", "L > 0", L)
        self.rules = validate_rules(rules)

    @property
    def threshold(self) -> float:
        """0.0: a point signals when its largest rule margin is positive."""
        return 0.0

    @property
    def panel(self) -> ShewhartPanel:
        """Centre line, limits and rules in force."""
        self._require_fitted()
        return self._panel

    def _statistic(self, observations: np.ndarray) -> np.ndarray:
        """Shape-(R, T) plotted statistic of shape-(R, T, ...) observations."""
        return observations

    def _initial_stream(self, replications: int) -> Stream:
        return {"tail": self._panel.initial_tail(replications)}

    def _advance(self, stream: Stream, observations: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray], Stream]:
        values = self._statistic(observations)
        margins, tail = self._panel.evaluate(values, stream["tail"])
        return margins.max(axis=-1), {"value": values, "margins": margins}, {"tail": tail}

    def _points(
        self, score: np.ndarray, signal: np.ndarray, parts: dict[str, np.ndarray], start: int
    ) -> list[ChartPoint]:
        return panel_points(self._panel, parts["value"], parts["margins"], score, signal, start)


def panel_points(
    panel: ShewhartPanel,
    values: np.ndarray,
    margins: np.ndarray,
    score: np.ndarray,
    signal: np.ndarray,
    start: int,
    *,
    prefix: str = "",
) -> list[ChartPoint]:
    """Points of one stream of one panel from shape-(T,) values/scores and shape-(T, n_rules) margins."""
    fired = margins > 0
    return [
        ChartPoint(
            index=start + t,
            value=value,
            centre=panel.centre,
            lcl=panel.lcl,
            ucl=panel.ucl,
            score=point_score,
            signal=point_signal,
            rules=tuple(prefix + name for name, hit in zip(panel.names, fired[t]) if hit),
        )
        for t, (value, point_score, point_signal) in enumerate(zip(values.tolist(), score.tolist(), signal.tolist()))
    ]
