"""InputExpectationsMonitor's vectorised check fails exactly the expectations a Great Expectations run fails.

A table of good and bad batches (wrong dtypes, missing values, out-of-range values, missing and
extra columns, too few rows, unknown or missing labels, a skewed class mix), each checked by the
fast path and by Great Expectations 1.x running the same suite with the same per-feature ranges.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitors.input_expectations import InputExpectationsMonitor, _name

g = np.random.default_rng(0)
REFERENCE = pd.DataFrame(
    {"a": g.normal(size=200), "b": g.integers(0, 17, size=200), "c": g.uniform(0, 1, size=200)}
).assign(label=np.resize([0, 1, 2], 200))


def clean(n: int = 30) -> pd.DataFrame:
    h = np.random.default_rng(n)
    frame = pd.DataFrame({"a": h.normal(size=n) * 0.5, "b": h.integers(2, 15, size=n), "c": h.uniform(0.1, 0.9, size=n)})
    return frame.assign(label=np.resize([0, 1, 2], n))


def with_values(column: str, values: list) -> pd.DataFrame:
    frame = clean(len(values))
    frame[column] = values
    return frame


BATCHES = {
    "clean": clean(),
    "float32_and_uint8": clean().astype({"a": "float32", "b": "uint8"}),
    "out_of_range_high_and_low": clean().assign(a=lambda f: f.a.where(f.index != 3, 50.0), c=lambda f: f.c - 10),
    "nan_feature": clean().assign(c=lambda f: f.c.where(f.index != 1)),
    "nan_and_out_of_range": clean().assign(a=lambda f: f.a.where(f.index != 1).where(f.index != 2, -99.0)),
    "infinite_feature": clean().assign(b=lambda f: f.b.astype(float).where(f.index != 0, np.inf)),
    "text_feature": with_values("b", ["3", "4"] * 5),
    "object_numbers_in_range": with_values("b", pd.Series([3, 4] * 5, dtype=object).tolist()).astype({"b": object}),
    "nullable_ints_with_missing": clean(10).astype({"b": "Int64"}).assign(b=lambda f: f.b.mask(f.index == 2)),
    "bool_feature": with_values("b", [True, False] * 5),
    "categorical_feature": clean(10).assign(b=lambda f: pd.Categorical(f.b)),
    "missing_feature": clean().drop(columns="c"),
    "extra_column": clean().assign(extra=1.0),
    "too_few_rows": clean(3),
    "unknown_class": clean(9).assign(label=[0, 1, 2, 0, 1, 2, 0, 1, 7]),
    "missing_label": clean(9).assign(label=[0, 1, 2, 0, 1, np.nan, 0, 1, 2]),
    "all_labels_missing": clean(6).assign(label=[np.nan] * 6),
    "labels_as_text": clean(6).assign(label=["0", "1", "2"] * 2),
    "skewed_class_mix": clean(12).assign(label=[0] * 10 + [1, 2]),
    "float_labels": clean(9).assign(label=[0.0, 1.0, 2.0] * 3),
}


@pytest.fixture(scope="module")
def monitors():
    pytest.importorskip("great_expectations")  # here, not at module level: importing it takes seconds of collection
    return {
        "labelled": InputExpectationsMonitor(label_column="label", min_rows=5, max_class_kl=0.1).fit(REFERENCE),
        "unlabelled": InputExpectationsMonitor(feature_columns=["a", "b", "c"], range_margin=1.0).fit(
            REFERENCE.drop(columns="label")
        ),
        "declared_range": InputExpectationsMonitor(label_column="label", value_range=(-3.0, 16.0)).fit(REFERENCE),
    }


@pytest.mark.slow  # ~1 s of Great Expectations per batch
@pytest.mark.parametrize("which", ["labelled", "unlabelled", "declared_range"])
@pytest.mark.parametrize("batch_name", list(BATCHES))
def test_failed_expectations_equal_great_expectations(monitors, which, batch_name):
    monitor = monitors[which]
    batch = BATCHES[batch_name]
    if which == "unlabelled":
        batch = batch.drop(columns="label")
    result = monitor.check(batch)
    failed, evaluated = monitor._great_expectations_failures(batch)
    assert sorted(result.details["failed_expectations"].split(", ")) == sorted(_name(f) for f in failed) or (
        not failed and result.details["failed_expectations"] == ""
    )
    assert result.details["n_evaluated"] == evaluated


def test_the_fast_path_agrees_with_great_expectations_on_a_few_batches(monitors):
    for batch_name in ("clean", "out_of_range_high_and_low", "unknown_class", "text_feature"):
        monitor, batch = monitors["labelled"], BATCHES[batch_name]
        failed, _ = monitor._great_expectations_failures(batch)
        fast = monitor.check(batch).details["failed_expectations"]
        assert sorted(filter(None, fast.split(", "))) == sorted(_name(f) for f in failed), batch_name
