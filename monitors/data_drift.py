"""Column-wise data drift of a table: Evidently's ``DataDriftPreset`` decision, vectorised, and a permutation p-value."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from monitors import _inputs, drift_tests
from monitors.base import Monitor, MonitorResult
from monitors.errors import MonitorDependencyError, MonitorInputError
from monitors.sequential import draws_for_level, log_score, sequential_p_value

INSTALL_HINT = "EvidentlyDriftMonitor needs Evidently >= 0.7: pip install 'evidently>=0.7'"

#: Widest table whose report draws every column.  Evidently draws each column's distributions with
#: Plotly (about 0.12 s of CPU and 70 kB of HTML a column: 784 pixel columns took 119 s and 55 MB a
#: report, bench/bench_drift_report.py), so a wider table's report counts drift over every column
#: and draws the most drifted ones.
REPORT_MAX_COLUMNS = 64


def _evidently() -> Any:
    try:
        import evidently
        from evidently.presets import DataDriftPreset
    except ImportError as error:
        raise MonitorDependencyError(f"{INSTALL_HINT} ({error})") from None
    return evidently, DataDriftPreset


class EvidentlyDriftMonitor(Monitor):
    """Column-wise drift of a batch table from the reference table: Evidently's decision and a calibrated p-value.

    Each column gets the test Evidently 0.7's ``DataDriftPreset`` would choose (Kolmogorov-Smirnov
    for numeric columns with more than five distinct pooled values, chi-square for three to five,
    Z-test for at most two, likewise chi-square or Z-test for categorical columns; with more than
    1,000 reference rows normed Wasserstein distance or Jensen-Shannon distance), with Evidently's
    default thresholds, computed vectorised (:mod:`monitors.drift_tests`) without building an
    Evidently Report.  Evidently's dataset-drift decision, ``share of drifted columns >=
    drift_share``, is reported in ``details``.

    The alarm is a permutation test of the pooled reference and batch rows, with the statistic
    ``max_j -log p_j`` over columns (Westfall-Young min-p: one strongly drifted column counts as
    much as many mildly drifted ones; ``p_j`` is an asymptotic KS or chi-square homogeneity
    p-value, see :class:`monitors.drift_tests.MaxNegLogP`).  Its p-value is Besag and Clifford's
    sequential Monte Carlo p-value (:mod:`monitors.sequential`): valid, ``P(p <= u) <= u`` for every
    ``u`` when the batch and reference rows are exchangeable, and cheap on clean batches, which
    stop after a few dozen permutations.  ``alarm`` is ``p_value <= alpha``, ``score`` is
    ``-log10 p_value`` and ``threshold`` is ``-log10 alpha``, so ``alarm == (score > threshold)``.

    Columns are numeric or categorical (non-numeric dtypes); missing values are refused.
    A column that is constant in the pooled rows is tested like any other by Evidently's rules
    and left out of the permutation statistic.

    Parameters
    ----------
    drift_share
        Share of drifted columns at which Evidently calls the dataset drifted, ``0 < drift_share <= 1``.
    method
        Evidently stat test for every column, one of ``"ks"``, ``"chisquare"``, ``"z"``,
        ``"wasserstein"``, ``"jensenshannon"``; ``None`` chooses per column as Evidently does.
        Only Evidently's decision uses it.
    column_threshold
        Per-column threshold of the test (a p-value level or a distance); ``None`` uses Evidently's default.
    alpha
        Page level of the permutation p-value, ``0 < alpha < 1``.
    max_draws
        Most permutations per check, at least ``draws_for_level(alpha)`` (so that ``p_value`` can reach
        ``alpha``); ``None`` takes that least value.  The smallest p-value is ``1 / (max_draws + 1)``.
    seed
        Seed of the generator of permutations.  It is created at ``fit`` and advances with each
        check; its state is part of :meth:`state_dict`, so a restored monitor draws the same permutations.

    Notes
    -----
    ``details`` of a check: ``p_value`` (the permutation p-value), ``statistic`` (observed
    ``max_j -log p_j``), ``n_draws`` (permutations drawn), ``most_drifted_column`` (the column
    attaining the statistic; ``""`` when every column is constant), and Evidently's decision:
    ``n_drifted_columns``, ``n_columns``, ``share_drifted_columns``, ``dataset_drift``,
    ``drifted_columns`` (comma-separated, in the reference's order) and ``drift_share`` (the option).
    :meth:`report_html` builds a real Evidently Report (seconds): call it once per pass, not per batch.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> g = np.random.default_rng(1)
    >>> columns = ["a", "b", "c", "d"]
    >>> monitor = EvidentlyDriftMonitor(alpha=0.001).fit(pd.DataFrame(g.normal(size=(300, 4)), columns=columns))
    >>> same = monitor.check(pd.DataFrame(g.normal(size=(200, 4)), columns=columns))
    >>> moved = monitor.check(pd.DataFrame(g.normal(size=(200, 4)) + [1, 1, 1, 0], columns=columns))
    >>> same.alarm, same.details["dataset_drift"], same.details["p_value"] > 0.05
    (False, False, True)
    >>> moved.alarm, moved.details["p_value"], moved.details["n_drifted_columns"], moved.details["drifted_columns"]
    (True, 0.001, 3, 'a, b, c')
    >>> "drift" in monitor.report_html().lower()
    True
    """

    name: ClassVar[str] = "evidently_drift"

    def __init__(
        self,
        *,
        drift_share: float = 0.5,
        method: str | None = None,
        column_threshold: float | None = None,
        alpha: float = 0.05,
        max_draws: int | None = None,
        seed: int = 0,
    ) -> None:
        self._configure(
            drift_share=drift_share,
            method=method,
            column_threshold=column_threshold,
            alpha=alpha,
            max_draws=max_draws,
            seed=seed,
        )
        self._reference: pd.DataFrame | None = None
        self._generator: np.random.Generator | None = None
        self._last_batch: pd.DataFrame | None = None
        self._last_run: Any = None

    def _validate_options(self, config: dict[str, Any]) -> dict[str, Any]:
        drift_share = _inputs.real(
            config["drift_share"], "drift_share", low=0.0, high=1.0, condition="0 < drift_share <= 1"
        )
        if drift_share == 0:
            raise _inputs.MonitorConfigError(
                f"`drift_share` must satisfy 0 < drift_share <= 1. Got: {config['drift_share']!r}"
            )
        if config["method"] is not None and config["method"] not in drift_tests.METHODS:
            raise _inputs.MonitorConfigError(
                f"`method` must be the name of an Evidently stat test computed here, one of "
                f"{', '.join(map(repr, drift_tests.METHODS))}, or None. Got: {config['method']!r}"
            )
        if config["column_threshold"] is not None:
            config["column_threshold"] = _inputs.real(config["column_threshold"], "column_threshold", low=0.0)
        alpha = _inputs.probability(config["alpha"], "alpha")
        least = draws_for_level(alpha)
        max_draws = least if config["max_draws"] is None else config["max_draws"]
        if isinstance(max_draws, bool) or not isinstance(max_draws, numbers.Integral) or max_draws < least:
            raise _inputs.MonitorConfigError(
                f"`max_draws` must be an integer >= draws_for_level(alpha) = {least} (alpha = {alpha}), "
                f"so that the p-value can reach alpha, or None. Got: {config['max_draws']!r}"
            )
        seed = _inputs.integer(config["seed"], "seed", minimum=0)
        self._max_draws = int(max_draws)
        return {
            **config,
            "drift_share": drift_share,
            "alpha": alpha,
            "max_draws": None if config["max_draws"] is None else int(max_draws),
            "seed": seed,
        }

    @property
    def columns(self) -> tuple[str, ...]:
        return () if self._reference is None else tuple(self._reference.columns)

    def _table(self, data: Any, name: str) -> pd.DataFrame:
        """``data`` as a DataFrame with the reference's columns (matched by name; arrays by position)."""
        fitted = self._reference is not None
        if isinstance(data, pd.DataFrame):
            frame = data
            if fitted:
                expected, given = self.columns, list(frame.columns)
                given_set, expected_set = set(given), set(expected)
                missing = [c for c in expected if c not in given_set]
                extra = [c for c in given if c not in expected_set]
                if missing or extra:
                    raise MonitorInputError(
                        f"`{name}` must have the reference's columns. Missing: {missing}; unexpected: {extra}"
                    )
                if given != list(expected):
                    frame = frame[list(expected)]
                wrong = [
                    c for c, t in zip(frame.columns, frame.dtypes) if c in self._numeric_set and not is_numeric_dtype(t)
                ]
                if wrong:
                    raise MonitorInputError(f"`{name}` columns {wrong} must be numeric, as in the reference.")
        else:
            array = _inputs.finite_matrix(data, name, width=len(self.columns) if fitted else None)
            columns = list(self.columns) if fitted else [f"x{i}" for i in range(array.shape[1])]
            frame = pd.DataFrame(array, columns=columns)
        if frame.shape[0] == 0 or frame.shape[1] == 0:
            raise MonitorInputError(f"`{name}` needs at least one row and one column. Got: shape {frame.shape}")
        if not all(isinstance(c, str) for c in frame.columns):
            raise MonitorInputError(f"`{name}` column names must be strings. Got: {list(frame.columns)}")
        numeric = [is_numeric_dtype(t) for t in frame.dtypes]
        if all(numeric):  # one conversion finds NaN and infinities alike
            bad = ~np.isfinite(frame.to_numpy(dtype=np.float64))
            if not bad.any():
                return frame.reset_index(drop=True)
        missing = frame.isna().any()
        if missing.any():
            raise MonitorInputError(
                f"`{name}` must not have missing values. Got them in columns: {list(missing[missing].index)}"
            )
        values = frame.loc[:, numeric].to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            bad = [c for c, ok in zip(frame.columns[numeric], np.isfinite(values).all(axis=0)) if not ok]
            raise MonitorInputError(f"`{name}` must hold finite numbers. Got infinite values in columns: {bad}")
        return frame.reset_index(drop=True)

    def fit(self, reference: Any) -> Self:
        """Keep the reference table: a ``pandas.DataFrame`` or a shape-(N, D) array (columns ``x0 ... x{D-1}``)."""
        self._reference = self._last_batch = self._last_run = None
        self._set_reference(self._table(reference, "reference"))
        self._generator = np.random.default_rng(self.seed)
        return self

    def _set_reference(self, frame: pd.DataFrame) -> None:
        numeric = set(frame.select_dtypes("number").columns)
        self._numeric = [c for c in frame.columns if c in numeric]
        self._numeric_set = set(self._numeric)
        self._categorical = [c for c in frame.columns if c not in numeric]
        method = self.method
        misfits = [
            c
            for c in frame.columns
            if method is not None
            and method not in (drift_tests.NUMERICAL_METHODS if c in numeric else drift_tests.CATEGORICAL_METHODS)
        ]
        if misfits:
            raise MonitorInputError(
                f"`method` {method!r} does not apply to the {'numeric' if misfits[0] in numeric else 'categorical'} "
                f"columns {misfits} (numeric: {drift_tests.NUMERICAL_METHODS}; categorical: "
                f"{drift_tests.CATEGORICAL_METHODS})."
            )
        self._reference = frame
        self._reference_values = frame[self._numeric].to_numpy(dtype=np.float64).T
        self._reference_categorical = frame[self._categorical]

    def _pooled(self, frame: pd.DataFrame) -> drift_tests.PooledColumns:
        return drift_tests.PooledColumns.from_arrays(
            self._reference_values, self._reference_categorical, frame, self._numeric, self._categorical
        )

    def check(self, batch: Any) -> MonitorResult:
        """Test ``batch`` (same columns as the reference) against the reference; see the class notes."""
        _inputs.require_fitted(self._reference is not None, self)
        frame = self._table(batch, "batch")
        self._last_batch, self._last_run = frame, None
        pooled = self._pooled(frame)
        decisions = drift_tests.evidently_decisions(
            pooled, method=self.method, threshold=self.column_threshold
        )
        statistic = drift_tests.MaxNegLogP(pooled)
        per_column = statistic.per_column(pooled.observed_labels()[None])[0]
        observed = float(per_column.max()) if per_column.size else 0.0
        generator = self._generator
        sequential = sequential_p_value(
            observed, lambda n: statistic(pooled.permuted_labels(generator, n)), max_draws=self._max_draws
        )
        alarm, score, threshold = log_score(sequential.p_value, self.alpha)
        drifted = {d.column for d in decisions if d.drifted}
        drift_share = self.drift_share
        share = len(drifted) / len(decisions)
        details = {
            "p_value": sequential.p_value,
            "statistic": observed,
            "n_draws": sequential.n_draws,
            "most_drifted_column": pooled.names[statistic.columns[per_column.argmax()]] if per_column.size else "",
            "n_drifted_columns": len(drifted),
            "n_columns": len(decisions),
            "share_drifted_columns": share,
            "dataset_drift": share >= drift_share,
            "drifted_columns": ", ".join(c for c in self._reference.columns if c in drifted),
            "drift_share": drift_share,
        }
        return MonitorResult(alarm=alarm, score=score, threshold=threshold, details=details)

    def _evidently_run(self, frame: pd.DataFrame, *, drawn: Sequence[str] | None = None, **labels: Any) -> Any:
        """Evidently's own Report of ``frame`` against the reference (slow: seconds for a wide table).

        ``drawn``: ``None`` runs the ``DataDriftPreset`` (every column drawn); else the report counts
        drifted columns over every column, as the preset does (``DriftedColumnsCount``, what the
        workspace's dashboard reads), and draws the ``ValueDrift`` of the ``drawn`` columns only.
        ``labels``: ``timestamp``, ``tags``, ``metadata`` or ``name`` of the run, as ``Report.run`` takes them.
        """
        evidently, DataDriftPreset = _evidently()
        definition = evidently.DataDefinition(numerical_columns=self._numeric, categorical_columns=self._categorical)
        if drawn is None:
            metrics = [DataDriftPreset(drift_share=self.drift_share, method=self.method, threshold=self.column_threshold)]
        else:
            from evidently.metrics import DriftedColumnsCount, ValueDrift

            metrics = [
                DriftedColumnsCount(drift_share=self.drift_share, method=self.method, threshold=self.column_threshold),
                *(ValueDrift(column=column, method=self.method, threshold=self.column_threshold) for column in drawn),
            ]
        # Evidently's correlation widgets divide by a zero spread on constant columns; that warning is noise here.
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            return evidently.Report(metrics).run(
                evidently.Dataset.from_pandas(frame, data_definition=definition),
                evidently.Dataset.from_pandas(self._reference, data_definition=definition),
                **labels,
            )

    def most_drifted_columns(self, batch: Any, limit: int) -> list[str]:
        """The ``limit`` columns of ``batch`` that drifted most from the reference, most drifted first.

        Columns Evidently's test calls drifted come first, then by the per-column evidence the
        check charts (``-log p``); ties keep the reference's column order.
        """
        _inputs.require_fitted(self._reference is not None, self, "most_drifted_columns")
        limit = _inputs.integer(limit, "limit", minimum=1)
        pooled = self._pooled(self._table(batch, "batch"))
        drifted = {d.column for d in drift_tests.evidently_decisions(pooled, method=self.method, threshold=self.column_threshold)
                   if d.drifted}
        statistic = drift_tests.MaxNegLogP(pooled)  # constant columns carry no evidence: they rank last
        evidence = dict(zip((pooled.names[j] for j in statistic.columns), statistic.per_column(pooled.observed_labels()[None])[0].tolist()))
        order = {column: position for position, column in enumerate(self.columns)}
        ranked = sorted(self.columns, key=lambda c: (c not in drifted, -evidence.get(c, 0.0), order[c]))
        return ranked[:limit]

    def _evidently_decision(self, batch: Any) -> dict[str, Any]:
        """Evidently's own drifted columns and dataset-drift decision for ``batch``: the reference for the fast path."""
        _inputs.require_fitted(self._reference is not None, self)
        run = self._evidently_run(self._table(batch, "batch"))
        count = share = None
        per_column = {}
        for metric in run.dict()["metrics"]:
            config = metric["config"]
            if config["type"].endswith("DriftedColumnsCount"):
                count, share = int(metric["value"]["count"]), float(metric["value"]["share"])
            elif config["type"].endswith("ValueDrift"):
                per_column[config["column"]] = (config["method"], float(metric["value"]), config.get("threshold"))
        drifted = [c for c, (method, value, limit) in per_column.items() if _drifted(method, value, limit)]
        return {
            "n_drifted_columns": count,
            "share_drifted_columns": share,
            "dataset_drift": share >= self.drift_share,
            "drifted_columns": drifted,
            "methods": {c: method for c, (method, _, _) in per_column.items()},
        }

    def report_run(
        self,
        batch: Any,
        *,
        timestamp: datetime | None = None,
        tags: list[str] | None = None,
        metadata: Mapping[str, str] | None = None,
        name: str | None = None,
        max_columns: int | None = REPORT_MAX_COLUMNS,
    ) -> Any:
        """Evidently's Report of ``batch`` against the reference, run once: an ``evidently.Snapshot``.

        The run is kept, so a following :meth:`report_html` draws it without running Evidently
        again.  ``timestamp`` (default: now), ``tags``, ``metadata`` and ``name`` label the run, as
        a workspace shows it.  Slow (seconds for a wide table): call it once per pass, not per batch.

        A table of at most ``max_columns`` columns (``None``: any width) gets Evidently's
        ``DataDriftPreset``.  A wider one gets the preset's count of drifted columns over every
        column and the drift of its ``max_columns`` :meth:`most_drifted_columns`; the run's metadata
        ``columns_drawn`` says so ("64 most drifted of 784").
        """
        _inputs.require_fitted(self._reference is not None, self, "report_run")
        if max_columns is not None:
            max_columns = _inputs.integer(max_columns, "max_columns", minimum=1)
        self._last_batch = self._table(batch, "batch")
        metadata = dict(metadata or {})
        drawn = None
        if max_columns is not None and len(self.columns) > max_columns:
            drawn = self.most_drifted_columns(self._last_batch, max_columns)
            metadata["columns_drawn"] = f"{len(drawn)} most drifted of {len(self.columns)}"
        self._last_run = self._evidently_run(
            self._last_batch, drawn=drawn, timestamp=timestamp, tags=list(tags or ()), metadata=metadata, name=name
        )
        return self._last_run

    def report_html(self, batch: Any = None) -> str:
        """Evidently's HTML drift report of ``batch`` or, by default, of the last checked or reported batch.

        Draws the report :meth:`report_run` ran, else runs one (seconds; a table wider than
        ``REPORT_MAX_COLUMNS`` draws its most drifted columns): call it once per pass, not per batch.
        """
        _inputs.require_fitted(self._reference is not None, self, "report_html")
        if batch is not None:
            self._last_batch, self._last_run = self._table(batch, "batch"), None
        if self._last_batch is None:
            raise MonitorInputError("No batch has been checked yet: call check(batch) or pass report_html(batch).")
        if self._last_run is None:
            self.report_run(self._last_batch)
        return self._last_run.get_html_str(as_iframe=False)

    def save_html(self, path: str | Path, batch: Any = None) -> Path:
        """Write :meth:`report_html` to ``path``; returns the path."""
        path = Path(path)
        path.write_text(self.report_html(batch), encoding="utf-8")
        return path

    _legacy_state_keys = {1: frozenset({"config", "reference"}), 2: frozenset({"config", "reference", "generator"})}

    def _inner_state(self) -> dict[str, Any]:
        """The reference table (column lists of plain values) and the generator state, as JSON-able Python."""
        reference = None
        if self._reference is not None:
            reference = {
                "columns": list(self._reference.columns),
                "dtypes": [str(t) for t in self._reference.dtypes],
                "data": {c: self._reference[c].tolist() for c in self._reference.columns},
            }
        generator = None if self._generator is None else self._generator.bit_generator.state
        return {"reference": reference, "generator": generator}

    @classmethod
    def _migrate_legacy_config(cls, version: int, config: dict[str, Any]) -> dict[str, Any]:
        """Version 1 came before the p-value: its options take their defaults."""
        return {"alpha": 0.05, "max_draws": None, "seed": 0, **config} if version == 1 else config

    def _load_inner_state(self, state: Mapping[str, Any]) -> None:
        self._reference = self._generator = self._last_batch = self._last_run = None
        reference = state["reference"]
        if reference is not None:
            frame = pd.DataFrame({c: reference["data"][c] for c in reference["columns"]}, columns=reference["columns"])
            self._set_reference(frame.astype(dict(zip(reference["columns"], reference["dtypes"]))))
            self._generator = np.random.default_rng(self.seed)
            if state.get("generator") is not None:
                self._generator.bit_generator.state = dict(state["generator"])

    @classmethod
    def _unit_test_params(cls) -> list[dict[str, Any]]:
        return [{}, {"drift_share": 0.25, "method": "ks", "alpha": 0.01, "seed": 3}, {"alpha": 0.001, "max_draws": 1999}]

    @classmethod
    def _unit_test_data(cls, generator: np.random.Generator) -> tuple[Any, Any]:
        return generator.normal(size=(60, 4)), generator.normal(size=(40, 4)) + [0.8, 0, 0, 0]


def _drifted(method: str, value: float, limit: float | None) -> bool:
    """Evidently's per-column rule: a p-value below its level (K-S: at or below), or a distance at or above it."""
    if limit is None:
        return False
    if "p_value" in method:
        return value <= limit if method.startswith("K-S") else value < limit
    return value >= limit
