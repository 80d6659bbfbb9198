"""What charts of single observations (individuals, EWMA, CUSUM) share: a mean and a sigma."""

from __future__ import annotations

from typing import Any

import numpy as np

from monitors.control_charts import _checks
from monitors.control_charts.constants import estimate_individuals


class IndividualObservations:
    """Phase I estimates ``mean`` and ``sigma`` from single observations (unless both are given)."""

    mean: float | None
    sigma: float | None
    sigma_method: str
    min_baseline: int
    _params: dict[str, float]

    def _estimate(self, reference: Any) -> dict[str, Any]:
        return estimate_individuals(
            reference, mean=self.mean, sigma=self.sigma, sigma_method=self.sigma_method, min_baseline=self.min_baseline
        )

    def _set_params(self, params: dict[str, Any]) -> None:
        self._params = {"mean": float(params["mean"]), "sigma": float(params["sigma"])}

    def _observations(self, data: Any, *, single: bool) -> np.ndarray:
        return _checks.finite_array(data, "x" if single else "batch", ndims=(0,) if single else (0, 1)).reshape(-1)
