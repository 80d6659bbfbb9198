"""Has the model become less sure of itself?  Mean top-class confidence against the reference."""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np

from monitors import _inputs
from monitors._state import FittedDictState
from monitors.base import Monitor, MonitorResult
from monitors.sequential import DEFAULT_STOP_AFTER, log_score, mean_drop_p_value, resampling_options


class ConfidenceMonitor(FittedDictState, Monitor):
    """One-sided permutation test: is a batch's mean top-class probability below the reference's?

    ``fit`` keeps the top-class probability of each of the ``N`` reference rows.  ``check`` pools
    them with the batch's ``M`` values and compares the observed drop ``mean(reference) -
    mean(batch)`` with the drops of random splits of the pooled values (Besag-Clifford sequential
    p-value, :mod:`monitors.sequential`).  The test is exact whatever the confidences'
    distribution (they are far from normal: most sit near 1), and it accounts for the
    reference's own sampling error, which a fixed limit around the reference mean does not.
    Only a *drop* is evidence: a more confident batch is never an alarm.

    ``score`` is ``-log10 p`` and ``threshold`` is ``-log10 alpha``, so ``alarm`` is
    ``p <= alpha`` and equals ``score > threshold``.  With ``min_confidence`` the alarm is
    instead a batch mean below that fixed limit (``score = min_confidence - mean``,
    ``threshold = 0``); the p-value is still reported.

    Parameters
    ----------
    alpha
        Level of one test, ``0 < alpha < 1`` (the loop sets it from the false-page budget).
    max_draws
        Most permutations; ``None`` takes the fewest that can reach ``alpha``.
    stop_after
        Besag-Clifford's ``h``: stop once this many permuted drops reach the observed one.
    seed
        Seeds the permutations.
    min_confidence
        A fixed lower limit in ``(0, 1)`` used instead of the test.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.random.default_rng(0)
    >>> def softmax(z):
    ...     e = np.exp(z - z.max(axis=1, keepdims=True))
    ...     return e / e.sum(axis=1, keepdims=True)
    >>> sharp = lambda n: softmax(3 * g.normal(size=(n, 5)))
    >>> monitor = ConfidenceMonitor(alpha=0.01).fit(sharp(1000))
    >>> same, unsure = monitor.check(sharp(200)), monitor.check(softmax(g.normal(size=(200, 5))))
    >>> same.alarm, unsure.alarm, unsure.details["p_value"] == 1 / 100
    (False, True, True)
    >>> round(monitor.reference_mean, 3), round(unsure.details["mean_confidence"], 3)
    (0.753, 0.465)
    """

    name: ClassVar[str] = "mean_confidence"

    def __init__(
        self,
        *,
        alpha: float = 0.01,
        max_draws: int | None = None,
        stop_after: int = DEFAULT_STOP_AFTER,
        seed: int = 0,
        min_confidence: float | None = None,
    ) -> None:
        self._configure(alpha=alpha, max_draws=max_draws, stop_after=stop_after, seed=seed, min_confidence=min_confidence)
        self._fitted: dict[str, Any] | None = None

    def _validate_options(self, config: dict[str, Any]) -> dict[str, Any]:
        config["alpha"], config["max_draws"], config["stop_after"] = resampling_options(
            config["alpha"], config["max_draws"], config["stop_after"]
        )
        config["seed"] = _inputs.integer(config["seed"], "seed", minimum=0)
        if config["min_confidence"] is not None:
            config["min_confidence"] = _inputs.probability(config["min_confidence"], "min_confidence")
        self._generator = np.random.default_rng(config["seed"])
        return config

    @property
    def reference_mean(self) -> float:
        _inputs.require_fitted(self._fitted is not None, self, "reference_mean")
        return self._fitted["mean"]

    def fit(self, reference: Any) -> Self:
        """Keep the top-class probability of each row of shape-(N, K) probabilities, ``N >= 2``."""
        probabilities = _inputs.probabilities(reference, "reference", min_rows=2)
        top = probabilities.max(axis=1)
        self._fitted = {"mean": float(top.mean()), "top": top.tolist(), "n_classes": int(probabilities.shape[1])}
        return self

    def check(self, batch: Any) -> MonitorResult:
        """Test the batch's mean top-class probability (shape-(M, K) probabilities) against the reference's."""
        _inputs.require_fitted(self._fitted is not None, self)
        fitted = self._fitted
        top = _inputs.probabilities(batch, "batch", width=fitted["n_classes"]).max(axis=1)
        mean = float(top.mean())
        test = mean_drop_p_value(
            np.asarray(fitted["top"]), top, max_draws=self.max_draws,
            stop_after=self.stop_after, generator=self._generator,
        )
        details = {
            "p_value": test.p_value,
            "n_draws": test.n_draws,
            "mean_confidence": mean,
            "reference_mean": fitted["mean"],
            "confidence_drop": fitted["mean"] - mean,
            "n_batch": int(top.size),
        }
        minimum = self.min_confidence
        if minimum is not None:
            score = minimum - mean
            return MonitorResult(alarm=bool(score > 0.0), score=score, threshold=0.0, details=details)
        alarm, score, threshold = log_score(test.p_value, self.alpha)
        return MonitorResult(alarm=alarm, score=score, threshold=threshold, details=details)

    @classmethod
    def _unit_test_params(cls) -> list[dict[str, Any]]:
        return [{}, {"min_confidence": 0.5}]

    @classmethod
    def _unit_test_data(cls, generator: np.random.Generator) -> tuple[Any, Any]:
        def softmax(logits: np.ndarray) -> np.ndarray:
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)

        return softmax(2 * generator.normal(size=(80, 3))), softmax(generator.normal(size=(40, 3)))
