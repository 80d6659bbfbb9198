"""Does a batch of inputs still meet the data's expectation suite (a data contract)?

The suite is that of :mod:`trustops.data.validation` (Great Expectations 1.x): the column set,
numeric dtypes, no missing values, every feature within its range, at least ``min_rows`` rows
and, with a label column, labels among the reference classes and a class mix close to uniform.
``fit`` compiles it from a reference table; ``check`` evaluates it vectorised in pandas/numpy,
without Great Expectations (a GE run of the same suite stays reachable for comparison tests).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from monitors import _inputs
from monitors._state import FittedDictState
from monitors.base import Monitor, MonitorResult
from monitors.errors import MonitorConfigError, MonitorDependencyError, MonitorInputError

SPLIT_COLUMN = "__trustops_split__"
LABEL_STAND_IN = "__trustops_label__"
LABEL_EXPECTATIONS = 3  # not-null, in-set and class-mix KL on the label column
NUMERIC_TYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
_NUMBER_KINDS = {"integer", "floating", "mixed-integer-float", "boolean", "decimal"}  # pandas infer_dtype


def _name(failure: Any) -> str:
    return f"{failure.expectation}[{failure.column}]" if failure.column else failure.expectation


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


class InputExpectationsMonitor(FittedDictState, Monitor):
    """Share of failed expectations of the data contract on a batch table.

    The expectations are those of :func:`trustops.data.validation.validate_frame`: the column set
    (exactly the features and the label), numeric dtypes (``NUMERIC_TYPES``), no missing values,
    every feature within its range, at least ``min_rows`` rows and, with a ``label_column``,
    labels among the reference classes and a class mix with KL divergence from the uniform mix
    over those classes at most ``max_class_kl`` (raise it for an imbalanced reference).  ``fit``
    compiles them into arrays; ``check`` evaluates them vectorised, as Great Expectations would
    (same pass/fail per expectation), without running Great Expectations.

    Feature ranges: with ``value_range`` the declared ``(low, high)`` bounds every feature (for
    example 0-16 for the digits' pixels).  Otherwise each feature ``j`` gets its own learned range
    ``[min_j - range_margin * std_j, max_j + range_margin * std_j]`` from the reference (``std_j``
    the population standard deviation), so the margin scales with each column's spread: with the
    default ``range_margin = 3`` a clean 120-row batch of 64 light-tailed columns (Gaussian,
    binomial pixels) falls outside in about 1% of batches or fewer; heavy-tailed columns need a
    larger margin or declared bounds.  A column constant in the reference admits only its value.

    ``score`` is the share of failed expectations and ``threshold`` is 0: any failure alarms,
    and ``alarm == (score > threshold)``.  Without a label column the label expectations are
    left out of the counts.  This is a contract check, not a test: it has no p-value.

    Parameters
    ----------
    label_column
        Name of the label column, or ``None`` for unlabelled tables.
    feature_columns
        The feature columns; ``None`` takes every reference column except the label.
    range_margin
        Widening of each learned feature range, in standard deviations of that feature (``>= 0``).
    value_range
        Declared ``(low, high)`` bounds of every feature, used instead of the learned ranges; ``None`` learns them.
    min_rows
        Fewest rows a batch may have (``>= 1``).
    max_class_kl
        Largest allowed KL divergence of the batch's label mix from the uniform mix (``>= 0``).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> g = np.random.default_rng(0)
    >>> def table(n, scale=1.0):
    ...     return pd.DataFrame(scale * g.uniform(0, 1, size=(n, 2)), columns=["a", "b"])
    >>> monitor = InputExpectationsMonitor().fit(table(200))
    >>> ok, bad = monitor.check(table(20, scale=0.9)), monitor.check(table(20, scale=4.0))
    >>> ok.alarm, ok.score
    (False, 0.0)
    >>> bad.alarm, bad.details["failed_expectations"]
    (True, 'expect_column_values_to_be_between[a], expect_column_values_to_be_between[b]')
    >>> declared = InputExpectationsMonitor(value_range=(0.0, 16.0)).fit(table(200))
    >>> declared.check(table(20, scale=4.0)).alarm
    False
    """

    name: ClassVar[str] = "input_expectations"

    def __init__(
        self,
        *,
        label_column: str | None = None,
        feature_columns: Sequence[str] | None = None,
        range_margin: float = 3.0,
        value_range: tuple[float, float] | None = None,
        min_rows: int = 1,
        max_class_kl: float = 0.05,
    ) -> None:
        self._configure(
            label_column=label_column,
            feature_columns=feature_columns,
            range_margin=range_margin,
            value_range=value_range,
            min_rows=min_rows,
            max_class_kl=max_class_kl,
        )
        self._fitted: dict[str, Any] | None = None

    def _validate_options(self, config: dict[str, Any]) -> dict[str, Any]:
        label = config["label_column"]
        if label is not None and (not isinstance(label, str) or not label):
            raise MonitorConfigError(f"`label_column` must be a column name or None. Got: {label!r}")
        features = config["feature_columns"]
        if features is not None:
            if isinstance(features, str) or not all(isinstance(c, str) for c in features) or not len(features):
                raise MonitorConfigError(
                    f"`feature_columns` must be a non-empty list of column names or None. Got: {features!r}"
                )
            if label in features:
                raise MonitorConfigError(
                    f"`feature_columns` must not contain the label column {label!r}. Got: {list(features)!r}"
                )
            features = list(features)
        bounds = config.get("value_range")
        if bounds is not None:
            if (
                isinstance(bounds, str)
                or not isinstance(bounds, Sequence)
                or len(bounds) != 2
                or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in bounds)
                or not bounds[0] <= bounds[1]
            ):
                raise MonitorConfigError(
                    f"`value_range` must be a pair of finite numbers (low, high) with low <= high, or None. Got: {bounds!r}"
                )
            bounds = [float(bounds[0]), float(bounds[1])]
        config["range_margin"] = _inputs.real(config["range_margin"], "range_margin", low=0.0)
        config["min_rows"] = _inputs.integer(config["min_rows"], "min_rows", minimum=1)
        config["max_class_kl"] = _inputs.real(config["max_class_kl"], "max_class_kl", low=0.0)
        return {**config, "feature_columns": features, "value_range": bounds}

    def _frame(self, data: Any, name: str) -> pd.DataFrame:
        if not isinstance(data, pd.DataFrame):
            raise MonitorInputError(f"`{name}` must be a pandas DataFrame. Got: {type(data).__name__}")
        if data.empty:
            raise MonitorInputError(f"`{name}` is empty. Got: shape {data.shape}")
        label = self.label_column
        if label is not None and label not in data.columns:
            raise MonitorInputError(f"`{name}` has no label column {label!r}. Got columns: {list(data.columns)}")
        if SPLIT_COLUMN in data.columns or LABEL_STAND_IN in data.columns:
            raise MonitorInputError(
                f"`{name}` must not use the reserved column names {SPLIT_COLUMN!r}, {LABEL_STAND_IN!r}."
            )
        return data

    def fit(self, reference: pd.DataFrame) -> Self:
        """Learn the feature columns, per-feature value ranges and classes from a reference ``DataFrame``."""
        frame = self._frame(reference, "reference")
        label = self.label_column
        features = self.feature_columns or [c for c in frame.columns if c != label]
        missing = [c for c in features if c not in frame.columns]
        if missing or not features:
            raise MonitorInputError(
                f"`reference` lacks the feature columns {missing or features}. Got: {list(frame.columns)}"
            )
        values = frame[features]
        numeric = all(pd.api.types.is_numeric_dtype(t) for t in values.dtypes)
        if not numeric or not np.isfinite(values.to_numpy(float)).all():
            raise MonitorInputError(
                f"`reference` features must be finite numbers. Got dtypes: {dict(values.dtypes.astype(str))}"
            )
        if self.value_range is not None:
            low, high = ([bound] * len(features) for bound in self.value_range)
        else:
            array = values.to_numpy(np.float64)
            pad = self.range_margin * array.std(axis=0)
            low, high = (array.min(axis=0) - pad).tolist(), (array.max(axis=0) + pad).tolist()
        classes = None
        if label is not None:
            if frame[label].isna().any():
                raise MonitorInputError(f"`reference` label column {label!r} has missing values.")
            classes = sorted(_plain(c) for c in frame[label].unique())
        self._fitted = {"feature_columns": [str(c) for c in features], "low": low, "high": high, "classes": classes}
        return self

    def check(self, batch: pd.DataFrame) -> MonitorResult:
        """Evaluate the expectations on a batch ``DataFrame`` with the reference's columns."""
        _inputs.require_fitted(self._fitted is not None, self)
        failed = self._failures(self._frame(batch, "batch"))
        evaluated = 2 + 3 * len(self._fitted["feature_columns"]) + LABEL_EXPECTATIONS * (
            self.label_column is not None
        )
        score = len(failed) / evaluated
        details = {
            "n_failed": len(failed),
            "n_evaluated": evaluated,
            "failed_expectations": ", ".join(_name(f) for f in failed),
            "summary": "; ".join(f.describe() for f in failed),
        }
        return MonitorResult(alarm=bool(score > 0.0), score=score, threshold=0.0, details=details)

    def _failures(self, frame: pd.DataFrame) -> list[Any]:
        """The failed expectations, in the suite's order, as :class:`trustops.data.validation.FailedExpectation`."""
        from trustops.data.validation import NUMERIC_TYPES, FailedExpectation

        fitted, label = self._fitted, self.label_column
        features = fitted["feature_columns"]
        failed = []
        expected = [*features, *([label] if label is not None else [])]
        if set(frame.columns) != set(expected):
            failed.append(FailedExpectation("expect_table_columns_to_match_set", None, sorted(map(str, frame.columns)), []))
        if len(frame) < self.min_rows:
            failed.append(FailedExpectation("expect_table_row_count_to_be_between", None, len(frame), []))
        dtypes = dict(zip(frame.columns, frame.dtypes))
        names = {t: str(t) for t in set(dtypes.values())}
        present = [c for c in features if c in dtypes]
        plain = [c for c in present if names[dtypes[c]] in NUMERIC_TYPES]  # numpy numbers: no nulls but NaN
        index = {c: j for j, c in enumerate(features)}
        outside: dict[str, np.ndarray] = {}
        nulls: dict[str, bool] = {}
        if plain:
            values = frame[plain].to_numpy(np.float64)
            rows = [index[c] for c in plain]
            low, high = np.asarray(fitted["low"])[rows], np.asarray(fitted["high"])[rows]
            out = (values < low) | (values > high)  # NaN compares False: GE skips nulls here
            nan = np.isnan(values)
            for k in np.flatnonzero(out.any(axis=0) | nan.any(axis=0)):
                outside[plain[k]] = values[out[:, k], k]
                nulls[plain[k]] = bool(nan[:, k].any())
        plain_set = set(plain)
        for c in present:
            if c not in plain_set:
                nulls[c] = bool(frame[c].isna().any())
                outside[c] = _outside_of(frame[c], fitted["low"][index[c]], fitted["high"][index[c]])
        for c in features:
            if c not in dtypes:
                failed += [FailedExpectation(e, c, None, []) for e in _COLUMN_EXPECTATIONS]
                continue
            if c not in plain_set:
                failed.append(FailedExpectation("expect_column_values_to_be_in_type_list", c, names[dtypes[c]], []))
            if nulls.get(c, False):
                failed.append(FailedExpectation("expect_column_values_to_not_be_null", c, None, []))
            if c in outside and len(outside[c]):
                examples = [_plain(v) for v in outside[c][:5]]
                failed.append(FailedExpectation("expect_column_values_to_be_between", c, None, examples))
        if label is not None:
            failed += self._label_failures(frame[label])
        return failed

    def _label_failures(self, labels: pd.Series) -> list[Any]:
        from trustops.data.validation import FailedExpectation

        classes, label = self._fitted["classes"], self.label_column
        failed = []
        if labels.isna().any():
            failed.append(FailedExpectation("expect_column_values_to_not_be_null", label, None, []))
        present = labels.dropna()
        known = present.isin(classes)
        if not known.all():
            examples = [_plain(v) for v in present[~known].iloc[:5]]
            failed.append(FailedExpectation("expect_column_values_to_be_in_set", label, None, examples))
        # GE's KL of the observed mix from the uniform mix over the classes: infinite (a failure)
        # with an unknown class, undefined (a failure) with no labels at all.
        divergence = math.inf
        if len(present) and known.all():
            share = present.value_counts().to_numpy(np.float64) / len(present)
            divergence = float(np.sum(share * np.log(share * len(classes))))
        if not divergence <= self.max_class_kl:
            observed = None if math.isinf(divergence) else divergence
            failed.append(FailedExpectation("expect_column_kl_divergence_to_be_less_than", label, observed, []))
        return failed

    def _great_expectations_failures(self, batch: pd.DataFrame) -> tuple[list[Any], int]:
        """The same suite run by Great Expectations 1.x (slow: seconds): the reference for :meth:`check`.

        Builds :func:`trustops.data.validation.validate_frame`'s suite with this monitor's per-feature
        ranges; returns the failed expectations and how many were evaluated (label stand-in left out).
        """
        _inputs.require_fitted(self._fitted is not None, self)
        frame = self._frame(batch, "batch")
        try:
            return _run_great_expectations(frame, self._fitted, self.config)
        except ImportError as error:
            raise MonitorDependencyError(
                f"InputExpectationsMonitor needs Great Expectations 1.x: pip install 'great_expectations>=1' ({error})"
            ) from None

    @classmethod
    def _migrate_legacy_config(cls, version: int, config: dict[str, Any]) -> dict[str, Any]:
        return {"value_range": None, **config}  # the option came later; None was the behaviour before it

    def _load_inner_state(self, state: Mapping[str, Any]) -> None:
        """A state from before per-feature ranges is refused with a clear message."""
        fitted = state["fitted"]
        if fitted is not None and "low" not in fitted:
            raise MonitorInputError(
                "This InputExpectationsMonitor state has one learned range for all features (an older version); "
                "fit the monitor again to learn per-feature ranges."
            )
        super()._load_inner_state(state)

    @classmethod
    def _unit_test_params(cls) -> list[dict[str, Any]]:
        return [
            {},
            {"label_column": "label", "max_class_kl": 1.0},
            {"value_range": (-4.0, 4.0), "range_margin": 0.5, "min_rows": 5},
        ]

    @classmethod
    def _unit_test_data(cls, generator: np.random.Generator) -> tuple[Any, Any]:
        def table(n: int, shift: float) -> pd.DataFrame:
            frame = pd.DataFrame(generator.normal(size=(n, 2)) + shift, columns=["a", "b"])
            return frame.assign(label=generator.integers(0, 2, size=n))

        return table(40, 0.0), table(10, 0.5)


_COLUMN_EXPECTATIONS = (
    "expect_column_values_to_be_in_type_list",
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_between",
)


def _outside_of(column: pd.Series, low: float, high: float) -> np.ndarray:
    """Non-null values of a column of another dtype outside ``[low, high]``, as GE finds them.

    GE compares the non-null values themselves: numbers held as objects, categories or nullable
    integers are compared as numbers; text cannot be compared and fails the expectation.
    """
    values = column.dropna()
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(values.cat.categories.dtype)
    if pd.api.types.infer_dtype(values, skipna=True) not in _NUMBER_KINDS and len(values):
        return values.to_numpy(dtype=object)[:5]
    numbers_ = values.to_numpy(np.float64)
    return numbers_[(numbers_ < low) | (numbers_ > high)]


def _run_great_expectations(frame: pd.DataFrame, fitted: dict[str, Any], config: dict[str, Any]) -> tuple[list[Any], int]:
    from trustops.data.validation import run_suite

    label = config["label_column"]
    frame = frame.assign(**{SPLIT_COLUMN: "batch"})
    if label is None:
        frame[LABEL_STAND_IN] = 0
    classes = fitted["classes"] if label is not None else [0]
    report = run_suite(
        frame, feature_ranges=dict(zip(fitted["feature_columns"], zip(fitted["low"], fitted["high"]))),
        label_column=label or LABEL_STAND_IN, split_column=SPLIT_COLUMN, classes=classes,
        expected_mix=[1.0 / len(classes)] * len(classes), min_rows=config["min_rows"], max_class_kl=config["max_class_kl"],
    )
    failed = [f for f in report.failed if f.column != LABEL_STAND_IN]
    return failed, report.evaluated - (LABEL_EXPECTATIONS if label is None else 0)
