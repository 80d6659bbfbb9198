"""Has accuracy dropped, once the labels of a batch arrive?"""

from __future__ import annotations

import numbers
from typing import Any, ClassVar, Self

import numpy as np

from monitors import _inputs
from monitors._state import FittedDictState
from monitors.base import Monitor, MonitorResult
from monitors.errors import MonitorInputError
from monitors.sequential import log_score



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


class AccuracyMonitor(FittedDictState, Monitor):
    """Exact one-sided test: is a labelled batch's accuracy below the reference's?

    ``fit`` counts the reference's correct predictions (``k`` of ``N``).  For a batch with ``c``
    correct of ``M``, Fisher's exact test conditions on the pooled count ``k + c``: under the
    null (batch and reference rows exchangeable) the batch's count is hypergeometric, and the
    p-value is ``P(X <= c)``.  It accounts for the reference's own sampling error, so a batch
    exactly as accurate as the reference is never an alarm, and only a *drop* is evidence.
    Fitted on an accuracy alone (a number), the reference accuracy is taken as exact and the
    test is binomial.

    ``score`` is ``-log10 p`` and ``threshold`` ``-log10 alpha``; ``alarm`` is ``p <= alpha`` and
    a drop larger than ``min_drop`` (practical significance; 0 by default), and always equals
    ``score > threshold`` (a drop within ``min_drop`` scores 0).

    Parameters
    ----------
    alpha
        Level of one test, ``0 < alpha < 1`` (the loop sets it from the false-page budget).
    min_drop
        Smallest accuracy drop worth an alarm, ``0 <= min_drop < 1``.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.random.default_rng(0)
    >>> def labelled(n, error_rate):
    ...     labels = g.integers(0, 10, size=n)
    ...     wrong = g.random(n) < error_rate
    ...     return np.where(wrong, (labels + 1) % 10, labels), labels
    >>> monitor = AccuracyMonitor(alpha=0.001).fit(labelled(2000, 0.1))
    >>> round(monitor.reference_accuracy, 3)
    0.885
    >>> good, bad = monitor.check(labelled(500, 0.1)), monitor.check(labelled(500, 0.3))
    >>> good.alarm, bad.alarm, round(bad.details["accuracy"], 3)
    (False, True, 0.71)
    """

    name: ClassVar[str] = "accuracy"

    def __init__(self, *, alpha: float = 0.01, min_drop: float = 0.0) -> None:
        self._configure(alpha=alpha, min_drop=min_drop)
        self._fitted: dict[str, Any] | None = None

    def _validate_options(self, config: dict[str, Any]) -> dict[str, Any]:
        alpha = _inputs.probability(config["alpha"], "alpha")
        min_drop = _inputs.real(config["min_drop"], "min_drop", low=0.0, high=1.0, condition="0 <= min_drop < 1")
        if min_drop == 1:
            raise _inputs.MonitorConfigError(f"`min_drop` must satisfy 0 <= min_drop < 1. Got: {config['min_drop']!r}")
        return {"alpha": alpha, "min_drop": min_drop}

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
            self._fitted = {"accuracy": accuracy, "n": None, "correct": None}
            return self
        accuracy, n = _accuracy(reference, "reference")
        self._fitted = {"accuracy": accuracy, "n": n, "correct": int(round(accuracy * n))}
        return self

    def check(self, batch: Any) -> MonitorResult:
        """Test the accuracy of ``(predictions, labels)`` (tuple or mapping) against the reference."""
        from scipy import stats

        _inputs.require_fitted(self._fitted is not None, self)
        accuracy, n = _accuracy(batch, "batch")
        correct = int(round(accuracy * n))
        fitted = self._fitted
        if fitted["n"] is None:
            p_value = float(stats.binom.cdf(correct, n, fitted["accuracy"]))
        else:
            pooled = fitted["n"] + n
            p_value = float(stats.hypergeom.cdf(correct, pooled, fitted["correct"] + correct, n))
        p_value = min(1.0, p_value)
        drop = fitted["accuracy"] - accuracy
        alarm, score, threshold = log_score(p_value, self.alpha)
        if drop <= self.min_drop:
            alarm, score = False, 0.0
        details = {"p_value": p_value, "accuracy": accuracy, "reference_accuracy": fitted["accuracy"],
                   "accuracy_drop": drop, "n_batch": n, "n_reference": fitted["n"]}
        return MonitorResult(alarm=alarm, score=score, threshold=threshold, details=details)

    @classmethod
    def _unit_test_params(cls) -> list[dict[str, Any]]:
        return [{}, {"alpha": 0.2, "min_drop": 0.05}]

    @classmethod
    def _unit_test_data(cls, generator: np.random.Generator) -> tuple[Any, Any]:
        labels = generator.integers(0, 3, size=100)
        reference = (np.where(generator.random(100) < 0.2, (labels + 1) % 3, labels), labels)
        batch_labels = generator.integers(0, 3, size=50)
        batch_predictions = np.where(generator.random(50) < 0.3, (batch_labels + 1) % 3, batch_labels)
        batch = {"predictions": batch_predictions, "labels": batch_labels}
        return reference, batch
