"""Does a batch of inputs still meet the data's Great Expectations suite?

Wraps :func:`trustops.data.validation.validate_frame` (Great Expectations 1.x): ``fit`` learns
the value range and the classes from a reference table, ``check`` runs the suite on a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from monitors import _inputs
from monitors._state import ConfigAndFittedState
from monitors.base import Monitor, MonitorResult
from monitors.errors import MonitorConfigError, MonitorDependencyError, MonitorInputError

SPLIT_COLUMN = "__trustops_split__"
LABEL_STAND_IN = "__trustops_label__"
LABEL_EXPECTATIONS = 3  # not-null, in-set and class-mix KL on the label column


def _name(failure: Any) -> str:
    return f"{failure.expectation}[{failure.column}]" if failure.column else failure.expectation


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


class InputExpectationsMonitor(ConfigAndFittedState, Monitor):
    """Share of failed Great Expectations on a batch table.

    The suite (see :mod:`trustops.data.validation`) checks the column set, numeric dtypes, no
    missing values, every feature within the reference's range (one range over all features,
    widened by ``range_margin`` times its width), at least ``min_rows`` rows and, with a
    ``label_column``, labels among the reference classes and a class mix with KL divergence
    from the uniform mix over those classes below ``max_class_kl`` (the suite's rule for known
    classes; raise ``max_class_kl`` for an imbalanced reference).

    ``score`` is the share of failed expectations and ``threshold`` is 0: any failure alarms,
    and ``alarm == (score > threshold)``.  Without a label column the suite's label checks run
    on a constant stand-in column and are left out of the counts.

    Parameters
    ----------
    label_column
        Name of the label column, or ``None`` for unlabelled tables.
    feature_columns
        The feature columns; ``None`` takes every reference column except the label.
    range_margin
        Widening of the learned value range, as a share of its width (``>= 0``).
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
    >>> ok, bad = monitor.check(table(20, scale=0.9)), monitor.check(table(20, scale=2.0))
    >>> ok.alarm, ok.score
    (False, 0.0)
    >>> bad.alarm, bad.details["failed_expectations"]
    (True, 'expect_column_values_to_be_between[a], expect_column_values_to_be_between[b]')
    """

    name: ClassVar[str] = "input_expectations"

    def __init__(
        self,
        *,
        label_column: str | None = None,
        feature_columns: Sequence[str] | None = None,
        range_margin: float = 0.0,
        min_rows: int = 1,
        max_class_kl: float = 0.05,
    ) -> None:
        self._configure(
            label_column=label_column,
            feature_columns=feature_columns,
            range_margin=range_margin,
            min_rows=min_rows,
            max_class_kl=max_class_kl,
        )
        self._fitted: dict[str, Any] | None = None

    def _configure(self, **config: Any) -> None:
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
        config["range_margin"] = _inputs.real(config["range_margin"], "range_margin", low=0.0)
        config["min_rows"] = _inputs.integer(config["min_rows"], "min_rows", minimum=1)
        config["max_class_kl"] = _inputs.real(config["max_class_kl"], "max_class_kl", low=0.0)
        self._config = {**config, "feature_columns": features}

    @property
    def config(self) -> dict[str, Any]:
        return dict(self._config)

    def _frame(self, data: Any, name: str) -> pd.DataFrame:
        if not isinstance(data, pd.DataFrame):
            raise MonitorInputError(f"`{name}` must be a pandas DataFrame. Got: {type(data).__name__}")
        if data.empty:
            raise MonitorInputError(f"`{name}` is empty. Got: shape {data.shape}")
        label = self._config["label_column"]
        if label is not None and label not in data.columns:
            raise MonitorInputError(f"`{name}` has no label column {label!r}. Got columns: {list(data.columns)}")
        if SPLIT_COLUMN in data.columns or LABEL_STAND_IN in data.columns:
            raise MonitorInputError(
                f"`{name}` must not use the reserved column names {SPLIT_COLUMN!r}, {LABEL_STAND_IN!r}."
            )
        return data

    def fit(self, reference: pd.DataFrame) -> Self:
        """Learn the feature columns, value range and classes from a reference ``DataFrame``."""
        from trustops.data.validation import learned_value_range

        frame = self._frame(reference, "reference")
        label = self._config["label_column"]
        features = self._config["feature_columns"] or [c for c in frame.columns if c != label]
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
        low, high = learned_value_range(frame, features, self._config["range_margin"])
        classes = None
        if label is not None:
            if frame[label].isna().any():
                raise MonitorInputError(f"`reference` label column {label!r} has missing values.")
            classes = sorted(_plain(c) for c in frame[label].unique())
        self._fitted = {"feature_columns": [str(c) for c in features], "value_range": [low, high], "classes": classes}
        return self

    def check(self, batch: pd.DataFrame) -> MonitorResult:
        """Run the suite on a batch ``DataFrame`` with the reference's columns."""
        from trustops.data.validation import ValidationRules, validate_frame

        _inputs.require_fitted(self._fitted is not None, self)
        frame = self._frame(batch, "batch").assign(**{SPLIT_COLUMN: "batch"})
        label = self._config["label_column"]
        if label is None:
            frame[LABEL_STAND_IN] = 0
        rules = ValidationRules(
            value_range=tuple(self._fitted["value_range"]),
            classes=self._fitted["classes"] if label is not None else [0],
            min_rows=self._config["min_rows"],
            max_class_kl=self._config["max_class_kl"],
        )
        try:
            report = validate_frame(
                frame,
                feature_columns=self._fitted["feature_columns"],
                label_column=label or LABEL_STAND_IN,
                split_column=SPLIT_COLUMN,
                rules=rules,
            )
        except ImportError as error:
            raise MonitorDependencyError(
                f"InputExpectationsMonitor needs Great Expectations 1.x: pip install 'great_expectations>=1' ({error})"
            ) from None
        failed = [f for f in report.failed if f.column != LABEL_STAND_IN]
        evaluated = report.evaluated - (LABEL_EXPECTATIONS if label is None else 0)
        score = len(failed) / evaluated
        details = {
            "n_failed": len(failed),
            "n_evaluated": evaluated,
            "failed_expectations": ", ".join(_name(f) for f in failed),
            "summary": "; ".join(f.describe() for f in failed),
        }
        return MonitorResult(alarm=bool(score > 0.0), score=score, threshold=0.0, details=details)

    @classmethod
    def _unit_test_params(cls) -> list[dict[str, Any]]:
        return [{}, {"label_column": "label", "max_class_kl": 1.0}]

    @classmethod
    def _unit_test_data(cls, generator: np.random.Generator) -> tuple[Any, Any]:
        def table(n: int, shift: float) -> pd.DataFrame:
            frame = pd.DataFrame(generator.normal(size=(n, 2)) + shift, columns=["a", "b"])
            return frame.assign(label=generator.integers(0, 2, size=n))

        return table(40, 0.0), table(10, 0.5)
