"""Column-wise data drift of a table, by Evidently's ``DataDriftPreset``."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from monitors import _inputs
from monitors.base import Monitor, MonitorResult
from monitors.errors import MonitorDependencyError, MonitorInputError

STATE_VERSION = 1
INSTALL_HINT = "EvidentlyDriftMonitor needs Evidently >= 0.7: pip install 'evidently>=0.7'"


def _evidently() -> Any:
    try:
        import evidently
        from evidently.presets import DataDriftPreset
    except ImportError as error:
        raise MonitorDependencyError(f"{INSTALL_HINT} ({error})") from None
    return evidently, DataDriftPreset


class EvidentlyDriftMonitor(Monitor):
    """Share of drifted columns between a batch table and the reference table (Evidently).

    ``check`` runs Evidently's ``DataDriftPreset``: a per-column test chosen by Evidently
    (Kolmogorov-Smirnov for numeric columns with many values, chi-square or Z-test for few
    values, Wasserstein distance for large samples, ...) and its dataset-drift decision,
    ``share of drifted columns >= drift_share``.

    ``score`` is the share of drifted columns and ``threshold`` is the largest float below
    ``drift_share``, so ``alarm == (score > threshold)`` is exactly Evidently's decision.
    Columns are numeric or categorical (non-numeric dtypes); missing values are refused.
    A column that is constant in the reference is tested like any other.

    Parameters
    ----------
    drift_share
        Share of drifted columns at which the dataset drifts, ``0 < drift_share <= 1``.
    method
        Evidently stat test for every column (e.g. ``"ks"``, ``"psi"``, ``"wasserstein"``);
        ``None`` lets Evidently choose per column.
    column_threshold
        Per-column threshold of ``method`` (a p-value level or a distance); ``None`` uses its default.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> g = np.random.default_rng(1)
    >>> columns = ["a", "b", "c", "d"]
    >>> monitor = EvidentlyDriftMonitor().fit(pd.DataFrame(g.normal(size=(300, 4)), columns=columns))
    >>> same = monitor.check(pd.DataFrame(g.normal(size=(200, 4)), columns=columns))
    >>> moved = monitor.check(pd.DataFrame(g.normal(size=(200, 4)) + [1, 1, 1, 0], columns=columns))
    >>> same.alarm, moved.alarm, moved.details["n_drifted_columns"], moved.score
    (False, True, 3, 0.75)
    >>> "drift" in monitor.report_html().lower()
    True
    """

    name: ClassVar[str] = "evidently_drift"

    def __init__(
        self, *, drift_share: float = 0.5, method: str | None = None, column_threshold: float | None = None
    ) -> None:
        self._configure(drift_share=drift_share, method=method, column_threshold=column_threshold)
        self._reference: pd.DataFrame | None = None
        self._last_run: Any = None

    def _configure(self, **config: Any) -> None:
        drift_share = _inputs.real(
            config["drift_share"], "drift_share", low=0.0, high=1.0, condition="0 < drift_share <= 1"
        )
        if drift_share == 0:
            raise _inputs.MonitorConfigError(
                f"`drift_share` must satisfy 0 < drift_share <= 1. Got: {config['drift_share']!r}"
            )
        if config["method"] is not None and (not isinstance(config["method"], str) or not config["method"]):
            raise _inputs.MonitorConfigError(
                f"`method` must be the name of an Evidently stat test or None. Got: {config['method']!r}"
            )
        if config["column_threshold"] is not None:
            config["column_threshold"] = _inputs.real(config["column_threshold"], "column_threshold", low=0.0)
        self._config = {**config, "drift_share": drift_share}

    @property
    def config(self) -> dict[str, Any]:
        return dict(self._config)

    @property
    def columns(self) -> tuple[str, ...]:
        return () if self._reference is None else tuple(self._reference.columns)

    def _table(self, data: Any, name: str) -> pd.DataFrame:
        """``data`` as a DataFrame with the reference's columns (matched by name; arrays by position)."""
        fitted = self._reference is not None
        if isinstance(data, pd.DataFrame):
            frame = data
            if fitted:
                missing = [c for c in self.columns if c not in frame.columns]
                extra = [c for c in frame.columns if c not in self.columns]
                if missing or extra:
                    raise MonitorInputError(
                        f"`{name}` must have the reference's columns. Missing: {missing}; unexpected: {extra}"
                    )
                frame = frame[list(self.columns)]
                numeric = self._reference.select_dtypes("number").columns
                wrong = [c for c in numeric if not pd.api.types.is_numeric_dtype(frame[c])]
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
        missing = frame.isna().any()
        if missing.any():
            raise MonitorInputError(
                f"`{name}` must not have missing values. Got them in columns: {list(missing[missing].index)}"
            )
        numeric = frame.select_dtypes("number")
        if not np.isfinite(numeric.to_numpy(dtype=float)).all():
            bad = [c for c in numeric.columns if not np.isfinite(numeric[c].to_numpy(dtype=float)).all()]
            raise MonitorInputError(f"`{name}` must hold finite numbers. Got infinite values in columns: {bad}")
        return frame.reset_index(drop=True)

    def fit(self, reference: Any) -> Self:
        """Keep the reference table: a ``pandas.DataFrame`` or a shape-(N, D) array (columns ``x0 ... x{D-1}``)."""
        self._reference, self._last_run = None, None
        self._reference = self._table(reference, "reference")
        return self

    def _data_definition(self, evidently: Any) -> Any:
        numeric = self._reference.select_dtypes("number").columns
        return evidently.DataDefinition(
            numerical_columns=[c for c in self._reference.columns if c in numeric],
            categorical_columns=[c for c in self._reference.columns if c not in numeric],
        )

    def check(self, batch: Any) -> MonitorResult:
        """Run the drift preset on ``batch`` (same columns as the reference); keeps the run for :meth:`report_html`."""
        _inputs.require_fitted(self._reference is not None, self)
        frame = self._table(batch, "batch")
        evidently, DataDriftPreset = _evidently()
        definition = self._data_definition(evidently)
        preset = DataDriftPreset(
            drift_share=self._config["drift_share"],
            method=self._config["method"],
            threshold=self._config["column_threshold"],
        )
        # Evidently's correlation widgets divide by a zero spread on constant columns; that warning is noise here.
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            run = evidently.Report([preset]).run(
                evidently.Dataset.from_pandas(frame, data_definition=definition),
                evidently.Dataset.from_pandas(self._reference, data_definition=definition),
            )
        self._last_run = run
        count = share = None
        per_column = {}
        for metric in run.dict()["metrics"]:
            config = metric["config"]
            if config["type"].endswith("DriftedColumnsCount"):
                count, share = int(metric["value"]["count"]), float(metric["value"]["share"])
            elif config["type"].endswith("ValueDrift"):
                per_column[config["column"]] = (config["method"], float(metric["value"]), config.get("threshold"))
        drifted = [c for c, (method, value, limit) in per_column.items() if _drifted(method, value, limit)]
        drift_share = self._config["drift_share"]
        threshold = math.nextafter(drift_share, -math.inf)
        details = {
            "n_drifted_columns": count,
            "n_columns": len(self.columns),
            "dataset_drift": share >= drift_share,
            "drifted_columns": ", ".join(drifted),
            "drift_share": drift_share,
        }
        return MonitorResult(alarm=bool(share > threshold), score=share, threshold=threshold, details=details)

    def report_html(self, batch: Any = None) -> str:
        """Evidently's HTML drift report of ``batch`` (checked first) or, by default, of the last checked batch."""
        if batch is not None:
            self.check(batch)
        if self._last_run is None:
            raise MonitorInputError("No batch has been checked yet: call check(batch) or pass report_html(batch).")
        return self._last_run.get_html_str(as_iframe=False)

    def save_html(self, path: str | Path, batch: Any = None) -> Path:
        """Write :meth:`report_html` to ``path``; returns the path."""
        path = Path(path)
        path.write_text(self.report_html(batch), encoding="utf-8")
        return path

    def state_dict(self) -> dict[str, Any]:
        """Options and the reference table (column lists of plain values), as JSON-able Python."""
        reference = None
        if self._reference is not None:
            reference = {
                "columns": list(self._reference.columns),
                "dtypes": [str(t) for t in self._reference.dtypes],
                "data": {c: self._reference[c].tolist() for c in self._reference.columns},
            }
        return {"version": STATE_VERSION, "config": dict(self._config), "reference": reference}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("version") != STATE_VERSION or not {"config", "reference"} <= set(state):
            raise MonitorInputError(
                f"Not an {type(self).__name__} state (version {STATE_VERSION}). Got keys: {sorted(state)}"
            )
        self._configure(**state["config"])
        self._reference, self._last_run = None, None
        reference = state["reference"]
        if reference is not None:
            frame = pd.DataFrame({c: reference["data"][c] for c in reference["columns"]}, columns=reference["columns"])
            self._reference = frame.astype(dict(zip(reference["columns"], reference["dtypes"])))

    @classmethod
    def _unit_test_params(cls) -> list[dict[str, Any]]:
        return [{}, {"drift_share": 0.25, "method": "ks"}]

    @classmethod
    def _unit_test_data(cls, generator: np.random.Generator) -> tuple[Any, Any]:
        return generator.normal(size=(60, 4)), generator.normal(size=(40, 4)) + [0.8, 0, 0, 0]


def _drifted(method: str, value: float, limit: float | None) -> bool:
    """Evidently's per-column rule: a p-value below its level, or a distance at or above it."""
    if limit is None:
        return False
    return value < limit if "p_value" in method else value >= limit
