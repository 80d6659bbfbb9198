"""Shewhart chart for individual observations (the X chart)."""

from __future__ import annotations

from typing import Any

from monitors.control_charts.individual_observations import IndividualObservations
from monitors.control_charts.run_rules import ShewhartPanel
from monitors.control_charts.shewhart import ShewhartChart


class IndividualsChart(IndividualObservations, ShewhartChart):
    """Shewhart chart of single observations: limits ``mean +/- L sigma``.

    Suits one trust metric per batch (a batch accuracy, a detector's flag rate).  Score convention:
    see :mod:`monitors.control_charts.shewhart` (score = largest run-rule margin, threshold 0).

    Parameters
    ----------
    L
        Limit width in sigmas (3 gives an in-control ARL of about 370).
    rules
        Western Electric rules to apply, from ``(1, 2, 3, 4)``.
    mean, sigma
        Reference values ("standards given"); whichever is ``None`` is estimated by ``fit``.
    sigma_method
        ``"moving_range"`` (average moving range / 1.128, Montgomery's default) or ``"std"`` (s / c4).
    min_baseline, history_size
        See :class:`~monitors.control_charts.base.ControlChart`.

    Examples
    --------
    >>> import numpy as np
    >>> from monitors.control_charts import IndividualsChart
    >>> rng = np.random.default_rng(0)
    >>> chart = IndividualsChart(rules=(1, 2)).fit(rng.normal(0.9, 0.01, size=100))
    >>> chart.check(rng.normal(0.9, 0.01, size=30)).alarm
    False
    >>> point = chart.update(0.85)
    >>> point.signal, point.rules
    (True, ('western_electric_1',))
    """

    name = "individuals"

    def __init__(
        self,
        *,
        L: float = 3.0,
        rules: tuple[int, ...] | list[int] = (1,),
        mean: float | None = None,
        sigma: float | None = None,
        sigma_method: str = "moving_range",
        min_baseline: int = 20,
        history_size: int | None = 1_000,
    ) -> None:
        super().__init__(L=L, rules=rules, min_baseline=min_baseline, history_size=history_size)
        self._init_observations(mean, sigma, sigma_method)

    def _set_params(self, params: dict[str, Any]) -> None:
        super()._set_params(params)
        self._panel = ShewhartPanel(self._params["mean"], self._params["sigma"], self.L, self.rules)
