"""Two-sided tabular CUSUM of individual observations (Montgomery section 9.1).

The sums are kept in standardised units (``z = (x - mean) / sigma``, Montgomery's "standardized
cusum"), so ``k`` and ``h`` are in sigmas and the decision ``C > h`` is exact:

    C+_i = max(0, C+_{i-1} + z_i - k)        C-_i = max(0, C-_{i-1} - z_i - k)

N+ and N- count the periods since each sum last was zero; after a signal on the upper side the
new mean is estimated as ``mean + sigma (k + C+ / N+)`` (and symmetrically below).
"""

from __future__ import annotations


import numpy as np

from monitors import _inputs
from monitors.control_charts.individual_observations import IndividualObservations
from monitors.control_charts.base import ChartPoint, ControlChart, Stream
from monitors.errors import MonitorConfigError


class CUSUMChart(IndividualObservations, ControlChart):
    """Two-sided tabular CUSUM with reference value ``k`` and decision interval ``h`` (both in sigmas).

    Score convention: ``score = max(C+, C-)`` in sigmas, ``threshold = h``; a point signals when
    ``score > h``.  The plotted value is the larger sum with a sign (``C+``, or ``-C-`` when
    ``C- > C+``) against limits ``+/- h``.

    Parameters
    ----------
    k
        Reference value (allowance), ``k >= 0``; half the shift to detect quickly (0.5 for 1 sigma).
    h
        Decision interval, ``h > 0``; ``k=0.5, h=5`` gives an in-control ARL of about 465.
    headstart
        Fast initial response: both sums start (and restart) at this value, ``0 <= headstart < h``
        (Lucas and Crosier suggest ``h / 2``).
    reset_on_signal
        Restart both sums at ``headstart`` after a signal, as after a corrective action; otherwise
        the sums run on and the chart keeps signalling while the shift lasts.
    mean, sigma, sigma_method, min_baseline, history_size
        The Phase I estimate of single observations' mean and sigma: see
        :class:`~monitors.control_charts.individual_observations.IndividualObservations`.

    Examples
    --------
    >>> import numpy as np
    >>> from monitors.control_charts import CUSUMChart
    >>> rng = np.random.default_rng(5)
    >>> chart = CUSUMChart(k=0.5, h=5.0).fit(rng.normal(100.0, 4.0, size=100))
    >>> chart.check(rng.normal(100.0, 4.0, size=40)).alarm
    False
    >>> result = chart.check(rng.normal(104.0, 4.0, size=40))
    >>> result.alarm, result.details["first_signal"], result.threshold
    (True, 41, 5.0)
    """

    name = "cusum"

    def __init__(
        self,
        *,
        k: float = 0.5,
        h: float = 5.0,
        mean: float | None = None,
        sigma: float | None = None,
        headstart: float = 0.0,
        reset_on_signal: bool = False,
        sigma_method: str = "moving_range",
        min_baseline: int = 20,
        history_size: int | None = 1_000,
    ) -> None:
        super().__init__(min_baseline=min_baseline, history_size=history_size)
        self.k = _inputs.real(k, "k")
        _inputs.require(self.k >= 0, "k", "k >= 0", k)
        self.h = _inputs.real(h, "h")
        _inputs.require(self.h > 0, "h", "h > 0", h)
        self.headstart = _inputs.real(headstart, "headstart")
        _inputs.require(0 <= self.headstart < self.h, "headstart", f"0 <= headstart < h = {self.h}", headstart)
        if not isinstance(reset_on_signal, bool):
            raise MonitorConfigError(f"`reset_on_signal` must be a bool. Got: {reset_on_signal!r}")
        self.reset_on_signal = reset_on_signal
        self._init_observations(mean, sigma, sigma_method)

    @property
    def threshold(self) -> float:
        """``h``: a point signals when either sum exceeds it."""
        return self.h

    def _initial_stream(self, replications: int) -> Stream:
        start = np.full(replications, self.headstart)
        zeros = np.zeros(replications)
        return {"c_plus": start, "c_minus": start.copy(), "n_plus": zeros, "n_minus": zeros.copy()}

    def _advance(self, stream: Stream, observations: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray], Stream]:
        mean, sigma = self._params["mean"], self._params["sigma"]  # type: ignore[index]
        k, h, restart = self.k, self.h, self.headstart
        z = (observations - mean) / sigma
        c_plus, c_minus = stream["c_plus"], stream["c_minus"]
        n_plus, n_minus = stream["n_plus"], stream["n_minus"]
        out = {name: np.empty_like(z) for name in ("c_plus", "c_minus", "n_plus", "n_minus")}
        for t in range(z.shape[1]):
            c_plus = np.maximum(0.0, c_plus + z[:, t] - k)
            c_minus = np.maximum(0.0, c_minus - z[:, t] - k)
            n_plus = np.where(c_plus > 0.0, n_plus + 1.0, 0.0)
            n_minus = np.where(c_minus > 0.0, n_minus + 1.0, 0.0)
            out["c_plus"][:, t], out["c_minus"][:, t] = c_plus, c_minus
            out["n_plus"][:, t], out["n_minus"][:, t] = n_plus, n_minus
            if self.reset_on_signal:
                hit = (c_plus > h) | (c_minus > h)
                c_plus, c_minus = np.where(hit, restart, c_plus), np.where(hit, restart, c_minus)
                n_plus, n_minus = np.where(hit, 0.0, n_plus), np.where(hit, 0.0, n_minus)
        score = np.maximum(out["c_plus"], out["c_minus"])
        return score, out, {"c_plus": c_plus, "c_minus": c_minus, "n_plus": n_plus, "n_minus": n_minus}

    def _points(
        self, score: np.ndarray, signal: np.ndarray, parts: dict[str, np.ndarray], start: int
    ) -> list[ChartPoint]:
        mean, sigma = self._params["mean"], self._params["sigma"]  # type: ignore[index]
        rows = zip(*(parts[name].tolist() for name in ("c_plus", "c_minus", "n_plus", "n_minus")), score.tolist())
        points = []
        for t, (c_plus, c_minus, n_plus, n_minus, point_score) in enumerate(rows):
            rules = tuple(name for name, c in (("cusum_upper", c_plus), ("cusum_lower", c_minus)) if c > self.h)
            details = {"c_plus": c_plus, "c_minus": c_minus, "n_plus": n_plus, "n_minus": n_minus}
            if "cusum_upper" in rules:
                details["estimated_mean"] = mean + sigma * (self.k + c_plus / n_plus)
            elif "cusum_lower" in rules:
                details["estimated_mean"] = mean - sigma * (self.k + c_minus / n_minus)
            points.append(
                ChartPoint(
                    index=start + t,
                    value=c_plus if c_plus >= c_minus else -c_minus,
                    centre=0.0,
                    lcl=-self.h,
                    ucl=self.h,
                    score=point_score,
                    signal=bool(signal[t]),
                    rules=rules,
                    details=details,
                )
            )
        return points
