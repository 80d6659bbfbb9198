"""What charts of single observations (individuals, EWMA, CUSUM) share: a mean and a sigma."""

from __future__ import annotations

from typing import Any

import numpy as np

from monitors import _inputs
from monitors.control_charts.constants import SIGMA_METHODS, estimate_individuals


class IndividualObservations:
    """Phase I estimates ``mean`` and ``sigma`` from single observations (unless both are given).

    A chart calls :meth:`_init_observations` last in its ``__init__``: with both values given
    ("standards given") the chart is ready without ``fit``.
    """

    mean: float | None
    sigma: float | None
    sigma_method: str
    min_baseline: int
    _params: dict[str, float]

    def _init_observations(self, mean: float | None, sigma: float | None, sigma_method: str) -> None:
        self.mean = _inputs.optional_real(mean, "mean")
        self.sigma = _inputs.optional_real(sigma, "sigma")
        if self.sigma is not None:
            _inputs.require(self.sigma > 0, "sigma", "sigma > 0", sigma)
        self.sigma_method = _inputs.choice(sigma_method, "sigma_method", SIGMA_METHODS)
        if self.mean is not None and self.sigma is not None:
            self._set_params({"mean": self.mean, "sigma": self.sigma})
            self.reset()  # type: ignore[attr-defined]

    def _estimate(self, reference: Any) -> dict[str, Any]:
        return estimate_individuals(
            reference, mean=self.mean, sigma=self.sigma, sigma_method=self.sigma_method, min_baseline=self.min_baseline
        )

    def _set_params(self, params: dict[str, Any]) -> None:
        self._params = {"mean": float(params["mean"]), "sigma": float(params["sigma"])}

    def _observations(self, data: Any, *, single: bool) -> np.ndarray:
        return _inputs.finite_array(data, "x" if single else "batch", ndims=(0,) if single else (0, 1)).reshape(-1)

    def _sample(self, generator: np.random.Generator, shape: tuple[int, int], shift: float) -> np.ndarray:
        """In-control (``shift=0``) or mean-shifted (in sigmas) normal observations, for run-length simulation."""
        mean, sigma = self._params["mean"], self._params["sigma"]
        return generator.normal(mean + shift * sigma, sigma, size=shape)
