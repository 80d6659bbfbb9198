"""Has accuracy dropped, once the labels of a batch arrive?"""

from __future__ import annotations

import numbers
from typing import Any, ClassVar, Self

import numpy as np

from monitors import _inputs
from monitors._state import ConfigAndFittedState
from monitors.base import Monitor, MonitorResult
from monitors.errors import MonitorInputError



def _accuracy(data: Any, name: str) -> tuple[float, int]:
    raw_predictions, raw_labels = _inputs.pair(data, name)
    if np.ndim(raw_labels) != 1:
        raise MonitorInputError(f"`{name}` labels must be shape-(N,) class indices. Got: shape {np.shape(raw_labels)}")
    predictions = _inputs.classes(raw_predictions, f"{name} predictions")
    labels = _inputs.classes(raw_labels, f"{name} labels")
    if predictions.shape != labels.shape:
        raise MonitorInputError(
            f"`{name}` predictions and labels must have the same length. Got: {len(predictions)} predictions "
            f"and {len(labels)} labels"
        )
    return float((predictions == labels).mean()), int(labels.size)


class AccuracyMonitor(ConfigAndFittedState, Monitor):
    """Accuracy of a labelled batch against the reference accuracy minus a tolerance.

    ``score`` is the accuracy drop ``reference_accuracy - accuracy`` and ``threshold`` is
    ``tolerance``; ``alarm`` is ``score > threshold`` exactly.  The tolerance is absolute and
    fixed: for small batches, pick it wider than the batch accuracy's sampling noise
    (about ``sqrt(a (1 - a) / M)`` for ``M`` rows).

    Parameters
    ----------
    tolerance
        Allowed accuracy drop, ``0 <= tolerance < 1``.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.random.default_rng(0)
    >>> def labelled(n, error_rate):
    ...     labels = g.integers(0, 10, size=n)
    ...     wrong = g.random(n) < error_rate
    ...     return np.where(wrong, (labels + 1) % 10, labels), labels
    >>> monitor = AccuracyMonitor(tolerance=0.05).fit(labelled(2000, 0.1))
    >>> round(monitor.reference_accuracy, 3)
    0.885
    >>> good, bad = monitor.check(labelled(500, 0.1)), monitor.check(labelled(500, 0.3))
    >>> good.alarm, bad.alarm, round(bad.details["accuracy"], 3)
    (False, True, 0.71)
    """

    name: ClassVar[str] = "accuracy"

    def __init__(self, *, tolerance: float = 0.05) -> None:
        self._configure(tolerance=tolerance)
        self._fitted: dict[str, Any] | None = None

    def _configure(self, **config: Any) -> None:
        tolerance = _inputs.real(config["tolerance"], "tolerance", low=0.0, high=1.0, condition="0 <= tolerance < 1")
        if tolerance == 1:
            raise _inputs.MonitorConfigError(
                f"`tolerance` must satisfy 0 <= tolerance < 1. Got: {config['tolerance']!r}"
            )
        self._config = {"tolerance": tolerance}

    @property
    def config(self) -> dict[str, Any]:
        return dict(self._config)

    @property
    def reference_accuracy(self) -> float:
        _inputs.require_fitted(self._fitted is not None, self, "reference_accuracy")
        return self._fitted["accuracy"]

    def fit(self, reference: Any) -> Self:
        """Learn the reference accuracy.

        Parameters
        ----------
        reference
            ``(predictions, labels)`` or ``{"predictions": ..., "labels": ...}`` (predictions as
            shape-(N,) classes or shape-(N, K) probabilities, labels shape-(N,)); or the reference
            accuracy itself as a number in ``[0, 1]``.
        """
        if isinstance(reference, numbers.Real) and not isinstance(reference, bool):
            accuracy = _inputs.real(reference, "reference", low=0.0, high=1.0)
            self._fitted = {"accuracy": accuracy, "n": None}
            return self
        accuracy, n = _accuracy(reference, "reference")
        self._fitted = {"accuracy": accuracy, "n": n}
        return self

    def check(self, batch: Any) -> MonitorResult:
        """Compare the accuracy of ``(predictions, labels)`` (tuple or mapping) with the reference."""
        _inputs.require_fitted(self._fitted is not None, self)
        accuracy, n = _accuracy(batch, "batch")
        score = self._fitted["accuracy"] - accuracy
        threshold = self._config["tolerance"]
        details = {"accuracy": accuracy, "reference_accuracy": self._fitted["accuracy"], "n_batch": n}
        return MonitorResult(alarm=bool(score > threshold), score=score, threshold=threshold, details=details)

    @classmethod
    def _unit_test_params(cls) -> list[dict[str, Any]]:
        return [{}, {"tolerance": 0.0}]

    @classmethod
    def _unit_test_data(cls, generator: np.random.Generator) -> tuple[Any, Any]:
        labels = generator.integers(0, 3, size=100)
        reference = (np.where(generator.random(100) < 0.2, (labels + 1) % 3, labels), labels)
        batch_labels = generator.integers(0, 3, size=50)
        batch_predictions = np.where(generator.random(50) < 0.3, (batch_labels + 1) % 3, batch_labels)
        batch = {"predictions": batch_predictions, "labels": batch_labels}
        return reference, batch
