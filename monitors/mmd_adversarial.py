"""MMD two-sample test on penultimate activations: is this batch shifted (e.g. adversarial)?

The statistics live in :mod:`monitors.mmd`; this module validates input, keeps the fitted
state and wires those pieces into the :class:`~monitors.base.Monitor` interface.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import torch
from torch import Tensor

from monitors import _inputs
from monitors.base import Monitor, MonitorResult
from monitors.errors import MonitorConfigError, MonitorInputError, MonitorNotFittedError, MonitorStateError
from monitors.mmd import inputs
from monitors.mmd.batched import batched_mmd2, batched_wild_mmd2, chunks_of_tests
from monitors.mmd.class_matching import ClassIndex, draw_matched, largest_matched_size
from monitors.mmd.detection_rate import DetectionRate, draw_subsets, summarize
from monitors.mmd.kernel import GaussianKernelSum, augmented_factors, median_bandwidth
from monitors.mmd.permutation import (
    draw_permutations,
    draw_signs,
    draw_stratified_permutations,
    mmd2_from_products,
    permutation_mmd2,
    permutation_weights,
    random_split_weights,
    reference_kernel,
    wild_bootstrap_mmd2,
    wild_bootstrap_weights,
)
from monitors.mmd.pvalues import critical_value, fisher_combination, min_draws, plus_one_p_value
from monitors.mmd.sample_scores import SampleScores, sample_scores
from monitors.mmd.standardize import Standardizer
from monitors.sequential import log_score, sequential_p_value

METHODS = ("permutation", "wild_bootstrap")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
# A sequential test materializes the pooled kernel once; above this many pooled rows the
# tiled full test (which never holds the whole kernel) is used instead.
SEQUENTIAL_MAX_ROWS = 4096


@dataclass
class _Layer:
    standardizer: Standardizer
    kernel: GaussianKernelSum
    reference: Tensor  # standardized by the reference, in the compute dtype and on the device
    raw: Tensor  # the reference rows as given (float64, CPU): pooled standardization starts from these


class MMDAdversarialMonitor(Monitor):
    """Kernel two-sample (MMD) test of a batch of activations against reference activations.

    ``check`` tests one batch.  The kernel is a sum of Gaussians with bandwidths
    ``sigma * 2**k``, ``k = -2 ... 2``.  Every test scales each feature by the mean and standard
    deviation of its pooled rows (reference and batch together) and takes ``sigma`` as their
    median pairwise distance: both are symmetric in the pooled rows, so the permutation test is
    exact at any sample size (the reference's own statistics, learned once, made small tests
    reject too often: 8% instead of 5% at 50 rows a side).  The statistic is the unbiased MMD² (as in alibi-detect); its
    p-value, ``(1 + #{b : MMD²_b >= MMD²}) / (P + 1)``, comes from ``P`` permutations of the
    pooled sample (or ``P`` wild-bootstrap draws) and is never 0.

    ``alarm`` is ``score > threshold`` and this holds exactly when ``p_value <= alpha``:
    ``score`` is the MMD² and ``threshold`` the ``(j + 1)``-th largest resampled MMD², where
    ``j`` is the largest count with ``(1 + j) / (P + 1) <= alpha`` (``+inf`` when ``P`` is too
    small for any p-value to reach ``alpha``; the constructor refuses such ``P``).  With
    several layers the score is Fisher's ``-2 sum log p_layer``, calibrated by the same
    permutations in every layer (nonparametric combination), with the same threshold rule.

    The level ``alpha`` holds averaged over draws of the reference.  For one fixed reference
    the false-alarm rate over many clean batches can differ from ``alpha`` (in simulations
    with 300 reference rows it ranged from 0.03 to 0.19), because the reference's own sampling
    error is part of every comparison; :meth:`baseline_rate` on clean held-out data measures
    it for the reference at hand, and a larger reference narrows it.

    Parameters
    ----------
    alpha
        Significance level of one test, ``0 < alpha < 1``.
    n_permutations
        Permutations (or bootstrap draws) ``P``; at least ``ceil(1 / alpha) - 1``.
    method
        ``"permutation"`` (exact level) or ``"wild_bootstrap"`` (Rademacher signs on the
        paired statistic; asymptotic level; the reference sample is cut to the batch size).
    class_matching
        Draw the reference sample with the class mix predicted on the batch; then ``fit``
        and ``check`` need ``predictions=``.  The reference sample is the largest one that
        the reference's class counts allow; without matching it is the whole reference.
    stop_after
        ``None``: every ``check`` draws all ``n_permutations``.  An integer ``h``: Besag and
        Clifford's sequential p-value (:mod:`monitors.sequential`), which stops once ``h``
        permutations reach the observed MMD²; as valid as the full test and with the same
        smallest p-value, ``1 / (n_permutations + 1)``, but ~50x cheaper on clean batches when
        ``n_permutations`` is in the thousands.  Single-layer permutation tests only.
    seed
        Seeds the monitor's ``torch.Generator``; ``None`` seeds it from the OS.
    dtype
        ``"float32"`` (fast) or ``"float64"`` for the kernel; sums are always float64.
    device
        Torch device of the kernel computations.
    tile_size
        Rows per kernel tile; memory is a few ``tile_size²`` blocks.
    bandwidth_rows
        Reference rows used for the median bandwidth.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> reference = torch.randn(500, 8, generator=g)
    >>> monitor = MMDAdversarialMonitor(class_matching=False, seed=0).fit(reference)
    >>> clean = monitor.check(torch.randn(100, 8, generator=g))
    >>> shifted = monitor.check(torch.randn(100, 8, generator=g) + 0.5)
    >>> clean.alarm, round(clean.details["p_value"], 4)
    (False, 0.6535)
    >>> shifted.alarm, round(shifted.details["p_value"], 4)  # 1/101: the smallest p with 100 permutations
    (True, 0.0099)
    >>> shifted.score > shifted.threshold
    True

    Licence holders of alibi-detect can have its ``MMDDrift`` compute the tests instead:
    :class:`monitors.mmd.alibi_backend.AlibiDetectMMDMonitor`.
    """

    name: ClassVar[str] = "mmd_adversarial"
    backend: ClassVar[str] = "trustops"  # the engine of the permutation tests, reported in ``details``

    def __init__(
        self,
        *,
        alpha: float = 0.05,
        n_permutations: int = 100,
        method: str = "permutation",
        class_matching: bool = True,
        seed: int | None = None,
        dtype: str = "float32",
        device: str | torch.device = "cpu",
        tile_size: int = 1024,
        bandwidth_rows: int = 1000,
        stop_after: int | None = None,
    ) -> None:
        self._configure(
            alpha=alpha,
            n_permutations=n_permutations,
            method=method,
            class_matching=class_matching,
            seed=seed,
            dtype=dtype,
            device=str(device),
            tile_size=tile_size,
            bandwidth_rows=bandwidth_rows,
            stop_after=stop_after,
        )
        self._generator = torch.Generator()
        if seed is None:
            self._generator.seed()
        else:
            self._generator.manual_seed(seed)
        self._layers: dict[str, _Layer] = {}
        self._reference_predictions: Tensor | None = None
        self._class_index: ClassIndex | None = None

    def _validate_options(self, config: dict[str, Any]) -> dict[str, Any]:
        alpha = _inputs.probability(config["alpha"], "alpha")
        n_permutations = _inputs.integer(config["n_permutations"], "n_permutations", minimum=1)
        if n_permutations < min_draws(alpha):
            raise MonitorConfigError(
                f"`n_permutations` must be >= {min_draws(alpha)} for alpha={alpha}: the smallest possible "
                f"p-value is 1 / (n_permutations + 1) = {1 / (n_permutations + 1):.4g}, so no batch could "
                f"ever raise an alarm. Got: {n_permutations}"
            )
        method = _inputs.choice(config["method"], "method", METHODS)
        if not isinstance(config["class_matching"], bool):
            raise MonitorConfigError(f"`class_matching` must be True or False. Got: {config['class_matching']!r}")
        if config["seed"] is not None:
            _inputs.integer(config["seed"], "seed", minimum=0)
        _inputs.choice(config["dtype"], "dtype", tuple(DTYPES))
        try:
            torch.device(config["device"])
        except (RuntimeError, TypeError) as error:
            raise MonitorConfigError(f"`device` must name a torch device. Got: {config['device']!r} ({error})") from None
        _inputs.integer(config["tile_size"], "tile_size", minimum=1)
        _inputs.integer(config["bandwidth_rows"], "bandwidth_rows", minimum=2)
        if config["stop_after"] is not None:
            _inputs.integer(config["stop_after"], "stop_after", minimum=1)
            if method != "permutation":
                raise MonitorConfigError(f"`stop_after` (a sequential test) needs method='permutation'. Got: method={method!r}")
        return {**config, "alpha": alpha, "n_permutations": n_permutations, "device": str(config["device"])}

    @classmethod
    def _unit_test_params(cls) -> list[dict[str, Any]]:
        """Options for contract tests that fit on a plain array and check quickly."""
        return [{"class_matching": False, "n_permutations": 99, "seed": 0}]

    # -- properties -------------------------------------------------------------------------

    @property
    def layers(self) -> tuple[str, ...]:
        """The fitted layer names (``("activations",)`` when fitted on one array)."""
        return tuple(self._layers)

    @property
    def bandwidths(self) -> dict[str, tuple[float, ...]]:
        """The fitted kernel bandwidths of each layer."""
        return {name: layer.kernel.bandwidths for name, layer in self._layers.items()}

    @property
    def _dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    @property
    def _device(self) -> torch.device:
        return torch.device(self.device)

    # -- fitting ----------------------------------------------------------------------------

    def fit(self, reference: Any, *, predictions: Any = None) -> Self:
        """Learn standardization and bandwidth from reference activations; returns ``self``.

        Parameters
        ----------
        reference
            Shape-(N, D) array or tensor, or a mapping of layer name to shape-(N, D_layer) arrays.
        predictions
            Shape-(N,) predicted classes of the reference rows (needed for ``class_matching``).
        """
        layers = inputs.as_layers(reference, "reference")
        if self.class_matching and predictions is None:
            raise MonitorInputError(
                "class_matching=True needs the reference's predicted classes: call fit(reference, predictions=...) "
                "or construct the monitor with class_matching=False."
            )
        if self.stop_after is not None and len(layers) > 1:
            raise MonitorConfigError(
                f"`stop_after` (a sequential test) tests one layer; got {len(layers)} layers: {sorted(layers)}. "
                "Use stop_after=None to combine layers."
            )
        rows = next(iter(layers.values())).shape[0]
        labels = None if predictions is None else inputs.as_predictions(predictions, "predictions", rows)
        fitted = {}
        for name, raw in layers.items():
            standardizer = Standardizer.from_reference(raw)
            standardized = standardizer(raw)
            sigma = median_bandwidth(standardized, max_rows=self.bandwidth_rows, generator=self._generator)
            _require_spread(sigma, name, f"`reference`{{where}} has no spread: the median distance between its rows is {sigma}")
            reference_rows = standardized.to(self._dtype).to(self._device)
            fitted[name] = _Layer(standardizer, GaussianKernelSum(sigma), reference_rows, raw.clone())
        self._layers = fitted
        self._reference_predictions = labels
        self._class_index = None if labels is None else ClassIndex.from_predictions(labels)
        return self

    def _require_fitted(self, method: str) -> None:
        if not self._layers:
            raise MonitorNotFittedError(
                f"{type(self).__name__}.{method} was called before fit; call fit(reference) first."
            )

    @property
    def _n_reference(self) -> int:
        return next(iter(self._layers.values())).reference.shape[0]

    # -- shared pieces ----------------------------------------------------------------------

    def _batch(self, batch: Any, predictions: Any, name: str = "batch") -> tuple[dict[str, Tensor], Tensor | None]:
        layers = inputs.as_layers(batch, name)
        inputs.check_layers_match(layers, {key: layer.reference.shape[1] for key, layer in self._layers.items()}, name)
        rows = next(iter(layers.values())).shape[0]
        if predictions is None:
            if self.class_matching:
                raise MonitorInputError(
                    "class_matching=True needs the batch's predicted classes: pass predictions=... "
                    "(or construct the monitor with class_matching=False)."
                )
            return layers, None
        return layers, inputs.as_predictions(predictions, "predictions", rows)

    def _standardized(self, name: str, raw: Tensor) -> Tensor:
        standardized = self._layers[name].standardizer(raw)
        # squared norms must stay finite in the compute dtype, or the kernel turns into NaN
        limit = math.sqrt(torch.finfo(self._dtype).max / (4 * standardized.shape[1]))
        farthest = float(standardized.abs().max())
        if not farthest <= limit:
            where = "" if name == inputs.SINGLE_LAYER else f" in layer {name!r}"
            raise MonitorInputError(
                f"The batch{where} has values {farthest:.3g} reference standard deviations from the reference "
                f"mean; at most {limit:.3g} can be computed with dtype={self.dtype!r}. Check the data "
                "(units, a reference feature with almost no spread) or use dtype='float64'."
            )
        return standardized.to(self._dtype).to(self._device)

    def _reference_rows(self, batch_predictions: Tensor | None, size: int | None) -> Tensor | None:
        """Reference rows for one test: ``size`` of them, or ``None`` for all (or the largest matched set)."""
        if self.class_matching:
            if size is None:
                size = largest_matched_size(self._class_index, batch_predictions)
                if size < 2:
                    raise MonitorInputError(
                        f"The reference has too few rows of the batch's predicted classes to match their mix "
                        f"(largest matched sample: {size} rows; at least 2 are needed)."
                    )
            return draw_matched(self._class_index, batch_predictions, size, self._generator)
        if size is None:
            return None
        return torch.randperm(self._n_reference, generator=self._generator)[:size]

    def _decide(self, stats: Tensor) -> tuple[float, float, float]:
        """``(score, threshold, p_value)`` from shape-(Q,) combined statistics (observed first)."""
        return float(stats[0]), float(critical_value(stats, self.alpha)), float(plus_one_p_value(stats))

    def _combine(self, stats: Tensor) -> Tensor:
        """Shape-(..., L, Q) per-layer statistics -> shape-(..., Q) statistics to decide on."""
        return stats[..., 0, :] if stats.shape[-2] == 1 else fisher_combination(stats)

    @property
    def _statistic_name(self) -> str:
        if len(self._layers) > 1:
            return "fisher_combination"
        return "mmd2" if self.method == "permutation" else "paired_mmd2"

    # -- one test -----------------------------------------------------------------------------

    def check(self, batch: Any, *, predictions: Any = None) -> MonitorResult:
        """Test one batch of activations against the reference.

        Parameters
        ----------
        batch
            Shape-(M, D) activations (M >= 2), or a mapping with the fitted layer names.
        predictions
            Shape-(M,) predicted classes of the batch rows (needed for ``class_matching``).

        Returns
        -------
        MonitorResult
            ``score`` (MMD², or the Fisher statistic for several layers), ``threshold`` and
            ``alarm = score > threshold``; ``details`` has ``p_value``, the per-layer MMD²
            (``mmd2`` or ``mmd2/<layer>``, plus ``p_value/<layer>``), the sample sizes and options.
        """
        self._require_fitted("check")
        layers, labels = self._batch(batch, predictions)
        n_batch = next(iter(layers.values())).shape[0]
        wild = self.method == "wild_bootstrap"
        if wild and n_batch > self._n_reference:
            raise MonitorInputError(
                f"method='wild_bootstrap' pairs each batch row with a reference row, so the batch ({n_batch} rows) "
                f"must not be larger than the reference ({self._n_reference} rows)."
            )
        rows = self._reference_rows(labels, n_batch if wild else None)
        n_reference = self._n_reference if rows is None else rows.numel()
        n_draws = self.n_permutations
        if self._sequential(n_reference + n_batch):
            p_value, n_draws, per_layer = self._check_sequential(layers, rows, labels)
            alarm, score, threshold = log_score(p_value, self.alpha)
        else:
            score, threshold, p_value, per_layer = self._full_test(layers, rows, labels)
        details: dict[str, Any] = {
            "p_value": p_value,
            "statistic": self._statistic_name,
            "alpha": self.alpha,
            "method": self.method,
            "backend": self.backend,
            "n_permutations": self.n_permutations,
            "n_draws": n_draws,
            "n_reference": n_reference,
            "n_batch": n_batch,
            "class_matched": self.class_matching,
            **per_layer,
        }
        return MonitorResult(alarm=score > threshold, score=score, threshold=threshold, details=details)

    def _sequential(self, n_total: int) -> bool:
        return self.stop_after is not None and n_total <= SEQUENTIAL_MAX_ROWS

    def _test_rows(
        self, name: str, raw_batch: Tensor, rows: Tensor | None, *, squared_distances: bool = False
    ) -> tuple[Tensor, Tensor, GaussianKernelSum, Tensor | None]:
        """One test's reference and batch rows, standardized by their pooled rows, and the kernel to compare them with.

        With ``squared_distances`` also the shape-(n + m, n + m) squared distances of the pooled
        rows, which the bandwidth was taken from.
        """
        layer = self._layers[name]
        raw_reference = layer.raw if rows is None else layer.raw[rows]
        standardizer = Standardizer.pooled(raw_reference, raw_batch)
        x, y = standardizer(raw_reference), standardizer(raw_batch)
        pooled = torch.cat([x, y])
        squared = None
        if squared_distances and pooled.shape[0] <= self.bandwidth_rows:
            left, right = augmented_factors(pooled)
            squared = torch.mm(left, right.T).clamp_(min=0)
            upper = squared[torch.triu_indices(*squared.shape, offset=1).unbind()]
            upper = upper[upper > 0]
            sigma = float(upper.median().sqrt()) if upper.numel() else 0.0  # the median heuristic, as median_bandwidth
        else:
            sigma = median_bandwidth(pooled, max_rows=self.bandwidth_rows, generator=self._generator)
        _require_spread(sigma, name, f"The reference and batch rows{{where}} are all equal (median distance {sigma})")
        kernel = GaussianKernelSum(sigma, layer.kernel.powers)
        return x.to(self._dtype).to(self._device), y.to(self._dtype).to(self._device), kernel, squared

    def _check_sequential(
        self, layers: dict[str, Tensor], rows: Tensor | None, labels: Tensor | None
    ) -> tuple[float, int, dict[str, float]]:
        """Besag-Clifford p-value of one layer's MMD²: ``(p_value, draws used, {"mmd2": observed})``."""
        (name, raw_batch), = layers.items()
        x, y, kernel, squared = self._test_rows(name, raw_batch, rows, squared_distances=True)
        n_reference, n_batch = x.shape[0], y.shape[0]
        if squared is None:
            pooled = reference_kernel(torch.cat([x, y]), kernel, tile_size=self.tile_size)
        else:
            squared = squared.to(self._dtype).to(self._device)
            pooled = kernel.fill(squared, torch.empty_like(squared)).fill_diagonal_(0)
        pooled_labels = None
        if self.class_matching:
            pooled_labels = torch.cat([self._reference_predictions[rows], labels])

        def mmd2(weights: Tensor) -> Tensor:
            weights = weights.to(self._device)
            return mmd2_from_products(weights, pooled @ weights, n_reference, n_batch).cpu()

        def draw(size: int) -> Tensor:
            if pooled_labels is None:
                weights = random_split_weights(n_reference, n_reference + n_batch, size, self._generator, dtype=self._dtype)
            else:
                permutations = draw_stratified_permutations(pooled_labels, size, self._generator)
                weights = permutation_weights(n_reference, permutations, dtype=self._dtype)
            return mmd2(weights)[1:].numpy()

        observed = float(mmd2(random_split_weights(n_reference, n_reference + n_batch, 0, dtype=self._dtype))[0])
        result = sequential_p_value(
            observed, draw, max_draws=self.n_permutations, stop_after=self.stop_after
        )
        return result.p_value, result.n_draws, {"mmd2": observed}

    def _full_test(
        self, layers: dict[str, Tensor], rows: Tensor | None, labels: Tensor | None
    ) -> tuple[float, float, float, dict[str, float]]:
        """``(score, threshold, p_value, per-layer details)`` of one test drawing all ``n_permutations``."""
        wild = self.method == "wild_bootstrap"
        n_draws, tile_size = self.n_permutations, self.tile_size
        n_batch = next(iter(layers.values())).shape[0]
        n_reference = self._n_reference if rows is None else rows.numel()
        batch_order = None
        if wild:
            draws = draw_signs(n_draws, n_batch, self._generator)
            if self.class_matching:  # pair every batch row with a reference row of its class
                rows = rows[self._reference_predictions[rows].argsort(stable=True)]
                batch_order = labels.argsort(stable=True)
        elif self.class_matching:
            pooled_labels = torch.cat([self._reference_predictions[rows], labels])
            draws = draw_stratified_permutations(pooled_labels, n_draws, self._generator)
        else:
            draws = draw_permutations(n_reference + n_batch, n_draws, self._generator)
        statistic = wild_bootstrap_mmd2 if wild else permutation_mmd2
        per_layer_stats = []
        for name in self._layers:
            x, y, kernel, _ = self._test_rows(name, layers[name] if batch_order is None else layers[name][batch_order], rows)
            per_layer_stats.append(statistic(x, y, kernel, draws, tile_size=tile_size).cpu())
        stats = torch.stack(per_layer_stats)
        score, threshold, p_value = self._decide(self._combine(stats))
        if len(self._layers) == 1:
            return score, threshold, p_value, {"mmd2": float(stats[0, 0])}
        per_layer: dict[str, float] = {}
        for name, layer_stats in zip(self._layers, stats):
            per_layer[f"mmd2/{name}"] = float(layer_stats[0])
            per_layer[f"p_value/{name}"] = float(plus_one_p_value(layer_stats))
        return score, threshold, p_value, per_layer

    # -- repeated tests -------------------------------------------------------------------------

    def detection_rate(
        self,
        batch: Any,
        *,
        predictions: Any = None,
        n_tests: int = 100,
        n_samples: int = 100,
        confidence: float = 0.95,
    ) -> DetectionRate:
        """Fraction of ``n_tests`` tests, each of ``n_samples`` reference vs ``n_samples`` batch rows, that reject.

        Every test draws its rows without replacement (the reference rows class-matched to
        its batch rows when ``class_matching``) and its own permutations.  On clean held-out
        data this is the baseline rate (see :meth:`baseline_rate`), which should be near ``alpha``.

        Raises
        ------
        MonitorInputError
            If the batch or the reference has fewer than ``n_samples`` rows.
        """
        self._require_fitted("detection_rate")
        n_tests = _inputs.integer(n_tests, "n_tests", minimum=1)
        n_samples = _inputs.integer(n_samples, "n_samples", minimum=2)
        confidence = _inputs.probability(confidence, "confidence")
        layers, labels = self._batch(batch, predictions)
        n_batch = next(iter(layers.values())).shape[0]
        for side, size in (("batch", n_batch), ("reference", self._n_reference)):
            if size < n_samples:
                raise MonitorInputError(
                    f"The detection rate draws n_samples={n_samples} rows from the {side} for every test, "
                    f"but the {side} has only {size} rows. Pass a larger {side} or a smaller n_samples."
                )
        batch_rows = draw_subsets(n_batch, n_tests, n_samples, self._generator)
        if self.class_matching:
            reference_rows = torch.stack(
                [draw_matched(self._class_index, labels[rows], n_samples, self._generator) for rows in batch_rows]
            )
        else:
            reference_rows = draw_subsets(self._n_reference, n_tests, n_samples, self._generator)
        p_values = self._batched_p_values(layers, reference_rows, batch_rows, labels)
        return summarize(p_values, alpha=self.alpha, n_samples=n_samples, confidence=confidence)

    def baseline_rate(self, held_out: Any, **options: Any) -> DetectionRate:
        """:meth:`detection_rate` on clean held-out activations: the false-alarm rate, ideally about ``alpha``."""
        return self.detection_rate(held_out, **options)

    def _batched_p_values(
        self, layers: dict[str, Tensor], reference_rows: Tensor, batch_rows: Tensor, labels: Tensor | None
    ) -> Tensor:
        """Shape-(T,) p-values of the tests of rows ``reference_rows[t]`` against ``batch_rows[t]``."""
        n_tests, n_samples = batch_rows.shape
        n_draws = self.n_permutations
        matched = self.class_matching
        if self.method == "wild_bootstrap":
            if matched:  # pair every batch row with a reference row of its class
                reference_rows = reference_rows.gather(
                    1, self._reference_predictions[reference_rows].argsort(dim=1, stable=True)
                )
                batch_rows = batch_rows.gather(1, labels[batch_rows].argsort(dim=1, stable=True))
            signs = draw_signs(n_tests * n_draws, n_samples, self._generator).view(n_tests, n_draws, n_samples)
            weights, statistic = wild_bootstrap_weights(signs, dtype=self._dtype), batched_wild_mmd2
        else:
            if matched:
                pooled_labels = torch.cat([self._reference_predictions[reference_rows], labels[batch_rows]], dim=1)
                permutations = draw_stratified_permutations(pooled_labels, n_draws, self._generator)
            else:
                permutations = draw_permutations(2 * n_samples, n_tests * n_draws, self._generator)
                permutations = permutations.view(n_tests, n_draws, 2 * n_samples)
            weights, statistic = permutation_weights(n_samples, permutations, dtype=self._dtype), batched_mmd2
        weights = weights.to(self._device)
        per_layer = []
        itemsize = torch.empty((), dtype=self._dtype).element_size()
        for name, layer in self._layers.items():
            kernel = GaussianKernelSum(1.0, layer.kernel.powers)  # each test's rows are divided by its own bandwidth
            layer_stats = []
            for chunk in chunks_of_tests(n_tests, 2 * n_samples, itemsize):
                x, y = self._pooled_tests(layer.raw[reference_rows[chunk]], layers[name][batch_rows[chunk]])
                layer_stats.append(statistic(x, y, kernel, weights[chunk]).cpu())
            per_layer.append(torch.cat(layer_stats))
        return plus_one_p_value(self._combine(torch.stack(per_layer, dim=1)))

    def _pooled_tests(self, raw_reference: Tensor, raw_batch: Tensor) -> tuple[Tensor, Tensor]:
        """Shape-(T, n, D), (T, m, D) rows of ``T`` tests, each standardized by its own pooled rows and
        divided by its own pooled median distance, so one kernel with ``sigma = 1`` serves every test."""
        pooled = torch.cat([raw_reference, raw_batch], dim=1).to(torch.float64)
        std = pooled.std(dim=1, correction=0, keepdim=True)
        pooled = (pooled - pooled.mean(dim=1, keepdim=True)) / torch.where(std > 0, std, torch.ones_like(std))
        sample = pooled
        if pooled.shape[1] > self.bandwidth_rows:
            sample = pooled[:, torch.randperm(pooled.shape[1], generator=self._generator)[: self.bandwidth_rows]]
        upper = torch.triu_indices(sample.shape[1], sample.shape[1], offset=1)
        distances = torch.cdist(sample, sample)[:, upper[0], upper[1]]
        sigma = distances.masked_fill(distances <= 0, math.nan).nanmedian(dim=1).values
        if not bool((sigma > 0).all()):
            raise MonitorInputError("Some tests' reference and batch rows are all equal; the kernel bandwidth needs distinct rows.")
        pooled = (pooled / sigma[:, None, None]).to(self._dtype).to(self._device)
        n_reference = raw_reference.shape[1]
        return pooled[:, :n_reference], pooled[:, n_reference:]

    # -- per-sample scores ------------------------------------------------------------------------

    def sample_scores(self, batch: Any, *, predictions: Any = None, layer: str | None = None) -> SampleScores:
        """Each batch sample's contribution, witness and mean-embedding score (see :mod:`monitors.mmd.sample_scores`).

        The reference sample is the one :meth:`check` would use (class-matched when enabled).  The
        scores use the scaling and bandwidth ``fit`` learned from the reference, the same for every
        batch, so they compare between batches.  ``layer`` picks the layer when several were fitted.
        """
        self._require_fitted("sample_scores")
        layers, labels = self._batch(batch, predictions)
        if layer is None:
            if len(self._layers) > 1:
                raise MonitorInputError(f"`layer` must name one of the fitted layers {list(self._layers)}. Got: None")
            layer = next(iter(self._layers))
        elif layer not in self._layers:
            raise MonitorInputError(f"`layer` must name one of the fitted layers {list(self._layers)}. Got: {layer!r}")
        fitted = self._layers[layer]
        rows = self._reference_rows(labels, None)
        return sample_scores(
            fitted.reference if rows is None else fitted.reference[rows],
            self._standardized(layer, layers[layer]),
            fitted.kernel,
            layer=layer,
            predictions=labels,
            tile_size=self.tile_size,
        )

    def top_k(
        self, batch: Any, k: int = 10, *, predictions: Any = None, by: str = "contribution", layer: str | None = None
    ) -> list[tuple[int, int | None, float]]:
        """The ``k`` batch samples that most set it apart: ``(row index, predicted class or None, score)`` rows."""
        return self.sample_scores(batch, predictions=predictions, layer=layer).top_k(k, by=by)

    # -- state ------------------------------------------------------------------------------------

    _legacy_state_keys = {2: frozenset({"config", "generator_state", "fitted"})}
    _REMOVED_OPTIONS = {"reference_cache_rows": 4096, "standardize": "pooled"}  # version 2's, with their defaults

    def _inner_state(self) -> dict[str, Any]:
        """Generator state and fitted reference, as plain Python and CPU tensors."""
        fitted = None
        if self._layers:
            fitted = {
                "layers": {
                    name: {
                        "mean": layer.standardizer.mean.clone(),
                        "scale": layer.standardizer.scale.clone(),
                        "sigma": layer.kernel.sigma,
                        "powers": list(layer.kernel.powers),
                        "reference": layer.reference.cpu().clone(),
                        "raw": layer.raw.clone(),
                    }
                    for name, layer in self._layers.items()
                },
                "reference_predictions": None
                if self._reference_predictions is None
                else self._reference_predictions.clone(),
            }
        return {"generator_state": self._generator.get_state(), "fitted": fitted}

    @classmethod
    def _migrate_legacy_config(cls, version: int, config: dict[str, Any]) -> dict[str, Any]:
        """Version 2 named the engine in a ``backend`` option (each engine is now its own class) and had
        ``standardize`` and ``reference_cache_rows``, which the product never changed from their defaults."""
        removed = {key: config.pop(key, default) for key, default in cls._REMOVED_OPTIONS.items()}
        if removed["standardize"] != "pooled":
            warnings.warn(
                f"This {cls.__name__} state was saved with standardize={removed['standardize']!r}, which is no longer "
                "offered (small tests rejected too often); its checks now standardize by the pooled rows, the exact test.",
                stacklevel=3,
            )
        backend = config.pop("backend", "trustops")
        if backend != cls.backend:
            owner = "AlibiDetectMMDMonitor (monitors.mmd.alibi_backend)" if backend == "alibi_detect" else "MMDAdversarialMonitor"
            raise MonitorStateError(
                f"This state was saved with backend={backend!r}; {cls.__name__} runs {cls.backend!r}. Load it with {owner}."
            )
        return config

    def _load_inner_state(self, state: Mapping[str, Any]) -> None:
        """Restore the generator and fitted reference of :meth:`_inner_state`."""
        self._generator.set_state(state["generator_state"])
        self._layers, self._reference_predictions, self._class_index = {}, None, None
        fitted = state["fitted"]
        if fitted is None:
            return
        for name, layer in fitted["layers"].items():
            self._layers[name] = _Layer(
                Standardizer(mean=layer["mean"].clone(), scale=layer["scale"].clone()),
                GaussianKernelSum(float(layer["sigma"]), tuple(layer["powers"])),
                layer["reference"].to(self._dtype).to(self._device),
                layer["raw"].to(torch.float64),
            )
        labels = fitted["reference_predictions"]
        if labels is not None:
            self._reference_predictions = labels.clone()
            self._class_index = ClassIndex.from_predictions(self._reference_predictions)


def _require_spread(sigma: float, layer: str, problem: str) -> None:
    """The median heuristic needs distinct rows; ``problem`` may name the layer with ``{where}``."""
    if not sigma > 0:
        where = "" if layer == inputs.SINGLE_LAYER else f" in layer {layer!r}"
        raise MonitorInputError(f"{problem.format(where=where)}. The test needs distinct rows to set the kernel bandwidth.")
