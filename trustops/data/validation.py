"""The data's Great Expectations suite, and what its result means for the pipeline.

Great Expectations 1.x is called directly (ZenML's integration pins GE below 1.0).
The suite checks, on every split: the expected columns, numeric dtypes, no missing or
infinite values, value ranges (fixed for known data such as digits, declared per column in
``data.feature_ranges``, else learned per column from the training split: 99% of the rows
within ``range_margin`` times the column's own span of it, and every row within 4 spans, so a
z-scored column and a column in thousands are both judged on their own scale, and a skewed
column's few legitimate outliers pass), labels in the known set, class balance (KL divergence of the label mix
from the expected mix) and a minimum row count.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

NUMERIC_TYPES = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]


#: Learned per-column ranges (tables): every row within this many spans of the training span ...
HARD_SPANS = 4.0
#: ... and this share of the rows within ``range_margin`` spans of it.
TYPICAL_SHARE = 0.99
# Above this many features sharing one declared range (images), the pixels are checked as one block
# through each row's minimum and maximum: three expectations per pixel made Great Expectations take
# 13 minutes on 16,000 Fashion-MNIST rows (2,357 expectations); two per row summary take seconds.
BLOCK_VALIDATION_COLUMNS = 256
PIXEL_BLOCK = "pixels"


@dataclass(frozen=True)
class ValidationRules:
    """The thresholds of the suite; ``None`` ranges and classes are learned from the reference split.

    ``value_range`` is one range for every feature (pixels); ``feature_ranges`` declares some
    columns' own ranges; the rest are learned per column, widened by ``range_margin`` x the span.
    """

    value_range: tuple[float, float] | None = None
    feature_ranges: Mapping[str, Sequence[float]] | None = None
    classes: Sequence[Any] | None = None
    min_rows: int = 100
    max_class_kl: float = 0.05
    range_margin: float = 0.0
    per_column: bool = False  # learn ranges per column (tables), else one for all (pixels)


@dataclass(frozen=True)
class FailedExpectation:
    expectation: str
    column: str | None
    observed: Any
    examples: list[Any]

    def describe(self) -> str:
        where = f" on column {self.column!r}" if self.column else ""
        seen = f"; examples of offending values: {self.examples[:5]}" if self.examples else ""
        observed = f"; observed {self.observed}" if self.observed is not None and not self.examples else ""
        return f"{self.expectation}{where}{observed}{seen}"


@dataclass(frozen=True)
class ValidationReport:
    success: bool
    evaluated: int
    failed: list[FailedExpectation] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self, limit: int = 10) -> str:
        if self.success:
            return f"all {self.evaluated} expectations passed"
        lines = [f"{len(self.failed)} of {self.evaluated} expectations failed:"]
        lines += [f"  - {failure.describe()}" for failure in self.failed[:limit]]
        if len(self.failed) > limit:
            lines.append(f"  ... and {len(self.failed) - limit} more (see validation/result.json in the MLflow run)")
        return "\n".join(lines)


def learned_value_range(frame: pd.DataFrame, feature_columns: Sequence[str], margin: float) -> tuple[float, float]:
    """One range spanning all of ``feature_columns``, widened by ``margin`` x its span."""
    values = frame[list(feature_columns)].to_numpy(dtype="float64")
    finite = values[np.isfinite(values)]
    low, high = float(finite.min()), float(finite.max())
    pad = margin * (high - low)
    return low - pad, high + pad


def learned_column_ranges(frame: pd.DataFrame, feature_columns: Sequence[str], margin: float) -> dict[str, tuple[float, float]]:
    """Each column's training span, widened by ``margin`` x that column's own span."""
    ranges = {}
    for column in feature_columns:
        values = frame[column].to_numpy(dtype="float64")
        finite = values[np.isfinite(values)]
        if not len(finite):
            ranges[column] = (-np.inf, np.inf)
            continue
        low, high = float(finite.min()), float(finite.max())
        pad = margin * (high - low)
        ranges[column] = (low - pad, high + pad)
    return ranges


def validate_frame(
    frame: pd.DataFrame,
    *,
    feature_columns: Sequence[str],
    label_column: str,
    split_column: str,
    rules: ValidationRules,
) -> ValidationReport:
    """Run the suite on ``frame``; the training split is the reference for learned bounds."""
    if rules.value_range and len(feature_columns) > BLOCK_VALIDATION_COLUMNS:
        frame, feature_columns = _pixel_block(frame, feature_columns), [f"{PIXEL_BLOCK}_min", f"{PIXEL_BLOCK}_max"]
    reference = frame[frame[split_column] == "train"]
    if reference.empty:
        reference = frame
    typical: dict[str, tuple[float, float]] = {}
    if rules.value_range:
        ranges = {column: tuple(rules.value_range) for column in feature_columns}
    elif rules.per_column:
        # Two bounds: 99% of a column's rows within its span +- range_margin x span (a few legitimate
        # outliers of a skewed column pass; a unit error or a sentinel on many rows does not), and
        # every row within +- HARD_SPANS spans (one row off by 1000x fails).
        ranges = learned_column_ranges(reference, feature_columns, HARD_SPANS)
        typical = learned_column_ranges(reference, feature_columns, rules.range_margin)
    else:
        low, high = learned_value_range(reference, feature_columns, rules.range_margin)
        ranges = {column: (low, high) for column in feature_columns}
    if not rules.value_range:
        ranges.update({c: (float(b[0]), float(b[1])) for c, b in (rules.feature_ranges or {}).items() if c in ranges})
        typical = {c: bounds for c, bounds in typical.items() if c not in (rules.feature_ranges or {})}
    classes = list(rules.classes) if rules.classes is not None else sorted(reference[label_column].dropna().unique().tolist())
    label_counts = reference[label_column].value_counts()
    expected_mix = [float(label_counts.get(c, 0)) / max(1, len(reference)) for c in classes]
    if rules.classes is not None:
        expected_mix = [1.0 / len(classes)] * len(classes)
    return run_suite(frame, feature_ranges=ranges, label_column=label_column,
                     split_column=split_column, classes=classes, expected_mix=expected_mix, min_rows=rules.min_rows,
                     max_class_kl=rules.max_class_kl, typical_ranges=typical)


def _pixel_block(frame: pd.DataFrame, feature_columns: Sequence[str]) -> pd.DataFrame:
    """``frame`` with its features replaced by each row's minimum and maximum (``pixels_min``, ``pixels_max``).

    The block is in range exactly when both are, and a missing pixel makes both missing (NaN
    propagates through ``min``), so the suite's range and not-null expectations keep their meaning;
    a failure names the block instead of the pixel.  Non-feature columns stay, so an unexpected
    extra column still fails the column-set expectation.
    """
    values = frame[list(feature_columns)].to_numpy(dtype=np.float64)
    summary = pd.DataFrame({f"{PIXEL_BLOCK}_min": values.min(axis=1), f"{PIXEL_BLOCK}_max": values.max(axis=1)}, index=frame.index)
    return pd.concat([summary, frame.drop(columns=list(feature_columns))], axis=1)


def run_suite(
    frame: pd.DataFrame,
    *,
    feature_ranges: Mapping[str, tuple[float, float]],
    label_column: str,
    split_column: str,
    classes: Sequence[Any],
    expected_mix: Sequence[float],
    min_rows: int,
    max_class_kl: float,
    typical_ranges: Mapping[str, tuple[float, float]] | None = None,
    typical_share: float = TYPICAL_SHARE,
) -> ValidationReport:
    """The Great Expectations suite itself: columns, row count, per-feature dtype, no missing value and
    range (and, for ``typical_ranges``, a range that ``typical_share`` of the rows must meet), labels not missing, in ``classes`` and mixed like ``expected_mix`` (KL at most ``max_class_kl``)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.WARNING)
    expectations = gx.expectations
    context = gx.get_context(mode="ephemeral")  # suites must be built inside an active context
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    planned = [
        expectations.ExpectTableColumnsToMatchSet(column_set=[*feature_ranges, label_column, split_column], exact_match=True),
        expectations.ExpectTableRowCountToBeBetween(min_value=min_rows),
    ]
    for column, (low, high) in feature_ranges.items():
        planned += [
            expectations.ExpectColumnValuesToBeInTypeList(column=column, type_list=NUMERIC_TYPES),
            expectations.ExpectColumnValuesToNotBeNull(column=column),
            expectations.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high),
        ]
    planned += [
        expectations.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high, mostly=typical_share)
        for column, (low, high) in (typical_ranges or {}).items()
    ]
    planned += [
        expectations.ExpectColumnValuesToNotBeNull(column=label_column),
        expectations.ExpectColumnValuesToBeInSet(column=label_column, value_set=list(classes)),
        expectations.ExpectColumnKLDivergenceToBeLessThan(
            column=label_column,
            partition_object={"values": list(classes), "weights": list(expected_mix)},
            threshold=max_class_kl,
        ),
    ]
    # Given whole: `add_expectation` compares each new expectation with every one before it (through
    # pydantic's dict()), seconds on a table of a few hundred columns; the constructor does not.
    suite = gx.ExpectationSuite(name="trustops_input", expectations=planned)
    if len(suite.expectations) != len(planned):  # the constructor logs and drops one it cannot take; never check less
        raise RuntimeError(f"Great Expectations took {len(suite.expectations)} of the {len(planned)} expectations of the input suite.")

    batch_definition = (
        context.data_sources.add_pandas("trustops").add_dataframe_asset("input").add_batch_definition_whole_dataframe("all")
    )
    result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(
        context.suites.add(suite)
    )
    failed = [
        FailedExpectation(
            expectation=item.expectation_config.type,
            column=item.expectation_config.kwargs.get("column"),
            observed=_plain(item.result.get("observed_value")),
            examples=[_plain(v) for v in (item.result.get("partial_unexpected_list") or [])[:5]],
        )
        for item in result.results
        if not item.success
    ]
    return ValidationReport(success=bool(result.success), evaluated=len(result.results), failed=failed)


def _plain(value: Any) -> Any:
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)
