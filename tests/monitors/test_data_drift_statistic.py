"""The permutation statistic of EvidentlyDriftMonitor, ``max_j -log p_j``, checked against scipy (Hypothesis).

For any labelling of the pooled rows, each column's ``-log p_j`` is the asymptotic two-sided
Kolmogorov-Smirnov p-value of scipy's D (columns with more than five distinct values) or the
chi-square p-value of scipy's test of homogeneity without continuity correction (the others);
and the batched evaluation over many labellings equals one labelling at a time.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from monitors import drift_tests


def scipy_neg_log_p(values: np.ndarray, labels: np.ndarray, numerical: bool) -> float:
    first, second = values[~labels], values[labels]
    if len(np.unique(values)) < 2:
        return 0.0
    if numerical and len(np.unique(values)) > drift_tests.FEW_VALUES:
        d = stats.ks_2samp(first, second).statistic
        en = len(first) * len(second) / len(values)
        return -math.log(special.kolmogorov(math.sqrt(en) * d))
    keys = np.unique(values)
    table = np.array([[np.sum(first == k) for k in keys], [np.sum(second == k) for k in keys]])
    statistic, p_value, *_ = stats.chi2_contingency(table, correction=False)
    return -math.log(p_value)


@contextlib.contextmanager
def counted_by_value_up_to(few_cells: int):
    """Columns with more than ``few_cells`` distinct values take the sorted path, the others are counted by value."""
    kept = drift_tests.FEW_CELLS
    drift_tests.FEW_CELLS = few_cells
    try:
        yield
    finally:
        drift_tests.FEW_CELLS = kept


# Both ways of computing the K-S statistic: counting by value (the default for these small tables)
# and cumulative sums in sorted order (a column with more distinct values than FEW_CELLS).
@pytest.mark.parametrize("few_cells", [drift_tests.FEW_CELLS, drift_tests.FEW_VALUES], ids=["by_value", "sorted"])
@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n_reference=st.integers(5, 80),
    n_batch=st.integers(2, 40),
    n_labellings=st.integers(1, 5),
)
def test_each_columns_score_is_scipys_p_value_for_any_labelling(few_cells, seed, n_reference, n_batch, n_labellings):
    with counted_by_value_up_to(few_cells):
        _check_against_scipy(seed, n_reference, n_batch, n_labellings)


def _check_against_scipy(seed, n_reference, n_batch, n_labellings):
    g = np.random.default_rng(seed)
    n = n_reference + n_batch
    table = pd.DataFrame(
        {
            "continuous": g.normal(size=n),
            "pixels": g.binomial(16, 0.3, size=n),
            "few": g.integers(0, 4, size=n),
            "binary": g.integers(0, 2, size=n),
            "constant": np.zeros(n),
            "letters": g.choice(list("abc"), size=n),
        }
    )
    numeric = ["continuous", "pixels", "few", "binary", "constant"]
    pooled = drift_tests.PooledColumns.from_frames(
        table.iloc[:n_reference], table.iloc[n_reference:], numeric=numeric, categorical=["letters"]
    )
    statistic = drift_tests.MaxNegLogP(pooled)
    labels = pooled.permuted_labels(g, n_labellings)
    per_column = statistic.per_column(labels)
    names = [pooled.names[j] for j in statistic.columns]
    for row, labelling in enumerate(labels):
        expected = [scipy_neg_log_p(table[c].to_numpy(), labelling, c in numeric) for c in names]
        assert per_column[row] == pytest.approx(expected, rel=1e-6, abs=1e-9)
    assert statistic(labels) == pytest.approx(per_column.max(axis=1) if per_column.shape[1] else 0.0, rel=1e-12)


def test_many_labellings_scored_a_chunk_at_a_time_equal_one_call(monkeypatch):
    # Seeded: 784 pixel-like columns of up to 256 values, as Fashion-MNIST's; the chunk bound is made
    # small so that 40 labellings take several chunks.
    g = np.random.default_rng(3)
    table = pd.DataFrame(g.integers(0, 256, size=(700, 784)).astype(np.float64), columns=[f"p{j}" for j in range(784)])
    pooled = drift_tests.PooledColumns.from_frames(table.iloc[:600], table.iloc[600:], numeric=list(table.columns), categorical=[])
    statistic = drift_tests.MaxNegLogP(pooled)
    labels = pooled.permuted_labels(g, 40)
    whole = statistic.per_column(labels)
    monkeypatch.setattr(drift_tests, "_CHUNK_ELEMENTS", 100 * 784 * 3)  # a few labellings a chunk at most
    assert np.array_equal(statistic.per_column(labels), whole)
    assert np.array_equal(statistic(labels), whole.max(axis=1))


def test_permuted_labellings_keep_the_batch_size_and_cover_every_row():
    pooled = drift_tests.PooledColumns.from_frames(
        pd.DataFrame({"x": np.arange(30.0)}), pd.DataFrame({"x": np.arange(10.0)}), numeric=["x"], categorical=[]
    )
    labels = pooled.permuted_labels(np.random.default_rng(0), 2000)
    assert (labels.sum(axis=1) == 10).all()
    assert labels.mean(axis=0) == pytest.approx(np.full(40, 0.25), abs=0.05)


def test_docstring_example():
    import doctest

    result = doctest.testmod(drift_tests, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 4 and result.failed == 0
