"""Vectorised two-sample column tests: Evidently 0.7's drift decisions and a permutation statistic.

A :class:`PooledColumns` holds the reference rows followed by the batch rows of a table, each
numeric column sorted once and every column coded by its distinct values (in sorted order).
From it:

* :func:`evidently_decisions` gives, per column, the test Evidently 0.7's ``DataDriftPreset``
  would choose (``_get_default_stattest``), its score and its drift decision, computed as
  Evidently's stat-test modules do (same formulas, thresholds and ``<`` / ``<=`` / ``>=``
  rules) without building a Report;
* :class:`MaxNegLogP` gives ``max_j -log p_j`` over columns for many labellings of the pooled
  rows at once (the statistic of a Westfall-Young style permutation test).

>>> import numpy as np, pandas as pd
>>> g = np.random.default_rng(0)
>>> reference = pd.DataFrame({"x": g.normal(size=300), "k": g.integers(0, 3, size=300)})
>>> batch = pd.DataFrame({"x": g.normal(size=100) + 1.0, "k": g.integers(0, 3, size=100)})
>>> pooled = PooledColumns.from_frames(reference, batch, numeric=["x", "k"], categorical=[])
>>> [(d.column, d.method, d.drifted) for d in evidently_decisions(pooled)]
[('x', 'ks', True), ('k', 'chisquare', False)]
>>> statistic = MaxNegLogP(pooled)
>>> bool(statistic(pooled.observed_labels()[None])[0] > 10)
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import special, stats

try:  # private, so only a shortcut: the public ks_2samp below gives the same p-value
    from scipy.stats._stats_py import _attempt_exact_2kssamp as _exact_ks
except ImportError:  # pragma: no cover
    _exact_ks = None

METHODS = ("ks", "chisquare", "z", "wasserstein", "jensenshannon")
DEFAULT_THRESHOLDS = {"ks": 0.05, "chisquare": 0.05, "z": 0.05, "wasserstein": 0.1, "jensenshannon": 0.1}
NUMERICAL_METHODS = ("ks", "wasserstein", "jensenshannon")  # Evidently's allowed feature types
CATEGORICAL_METHODS = ("chisquare", "z", "jensenshannon")
LARGE_REFERENCE = 1000  # Evidently switches from tests to distances above this many reference rows
FEW_VALUES = 5  # at most this many distinct values: a numeric column is tested as categorical
KS_MAX_EXACT_N = 10000  # scipy's ks_2samp 'auto' is exact up to this sample size
# Columns with at most this many distinct values are counted value by value: a bincount over the
# batch rows instead of cumulative sums over every pooled row.  256 takes in 8-bit pixels, whose
# sorted path cost 8.2x the CPU at 784 columns and 5,000 reference rows (bench_drift_monitors --wide).
FEW_CELLS = 256
_CHUNK_ELEMENTS = 4_000_000  # bounds the (labellings x columns x rows) work arrays


def default_method(numerical: bool, n_values: int, n_reference: int) -> str:
    """Evidently 0.7's ``_get_default_stattest`` for a numerical or categorical column."""
    if n_reference <= LARGE_REFERENCE:
        if numerical and n_values > FEW_VALUES:
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    return "wasserstein" if numerical and n_values > FEW_VALUES else "jensenshannon"


@dataclass(frozen=True)
class PooledColumns:
    """Reference rows then batch rows of each column, prepared once per check.

    Attributes
    ----------
    names
        Numeric column names, then categorical ones.
    n_reference, n_batch
        Row counts; the pooled rows are the reference's followed by the batch's.
    values
        shape-(Dn, N) numeric columns (float64).
    order
        shape-(Dn, N) sort order of each numeric column.
    ends
        shape-(Dn, N) whether a sorted position is the last of its tied values.
    codes
        shape-(D, N) index of each value among its column's sorted distinct values.
    n_values
        shape-(D,) number of distinct pooled values of each column.
    """

    names: tuple[str, ...]
    n_numeric: int
    n_reference: int
    n_batch: int
    values: np.ndarray
    order: np.ndarray
    ends: np.ndarray
    codes: np.ndarray
    n_values: np.ndarray

    @classmethod
    def from_frames(
        cls, reference: pd.DataFrame, batch: pd.DataFrame, *, numeric: Sequence[str], categorical: Sequence[str]
    ) -> PooledColumns:
        reference_values = reference[list(numeric)].to_numpy(dtype=np.float64).T
        return cls.from_arrays(reference_values, reference[list(categorical)], batch, numeric, categorical)

    @classmethod
    def from_arrays(
        cls,
        reference_values: np.ndarray,
        reference_categorical: pd.DataFrame,
        batch: pd.DataFrame,
        numeric: Sequence[str],
        categorical: Sequence[str],
    ) -> PooledColumns:
        """Like :meth:`from_frames`, with the reference's numeric columns already a shape-(Dn, N_ref) array."""
        n_reference, n_batch = reference_values.shape[1], len(batch)
        selected = batch if list(batch.columns) == list(numeric) else batch[list(numeric)]  # a copy costs ~1 ms
        values = np.concatenate([reference_values, selected.to_numpy(dtype=np.float64).T], axis=1)
        order = np.argsort(values, axis=1)  # any order within ties: only the ends of tie groups are read
        ordered = np.take_along_axis(values, order, axis=1)
        ends = np.ones(values.shape, dtype=bool)
        ends[:, :-1] = ordered[:, 1:] != ordered[:, :-1]
        codes = np.empty((len(numeric) + len(categorical), values.shape[1]), dtype=np.int64)
        np.put_along_axis(codes[: len(numeric)], order, np.cumsum(ends, axis=1) - ends, axis=1)
        n_values = np.empty(codes.shape[0], dtype=np.int64)
        n_values[: len(numeric)] = ends.sum(axis=1)
        for row, column in enumerate(categorical, start=len(numeric)):
            pooled = pd.concat([reference_categorical[column], batch[column]], ignore_index=True)
            try:
                codes[row], uniques = pd.factorize(pooled, sort=True)
            except TypeError:  # values that do not sort; only the z-test needs the order
                codes[row], uniques = pd.factorize(pooled, sort=False)
            n_values[row] = len(uniques)
        return cls(
            (*numeric, *categorical), len(numeric), n_reference, n_batch, values, order, ends, codes, n_values
        )

    @property
    def n_rows(self) -> int:
        return self.n_reference + self.n_batch

    def observed_labels(self) -> np.ndarray:
        """shape-(N,) ``True`` for the batch rows."""
        return np.arange(self.n_rows) >= self.n_reference

    def permuted_labels(self, generator: np.random.Generator, n: int) -> np.ndarray:
        """shape-(n, N) labellings, each a uniformly random choice of ``n_batch`` batch rows."""
        return generator.permuted(np.broadcast_to(self.observed_labels(), (n, self.n_rows)), axis=1)

    def counts(self, rows: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reference and batch counts of each distinct value of columns ``rows``: two shape-(len(rows), K_max)."""
        size = int(self.n_values[rows].max())
        offsets = (np.arange(len(rows)) * size)[:, None]
        total = np.bincount((self.codes[rows] + offsets).ravel(), minlength=len(rows) * size)
        batch = np.bincount((self.codes[rows][:, labels] + offsets).ravel(), minlength=len(rows) * size)
        return (total - batch).reshape(len(rows), size), batch.reshape(len(rows), size)


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    method: str
    score: float
    threshold: float
    drifted: bool


def evidently_decisions(
    pooled: PooledColumns, *, method: str | None = None, threshold: float | None = None
) -> list[ColumnDrift]:
    """Evidently's per-column test, score and decision for the observed labelling of ``pooled``."""
    labels = pooled.observed_labels()
    chosen = [
        method or default_method(j < pooled.n_numeric, int(pooled.n_values[j]), pooled.n_reference)
        for j in range(len(pooled.names))
    ]
    scores = np.empty(len(chosen))
    for name, compute in _SCORES.items():
        rows = np.array([j for j, m in enumerate(chosen) if m == name], dtype=np.int64)
        if rows.size:
            scores[rows] = compute(pooled, rows, labels)
    result = []
    for j, name in enumerate(chosen):
        limit = DEFAULT_THRESHOLDS[name] if threshold is None else threshold
        score = float(scores[j])
        drifted = score <= limit if name == "ks" else score < limit if name in ("chisquare", "z") else score >= limit
        result.append(ColumnDrift(pooled.names[j], name, score, limit, bool(drifted)))
    return result


def _batch_counts_at_sorted(pooled: PooledColumns, rows: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """shape-(B, len(rows), N): batch rows among the first ``i + 1`` sorted values, for each labelling."""
    gathered = labels[:, pooled.order[rows]]
    return np.cumsum(gathered, axis=2, dtype=np.int32 if pooled.n_rows < 2**31 else np.int64)


def _ks_h(pooled: PooledColumns, rows: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``|a n_batch - b n_ref|`` maximised over tie-group ends (``D * n_ref * n_batch``), shape (B, len(rows))."""
    big = pooled.n_rows**2 >= 2**31
    b = _batch_counts_at_sorted(pooled, rows, labels).astype(np.int64 if big else np.int32)
    seen = np.arange(1, pooled.n_rows + 1, dtype=b.dtype)
    gap = np.abs(seen * pooled.n_batch - b * pooled.n_rows)
    return (gap * pooled.ends[rows]).max(axis=2)


@lru_cache(maxsize=65536)
def _ks_p_value(n1: int, n2: int, h: int) -> float:
    """scipy's two-sided ``ks_2samp(reference, batch)`` p-value for ``D = h / lcm(n1, n2)``.

    ``ks_2samp``'s p-value depends on the samples only through ``n1``, ``n2`` and ``D``, so it is
    computed on two-valued samples with the same ECDF gap (``a / n1 - b / n2`` at one point).
    """
    g = math.gcd(n1, n2)
    if _exact_ks is not None and max(n1, n2) <= KS_MAX_EXACT_N:  # ks_2samp's own exact step, 10x cheaper
        success, _, p_value = _exact_ks(n1, n2, g, h / ((n1 // g) * n2), "two-sided")
        if success:
            return float(np.clip(p_value, 0, 1))
    gap = h * g  # = a * n2 - b * n1 for counts a <= n1, b <= n2
    for b in range(n2 + 1):
        if (gap + b * n1) % n2 == 0 and (gap + b * n1) // n2 <= n1:
            a = (gap + b * n1) // n2
            break
    else:  # unreachable for an achievable h
        raise ValueError(f"No ECDF gap {h}/lcm for sample sizes {n1}, {n2}.")
    first = np.r_[np.zeros(a), np.ones(n1 - a)]
    second = np.r_[np.zeros(b), np.ones(n2 - b)]
    return float(stats.ks_2samp(first, second).pvalue)


def _ks_scores(pooled: PooledColumns, rows: np.ndarray, labels: np.ndarray) -> np.ndarray:
    h = _ks_h(pooled, rows, labels[None])[0] // math.gcd(pooled.n_reference, pooled.n_batch)
    return np.array([_ks_p_value(pooled.n_reference, pooled.n_batch, int(v)) for v in h])


def _chisquare_scores(pooled: PooledColumns, rows: np.ndarray, labels: np.ndarray) -> np.ndarray:
    reference, batch = pooled.counts(rows, labels)
    present = np.arange(reference.shape[1]) < pooled.n_values[rows][:, None]
    expected = reference * (pooled.n_batch / pooled.n_reference)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(present, (batch - expected) ** 2 / expected, 0.0)
    return special.chdtrc(pooled.n_values[rows] - 1, terms.sum(axis=1))


def _z_scores(pooled: PooledColumns, rows: np.ndarray, labels: np.ndarray) -> np.ndarray:
    reference, batch = pooled.counts(rows, labels)
    n1, n2 = pooled.n_reference, pooled.n_batch
    p1 = (n1 - reference[:, 0]) / n1  # share of values other than the smallest
    p2 = (n2 - batch[:, 0]) / n2
    pooled_share = (p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled_share * (1 - pooled_share) * (1.0 / n1 + 1.0 / n2))
        p = 2 * (1 - special.ndtr(np.abs(z)))
    return np.where(pooled.n_values[rows] == 1, 1.0, p)


def _wasserstein_scores(pooled: PooledColumns, rows: np.ndarray, labels: np.ndarray) -> np.ndarray:
    b = _batch_counts_at_sorted(pooled, rows, labels[None])[0]
    a = np.arange(1, pooled.n_rows + 1) - b
    ordered = np.take_along_axis(pooled.values[rows], pooled.order[rows], axis=1)
    gaps = np.abs(a / pooled.n_reference - b / pooled.n_batch)[:, :-1]
    distance = (gaps * np.diff(ordered, axis=1)).sum(axis=1)
    return distance / np.maximum(pooled.values[rows][:, ~labels].std(axis=1), 0.001)


def _jensenshannon_scores(pooled: PooledColumns, rows: np.ndarray, labels: np.ndarray) -> np.ndarray:
    scores = np.empty(len(rows))
    binned = [j for j, row in enumerate(rows) if row < pooled.n_numeric and _reference_n_values(pooled, row) > 20]
    by_value = np.array([j for j in range(len(rows)) if j not in binned], dtype=np.int64)
    if by_value.size:
        reference, batch = pooled.counts(rows[by_value], labels)
        scores[by_value] = _jensenshannon(reference / pooled.n_reference, batch / pooled.n_batch)
    for j in binned:  # Evidently bins numeric columns with many values by Sturges' rule
        values = pooled.values[rows[j]]
        edges = np.histogram_bin_edges(values, bins="sturges")
        reference = np.histogram(values[~labels], edges)[0] / pooled.n_reference
        batch = np.histogram(values[labels], edges)[0] / pooled.n_batch
        scores[j] = _jensenshannon(reference[None], batch[None])[0]
    return scores


def _reference_n_values(pooled: PooledColumns, row: int) -> int:
    return int(np.unique(pooled.values[row, : pooled.n_reference]).size)


def _jensenshannon(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """scipy's ``distance.jensenshannon`` (natural log) of each row pair."""
    p = p / p.sum(axis=1, keepdims=True)
    q = q / q.sum(axis=1, keepdims=True)
    m = (p + q) / 2.0
    divergence = special.rel_entr(p, m).sum(axis=1) + special.rel_entr(q, m).sum(axis=1)
    return np.sqrt(divergence / 2.0)


_SCORES = {
    "ks": _ks_scores,
    "chisquare": _chisquare_scores,
    "z": _z_scores,
    "wasserstein": _wasserstein_scores,
    "jensenshannon": _jensenshannon_scores,
}


class MaxNegLogP:
    """``max_j -log p_j`` over the columns of ``pooled`` for labellings of its rows.

    ``p_j`` is the asymptotic two-sided Kolmogorov-Smirnov p-value for numeric columns with more
    than five distinct pooled values, and Pearson's chi-square test of homogeneity (batch versus
    reference counts of each distinct value, ``K_j - 1`` degrees of freedom) for the others;
    constant columns are left out.  Both are fast, finite and comparable across columns, which is
    all a permutation test needs of them: its validity does not rest on their approximations.
    The column kinds depend only on the pooled values, so every labelling is scored alike.

    Columns with at most ``FEW_CELLS`` distinct values (pixel-like integers, categories) get the
    batch counts of each value for every labelling from one ``bincount`` over the batch rows (no
    BLAS: its threads spin on a busy machine); the others the batch counts of ``value <= v`` from
    cumulative sums of the labels in sorted order.
    """

    def __init__(self, pooled: PooledColumns) -> None:
        self.pooled = pooled
        n_values = pooled.n_values
        numeric = np.arange(len(pooled.names)) < pooled.n_numeric
        continuous = numeric & (n_values > FEW_VALUES)
        self.columns = np.flatnonzero(n_values >= 2)  # constant columns carry no evidence
        tied = self.columns[n_values[self.columns] <= FEW_CELLS]
        self.sorted_ks = self.columns[n_values[self.columns] > FEW_CELLS]  # all continuous
        self._tied_ks = continuous[tied]
        n1, n2, n = pooled.n_reference, pooled.n_batch, pooled.n_rows
        self._ks_scale = math.sqrt(n1 * n2 / n) / (n1 * n2)
        self._tied = tied
        self._ks_cells = _Cells(pooled, tied[self._tied_ks])
        self._chi2_cells = _Cells(pooled, tied[~self._tied_ks])
        self._ks_columns = np.concatenate([tied[self._tied_ks], self.sorted_ks])
        self._chi2_columns = tied[~self._tied_ks]
        self._df = (self._chi2_cells.sizes - 1).astype(np.float64)

    def per_column(self, labels: np.ndarray) -> np.ndarray:
        """shape-(B, len(columns)) ``-log p_j`` of shape-(B, N) boolean labellings (``True``: batch row)."""
        scores = np.zeros((len(labels), len(self.pooled.names)))
        h, chi2 = self._statistics(labels)
        scores[:, self._ks_columns] = _ks_neg_log_p(h * self._ks_scale)
        scores[:, self._chi2_columns] = _chi2_neg_log_p(chi2, self._df)
        return scores[:, self.columns]

    def __call__(self, labels: np.ndarray) -> np.ndarray:
        """shape-(B,) statistic of shape-(B, N) labellings; 0 when every column is constant."""
        # -log p is increasing in the statistic and shared by columns of one kind (and df), so
        # maximise the statistics first and transform once per labelling and kind.
        h, chi2 = self._statistics(labels)
        best = np.zeros(len(labels))
        if h.shape[1]:
            best = _ks_neg_log_p(h.max(axis=1) * self._ks_scale)
        for df in np.unique(self._df):
            largest = chi2[:, self._df == df].max(axis=1)
            best = np.maximum(best, _chi2_neg_log_p(largest, np.full(len(labels), df)))
        return best

    def _statistics(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """KS ``D * n_ref * n_batch`` of the KS columns and chi-square statistics of the others, per labelling.

        Labellings are scored a chunk at a time: counting by value needs about ``n_batch x columns``
        plus one cell per distinct value of each column per labelling (784 pixel columns of 256
        values: about 200,000), so ``_CHUNK_ELEMENTS`` bounds the work arrays as it does for the sorted path.
        """
        per_labelling = max(1, self.pooled.n_batch * len(self._tied), self._ks_cells.size + self._chi2_cells.size)
        step = max(1, _CHUNK_ELEMENTS // per_labelling)
        if len(labels) <= step:
            return self._chunk_statistics(labels)
        parts = [self._chunk_statistics(labels[i : i + step]) for i in range(0, len(labels), step)]
        return np.concatenate([h for h, _ in parts]), np.concatenate([chi2 for _, chi2 in parts])

    def _chunk_statistics(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pooled, count = self.pooled, len(labels)
        n1, n2, n = pooled.n_reference, pooled.n_batch, pooled.n_rows
        h_parts, chi2 = [], np.zeros((count, 0))
        rows = np.nonzero(labels)[1].reshape(count, n2)  # the batch rows of each labelling
        if self._ks_cells.size:
            cells = self._ks_cells
            below = cells.cumulative(cells.counts(rows))  # batch rows with value <= v
            gap = np.abs(cells.cumulative(cells.totals) * n2 - below * n)
            h_parts.append(np.maximum.reduceat(gap, cells.starts, axis=1))
        if self._chi2_cells.size:
            cells = self._chi2_cells
            with np.errstate(divide="ignore", invalid="ignore"):
                terms = (cells.counts(rows) - cells.totals * (n2 / n)) ** 2 / cells.totals
            chi2 = np.add.reduceat(terms, cells.starts, axis=1) * (n * n / (n1 * n2))
        if self.sorted_ks.size:
            step = max(1, _CHUNK_ELEMENTS // (self.sorted_ks.size * n))
            h_parts.append(
                np.concatenate([_ks_h(pooled, self.sorted_ks, labels[i : i + step]) for i in range(0, count, step)])
            )
        h = np.concatenate(h_parts, axis=1) if h_parts else np.zeros((count, 0))
        return h, chi2


class _Cells:
    """One cell per distinct value of each of some columns, for counting batch rows by bincount."""

    def __init__(self, pooled: PooledColumns, columns: np.ndarray) -> None:
        self.sizes = pooled.n_values[columns]
        self.starts = _block_starts(self.sizes)
        self.size = int(self.sizes.sum())
        self.index = np.ascontiguousarray(pooled.codes[columns].T + self.starts)  # (N, columns) cell of each value
        self.totals = np.bincount(self.index.ravel(), minlength=self.size).astype(np.float64)

    def counts(self, rows: np.ndarray) -> np.ndarray:
        """shape-(B, size) batch rows per cell, for shape-(B, n_batch) batch row indices."""
        count = len(rows)
        flat = self.index[rows] + (np.arange(count) * self.size)[:, None, None]
        return np.bincount(flat.ravel(), minlength=count * self.size).reshape(count, self.size).astype(np.float64)

    def cumulative(self, counts: np.ndarray) -> np.ndarray:
        """Cumulative sums of ``counts`` (last axis) within each column's block of cells."""
        total = np.cumsum(counts, axis=-1)
        before = np.take(total, self.starts - 1, axis=-1) * (self.starts > 0)
        return total - np.repeat(before, self.sizes, axis=-1)


def _block_starts(sizes: np.ndarray) -> np.ndarray:
    return (np.cumsum(sizes) - sizes).astype(np.int64)


def _ks_neg_log_p(x: np.ndarray) -> np.ndarray:
    """``-log`` of Kolmogorov's limiting survival function, with its tail ``2 exp(-2 x^2)`` past underflow."""
    p = special.kolmogorov(x)
    with np.errstate(divide="ignore"):
        return np.where(p > 1e-300, -np.log(p), 2 * x * x - math.log(2.0))


def _chi2_neg_log_p(statistic: np.ndarray, df: np.ndarray) -> np.ndarray:
    """``-log`` of the chi-square survival function, with its leading tail term past underflow."""
    p = special.chdtrc(df, statistic)
    half = np.maximum(statistic, 1e-300) / 2
    with np.errstate(divide="ignore"):
        tail = half - (df / 2 - 1) * np.log(half) + special.gammaln(df / 2)
        return np.where(p > 1e-300, -np.log(p), tail)
