"""Has the mix of predicted classes moved away from the reference mix?"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np

from monitors import _inputs
from monitors.base import Monitor, MonitorResult
from monitors.errors import MonitorInputError

METHODS = ("pearson", "g_test")
STATE_VERSION = 1
_SMALLEST_P = 5e-324  # the smallest positive double: keeps -log10(p) finite


def log_score(p_value: float, alpha: float) -> tuple[bool, float, float]:
    """``(alarm, score, threshold)`` with ``score = -log10 p``, ``threshold = -log10 alpha``.

    ``alarm`` is ``p < alpha``; where rounding of the logarithms would disagree with it (p within
    an ulp of alpha) the score is nudged by one ulp so that ``alarm == (score > threshold)`` holds exactly.
    """
    threshold = -math.log10(alpha)
    score = -math.log10(max(p_value, _SMALLEST_P))
    alarm = p_value < alpha
    if alarm and not score > threshold:
        score = math.nextafter(threshold, math.inf)
    elif not alarm and score > threshold:
        score = threshold
    return alarm, score, threshold


class PredictionShiftMonitor(Monitor):
    """Chi-square goodness-of-fit test of a batch's predicted classes against the reference mix.

    ``fit`` counts the reference's predicted classes; the expected class probabilities are the
    counts plus ``smoothing`` pseudo-counts, so a class the reference never predicted has a small
    non-zero probability instead of an infinite statistic.  ``check`` compares the batch counts
    with these probabilities by Pearson's chi-square (or the G-test), ``K - 1`` degrees of freedom.

    ``score`` is ``-log10 p`` and ``threshold`` is ``-log10 alpha``: ``alarm`` is ``p < alpha`` and
    equals ``score > threshold``.  The reference mix is taken as known, so with a batch much larger
    than the reference the test also reacts to the reference's own sampling noise; the
    chi-square approximation wants roughly five or more expected predictions per class.

    Parameters
    ----------
    alpha
        Significance level, ``0 < alpha < 1``.
    n_classes
        Number of classes ``K``; ``None`` learns ``max(class) + 1`` from the reference and lets
        a batch bring unseen (smoothed) classes.  When given, a class ``>= n_classes`` is an error.
    smoothing
        Pseudo-count added to every class of the reference, ``> 0``.
    method
        ``"pearson"`` (chi-square) or ``"g_test"`` (log-likelihood ratio).

    Examples
    --------
    >>> import numpy as np
    >>> g = np.random.default_rng(0)
    >>> monitor = PredictionShiftMonitor(alpha=0.01).fit(g.choice(3, size=2000, p=[0.5, 0.3, 0.2]))
    >>> same = monitor.check(g.choice(3, size=300, p=[0.5, 0.3, 0.2]))
    >>> moved = monitor.check(g.choice(3, size=300, p=[0.3, 0.3, 0.4]))
    >>> same.alarm, round(same.details["p_value"], 3)
    (False, 0.187)
    >>> moved.alarm, moved.score > moved.threshold
    (True, True)
    """

    name: ClassVar[str] = "prediction_shift"

    def __init__(
        self, *, alpha: float = 0.05, n_classes: int | None = None, smoothing: float = 0.5, method: str = "pearson"
    ) -> None:
        self._configure(alpha=alpha, n_classes=n_classes, smoothing=smoothing, method=method)
        self._counts: np.ndarray | None = None

    def _configure(self, **config: Any) -> None:
        config["alpha"] = _inputs.probability(config["alpha"], "alpha")
        if config["n_classes"] is not None:
            config["n_classes"] = _inputs.integer(config["n_classes"], "n_classes", minimum=2)
        smoothing = _inputs.real(config["smoothing"], "smoothing", low=0.0, condition="smoothing > 0")
        if smoothing == 0:
            raise _inputs.MonitorConfigError(f"`smoothing` must satisfy smoothing > 0. Got: {config['smoothing']!r}")
        config["smoothing"] = smoothing
        _inputs.choice(config["method"], "method", METHODS)
        self._config = config

    @property
    def config(self) -> dict[str, Any]:
        return dict(self._config)

    @property
    def reference_counts(self) -> tuple[int, ...]:
        """Reference predictions per class (empty before ``fit``)."""
        return () if self._counts is None else tuple(int(c) for c in self._counts)

    def _classes(self, data: Any, name: str) -> np.ndarray:
        labels = _inputs.classes(data, name)
        n_classes = self._config["n_classes"]
        if n_classes is not None and labels.max() >= n_classes:
            raise MonitorInputError(
                f"`{name}` holds class {int(labels.max())}, but n_classes={n_classes} allows 0 ... {n_classes - 1}."
            )
        return labels

    def fit(self, reference: Any) -> Self:
        """Count the reference's predicted classes.

        Parameters
        ----------
        reference
            Shape-(N,) predicted classes, or shape-(N, K) class probabilities (their argmax is used).
        """
        labels = self._classes(reference, "reference")
        size = self._config["n_classes"] or int(labels.max()) + 1
        self._counts = np.bincount(labels, minlength=size)
        return self

    def check(self, batch: Any) -> MonitorResult:
        """Test the batch's predicted classes (shape-(M,) or shape-(M, K) probabilities)."""
        from scipy import stats

        _inputs.require_fitted(self._counts is not None, self)
        labels = self._classes(batch, "batch")
        size = max(len(self._counts), int(labels.max()) + 1)
        reference = np.zeros(size)
        reference[: len(self._counts)] = self._counts
        expected = reference + self._config["smoothing"]
        expected *= len(labels) / expected.sum()
        observed = np.bincount(labels, minlength=size).astype(float)
        lambda_ = "pearson" if self._config["method"] == "pearson" else "log-likelihood"
        statistic, p_value = stats.power_divergence(observed, expected, lambda_=lambda_)
        alarm, score, threshold = log_score(float(p_value), self._config["alpha"])
        details = {
            "p_value": float(p_value),
            "statistic": float(statistic),
            "degrees_of_freedom": size - 1,
            "n_batch": len(labels),
            "unseen_classes": int(((observed > 0) & (reference == 0)).sum()),
        }
        return MonitorResult(alarm=alarm, score=score, threshold=threshold, details=details)

    def state_dict(self) -> dict[str, Any]:
        """Options and reference class counts, as JSON-able Python."""
        counts = None if self._counts is None else [int(c) for c in self._counts]
        return {"version": STATE_VERSION, "config": dict(self._config), "reference_counts": counts}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("version") != STATE_VERSION or not {"config", "reference_counts"} <= set(state):
            raise MonitorInputError(
                f"Not a {type(self).__name__} state (version {STATE_VERSION}). Got keys: {sorted(state)}"
            )
        self._configure(**state["config"])
        counts = state["reference_counts"]
        self._counts = None if counts is None else np.asarray(counts, dtype=np.int64)

    @classmethod
    def _unit_test_params(cls) -> list[dict[str, Any]]:
        return [{}, {"alpha": 0.01, "n_classes": 4, "method": "g_test"}]

    @classmethod
    def _unit_test_data(cls, generator: np.random.Generator) -> tuple[Any, Any]:
        return generator.choice(4, size=400, p=[0.4, 0.3, 0.2, 0.1]), generator.choice(4, size=100)
