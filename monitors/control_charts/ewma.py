"""EWMA chart of individual observations (Montgomery section 9.2)."""

from __future__ import annotations

import math

import numpy as np

from monitors import _inputs
from monitors.control_charts.individual_observations import IndividualObservations
from monitors.control_charts.base import ChartPoint, ControlChart, Stream

LIMITS = ("exact", "asymptotic")


class EWMAChart(IndividualObservations, ControlChart):
    """Exponentially weighted moving average ``z_i = z_{i-1} + lam (x_i - z_{i-1})``, ``z_0 = mean``.

    Limits are ``mean +/- L sigma_i`` with ``sigma_i = sigma sqrt(lam / (2 - lam) (1 - (1 - lam)^(2 i)))``
    (``limits="exact"``, narrower for the first points) or its limit as ``i`` grows
    (``limits="asymptotic"``, the setting of the published ARL tables).

    Score convention: ``score = |z_i - mean| / sigma_i`` (the standardised EWMA), ``threshold = L``;
    a point signals when ``score > L``.

    Parameters
    ----------
    lam
        Smoothing weight, ``0 < lam <= 1`` (1 gives the individuals chart).
    L
        Limit width in standard deviations of the EWMA; ``lam=0.2, L=2.962`` gives an in-control
        ARL of about 500 (Lucas and Saccucci, 1990).
    limits
        ``"exact"`` or ``"asymptotic"``.
    mean, sigma, sigma_method, min_baseline, history_size
        The Phase I estimate of single observations' mean and sigma: see
        :class:`~monitors.control_charts.individual_observations.IndividualObservations`.

    Examples
    --------
    >>> import numpy as np
    >>> from monitors.control_charts import EWMAChart
    >>> rng = np.random.default_rng(4)
    >>> chart = EWMAChart(lam=0.2, L=2.962).fit(rng.normal(0.0, 1.0, size=100))
    >>> chart.check(rng.normal(0.0, 1.0, size=40)).alarm
    False
    >>> result = chart.check(rng.normal(1.0, 1.0, size=40))
    >>> result.alarm, result.details["first_signal"], result.threshold
    (True, 50, 2.962)
    """

    name = "ewma"

    def __init__(
        self,
        *,
        lam: float = 0.2,
        L: float = 2.962,
        mean: float | None = None,
        sigma: float | None = None,
        limits: str = "exact",
        sigma_method: str = "moving_range",
        min_baseline: int = 20,
        history_size: int | None = 1_000,
    ) -> None:
        super().__init__(min_baseline=min_baseline, history_size=history_size)
        self.lam = _inputs.real(lam, "lam")
        _inputs.require(0.0 < self.lam <= 1.0, "lam", "0 < lam <= 1", lam)
        self.L = _inputs.real(L, "L")
        _inputs.require(self.L > 0, "L", "L > 0", L)
        self.limits = _inputs.choice(limits, "limits", LIMITS)
        self._init_observations(mean, sigma, sigma_method)

    @property
    def threshold(self) -> float:
        """``L``: a point signals when its standardised EWMA exceeds it in absolute value."""
        return self.L

    def _initial_stream(self, replications: int) -> Stream:
        # decay = (1 - lam)^(2 i), kept as a running product so that any split of a stream into
        # batches gives bit-identical limits.
        return {"z": np.full(replications, self._params["mean"]), "decay": np.ones(replications)}  # type: ignore[index]

    def _advance(self, stream: Stream, observations: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray], Stream]:
        mean, sigma = self._params["mean"], self._params["sigma"]  # type: ignore[index]
        lam, keep = self.lam, (1.0 - self.lam) ** 2
        z, decay = stream["z"], stream["decay"]
        ewma = np.empty_like(observations)
        decays = np.empty_like(observations)
        for t in range(observations.shape[1]):
            z = z + lam * (observations[:, t] - z)  # exact for a constant stream, unlike lam x + (1 - lam) z
            decay = decay * keep
            ewma[:, t] = z
            decays[:, t] = decay
        if self.limits == "exact":
            spread = sigma * np.sqrt(lam / (2.0 - lam) * (1.0 - decays))
        else:
            spread = np.full_like(ewma, sigma * math.sqrt(lam / (2.0 - lam)))
        score = np.abs(ewma - mean) / spread
        parts = {"ewma": ewma, "spread": spread, "x": observations}
        return score, parts, {"z": z, "decay": decay}

    def _points(
        self, score: np.ndarray, signal: np.ndarray, parts: dict[str, np.ndarray], start: int
    ) -> list[ChartPoint]:
        mean = self._params["mean"]  # type: ignore[index]
        rows = zip(*(parts[name].tolist() for name in ("ewma", "spread", "x")), score.tolist(), signal.tolist())
        return [
            ChartPoint(
                index=start + t,
                value=value,
                centre=mean,
                lcl=mean - self.L * spread,
                ucl=mean + self.L * spread,
                score=point_score,
                signal=point_signal,
                rules=("ewma_beyond_limits",) if point_signal else (),
                details={"observation": x},
            )
            for t, (value, spread, x, point_score, point_signal) in enumerate(rows)
        ]
