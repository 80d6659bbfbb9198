"""Has the mix of predicted classes moved away from the reference mix?"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np

from monitors import _inputs
from monitors.base import Monitor, MonitorResult
from monitors.errors import MonitorInputError
from monitors.sequential import DEFAULT_STOP_AFTER, log_score, resampling_options, sequential_p_value

METHODS = ("pearson", "g_test")


class PredictionShiftMonitor(Monitor):
    """Permutation test of homogeneity: do the batch's predicted classes mix like the reference's?

    ``fit`` counts the reference's predicted classes.  ``check`` forms the 2 x K table of
    reference and batch counts and computes Pearson's chi-square statistic of homogeneity (or
    the G statistic); its p-value comes from random splits of the pooled predictions
    (multivariate hypergeometric draws of the batch's counts, Besag-Clifford sequential rule,
    :mod:`monitors.sequential`).  Unlike a goodness-of-fit test against the reference mix taken
    as known, this accounts for the reference's own sampling error, and unlike the chi-square
    approximation it stays exact with few predictions per class and far in the tail.

    ``score`` is ``-log10 p`` and ``threshold`` is ``-log10 alpha``: ``alarm`` is ``p <= alpha``
    and equals ``score > threshold``.

    Parameters
    ----------
    alpha
        Level of one test, ``0 < alpha < 1`` (the loop sets it from the false-page budget).
    n_classes
        Number of classes ``K``; ``None`` learns ``max(class) + 1`` from the reference and lets a
        batch bring unseen classes.  When given, a class ``>= n_classes`` is an error.
    method
        ``"pearson"`` (chi-square) or ``"g_test"`` (log-likelihood ratio).
    max_draws, stop_after, seed
        Most permutations (``None``: just enough to reach ``alpha``), Besag-Clifford's ``h``, and
        the seed of the permutations.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.random.default_rng(0)
    >>> monitor = PredictionShiftMonitor(alpha=0.01).fit(g.choice(3, size=2000, p=[0.5, 0.3, 0.2]))
    >>> same = monitor.check(g.choice(3, size=300, p=[0.5, 0.3, 0.2]))
    >>> moved = monitor.check(g.choice(3, size=300, p=[0.3, 0.3, 0.4]))
    >>> same.alarm, same.details["p_value"] > 0.01
    (False, True)
    >>> moved.alarm, moved.details["p_value"] == 1 / 100
    (True, True)
    """

    name: ClassVar[str] = "prediction_shift"

    def __init__(
        self,
        *,
        alpha: float = 0.01,
        n_classes: int | None = None,
        method: str = "pearson",
        max_draws: int | None = None,
        stop_after: int = DEFAULT_STOP_AFTER,
        seed: int = 0,
    ) -> None:
        self._configure(alpha=alpha, n_classes=n_classes, method=method, max_draws=max_draws,
                        stop_after=stop_after, seed=seed)
        self._counts: np.ndarray | None = None

    def _validate_options(self, config: dict[str, Any]) -> dict[str, Any]:
        config["alpha"], config["max_draws"], config["stop_after"] = resampling_options(
            config["alpha"], config["max_draws"], config["stop_after"]
        )
        if config["n_classes"] is not None:
            config["n_classes"] = _inputs.integer(config["n_classes"], "n_classes", minimum=2)
        _inputs.choice(config["method"], "method", METHODS)
        config["seed"] = _inputs.integer(config["seed"], "seed", minimum=0)
        self._generator = np.random.default_rng(config["seed"])
        return config

    @property
    def reference_counts(self) -> tuple[int, ...]:
        """Reference predictions per class (empty before ``fit``)."""
        return () if self._counts is None else tuple(int(c) for c in self._counts)

    def _classes(self, data: Any, name: str) -> np.ndarray:
        labels = _inputs.classes(data, name)
        n_classes = self.n_classes
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
        size = self.n_classes or int(labels.max()) + 1
        self._counts = np.bincount(labels, minlength=size)
        return self

    def _statistic(self, batch_counts: np.ndarray, pooled: np.ndarray, n_batch: int) -> np.ndarray:
        """Chi-square (or G) of homogeneity of the 2 x K tables with these batch counts; shape-(B, K) in."""
        n_total = pooled.sum()
        observed = np.stack([pooled - batch_counts, batch_counts])  # (2, B, K)
        rows = np.array([n_total - n_batch, n_batch], dtype=float)[:, None, None]
        expected = rows * pooled / n_total
        if self.method == "pearson":
            return ((observed - expected) ** 2 / expected).sum(axis=(0, 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(observed > 0, observed * np.log(observed / expected), 0.0)
        return 2.0 * terms.sum(axis=(0, 2))

    def check(self, batch: Any) -> MonitorResult:
        """Test the batch's predicted classes (shape-(M,) or shape-(M, K) probabilities)."""
        _inputs.require_fitted(self._counts is not None, self)
        labels = self._classes(batch, "batch")
        size = max(len(self._counts), int(labels.max()) + 1)
        reference = np.zeros(size, dtype=np.int64)
        reference[: len(self._counts)] = self._counts
        observed_counts = np.bincount(labels, minlength=size)
        pooled_all = reference + observed_counts
        present = pooled_all > 0  # a class nobody predicted adds nothing to either statistic
        pooled, batch_counts = pooled_all[present], observed_counts[present]
        n_batch = len(labels)
        observed = float(self._statistic(batch_counts[None].astype(float), pooled, n_batch)[0])

        def draw(count: int) -> np.ndarray:
            counts = self._generator.multivariate_hypergeometric(pooled, n_batch, size=count)
            return self._statistic(counts.astype(float), pooled, n_batch)

        test = sequential_p_value(observed, draw, max_draws=self.max_draws,
                                  stop_after=self.stop_after)
        alarm, score, threshold = log_score(test.p_value, self.alpha)
        details = {
            "p_value": test.p_value,
            "n_draws": test.n_draws,
            "statistic": observed,
            "n_batch": n_batch,
            "unseen_classes": int(((observed_counts > 0) & (reference == 0)).sum()),
        }
        return MonitorResult(alarm=alarm, score=score, threshold=threshold, details=details)

    _legacy_state_keys = {2: frozenset({"config", "reference_counts"})}

    def _inner_state(self) -> dict[str, Any]:
        """The reference class counts, as JSON-able Python."""
        return {"reference_counts": None if self._counts is None else [int(c) for c in self._counts]}

    def _load_inner_state(self, state: Mapping[str, Any]) -> None:
        counts = state["reference_counts"]
        self._counts = None if counts is None else np.asarray(counts, dtype=np.int64)

    @classmethod
    def _unit_test_params(cls) -> list[dict[str, Any]]:
        return [{}, {"alpha": 0.05, "n_classes": 4, "method": "g_test"}]

    @classmethod
    def _unit_test_data(cls, generator: np.random.Generator) -> tuple[Any, Any]:
        return generator.choice(4, size=400, p=[0.4, 0.3, 0.2, 0.1]), generator.choice(4, size=100)
