"""Has the model become less sure of itself?  Mean top-class confidence against the reference."""

from __future__ import annotations

import math
from typing import Any, ClassVar, Self

import numpy as np

from monitors import _inputs
from monitors._state import ConfigAndFittedState
from monitors.base import Monitor, MonitorResult
from monitors.errors import MonitorInputError



class ConfidenceMonitor(ConfigAndFittedState, Monitor):
    """Lower control limit on a batch's mean top-class probability.

    ``fit`` learns the mean ``mu`` and standard deviation ``s`` of the top-class probability
    on ``N`` reference rows.  For a batch of ``M`` rows with mean confidence ``m``, the limit is
    ``mu - k * s * sqrt(1/M + 1/N)`` (the standard error of the difference of the two means),
    or the fixed ``min_confidence`` when given.

    ``score`` is the confidence drop ``mu - m`` and ``threshold`` the allowed drop
    ``mu - limit``; ``alarm`` is ``score > threshold`` exactly (a batch below the limit).
    A reference whose confidences are all equal gives an allowed drop of 0.

    Parameters
    ----------
    k
        Standard errors below the reference mean, ``> 0``.
    min_confidence
        A fixed lower limit in ``(0, 1)`` used instead of the ``k``-rule.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.random.default_rng(0)
    >>> def softmax(z):
    ...     e = np.exp(z - z.max(axis=1, keepdims=True))
    ...     return e / e.sum(axis=1, keepdims=True)
    >>> sharp = lambda n: softmax(3 * g.normal(size=(n, 5)))
    >>> monitor = ConfidenceMonitor(k=3).fit(sharp(1000))
    >>> same, unsure = monitor.check(sharp(200)), monitor.check(softmax(g.normal(size=(200, 5))))
    >>> same.alarm, unsure.alarm
    (False, True)
    >>> round(monitor.reference_mean, 3), round(unsure.details["mean_confidence"], 3)
    (0.753, 0.465)
    """

    name: ClassVar[str] = "mean_confidence"

    def __init__(self, *, k: float = 3.0, min_confidence: float | None = None) -> None:
        self._configure(k=k, min_confidence=min_confidence)
        self._fitted: dict[str, float] | None = None

    def _configure(self, **config: Any) -> None:
        config["k"] = _inputs.real(config["k"], "k", low=0.0, condition="k > 0")
        if config["k"] == 0:
            raise _inputs.MonitorConfigError(f"`k` must satisfy k > 0. Got: {config['k']!r}")
        if config["min_confidence"] is not None:
            config["min_confidence"] = _inputs.probability(config["min_confidence"], "min_confidence")
        self._config = config

    @property
    def config(self) -> dict[str, Any]:
        return dict(self._config)

    @property
    def reference_mean(self) -> float:
        _inputs.require_fitted(self._fitted is not None, self, "reference_mean")
        return self._fitted["mean"]

    def fit(self, reference: Any) -> Self:
        """Learn mean and spread of the top-class probability from shape-(N, K) probabilities, ``N >= 2``."""
        probabilities = _inputs.probabilities(reference, "reference", min_rows=2)
        top = probabilities.max(axis=1)
        self._fitted = {
            "mean": float(top.mean()),
            "std": float(top.std(ddof=1)),
            "n": int(top.size),
            "n_classes": int(probabilities.shape[1]),
        }
        return self

    def check(self, batch: Any) -> MonitorResult:
        """Compare the batch's mean top-class probability (shape-(M, K) probabilities) with the limit."""
        _inputs.require_fitted(self._fitted is not None, self)
        fitted = self._fitted
        top = _inputs.probabilities(batch, "batch", width=fitted["n_classes"]).max(axis=1)
        mean = float(top.mean())
        standard_error = fitted["std"] * math.sqrt(1 / top.size + 1 / fitted["n"])
        minimum = self._config["min_confidence"]
        limit = fitted["mean"] - self._config["k"] * standard_error if minimum is None else minimum
        score, threshold = fitted["mean"] - mean, fitted["mean"] - limit
        details = {
            "mean_confidence": mean,
            "limit": limit,
            "reference_mean": fitted["mean"],
            "standard_error": standard_error,
            "n_batch": int(top.size),
        }
        return MonitorResult(alarm=bool(score > threshold), score=score, threshold=threshold, details=details)

    @classmethod
    def _unit_test_params(cls) -> list[dict[str, Any]]:
        return [{}, {"min_confidence": 0.5}]

    @classmethod
    def _unit_test_data(cls, generator: np.random.Generator) -> tuple[Any, Any]:
        def softmax(logits: np.ndarray) -> np.ndarray:
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)

        return softmax(2 * generator.normal(size=(80, 3))), softmax(generator.normal(size=(40, 3)))
