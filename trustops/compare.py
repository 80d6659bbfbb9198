"""Runs side by side: the trust metrics and tags every trustops run shares, one row per run.

Each column is one comparable quantity.  Jobs log some of them under their own names (the
training pipeline's ``accuracy`` is the test accuracy, a robustness point's is
``clean_accuracy``, a reproducibility variant's ``accuracy_mean``); :data:`FIELDS` lists,
per quantity, the names tried in order, so old runs and every job line up in the same column.
"""

from __future__ import annotations

import csv
import io
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustops.errors import ConfigError
from trustops.metric_names import CHART_SIGNAL, CLEAN_ACCURACY, OLD_NAMES, TEST_ACCURACY
from trustops.summary import cell_text, format_table


@dataclass(frozen=True)
class Field:
    """One compared quantity: where its value comes from, in order of preference."""

    label: str
    metrics: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    params: tuple[str, ...] = ()


FIELDS: tuple[Field, ...] = (
    Field("experiment"),
    Field("job", tags=("trustops_job",)),
    Field("status"),
    Field("activation", tags=("activation",), params=("model.activation", "activation")),
    Field("dp", tags=("dp",), params=("dp.enabled", "dp")),
    Field("data hash", tags=("data_hash",)),
    Field("model version", tags=("model_version", "registered_model_version")),
    # A training run's test accuracy (older runs also logged it as "accuracy"), a robustness point's
    # accuracy before the attack, a reproducibility variant's mean over its pairs.
    Field("accuracy", metrics=(TEST_ACCURACY, *OLD_NAMES[TEST_ACCURACY], CLEAN_ACCURACY, "accuracy_mean")),
    Field("dp_epsilon", metrics=("dp_epsilon",), tags=("dp_epsilon",)),
    Field("attack success rate", metrics=("attack_success_rate",)),
    Field("detection rate", metrics=("detection_rate",)),
    Field("baseline detection rate", metrics=("baseline_detection_rate",)),
    Field("PD (relative)", metrics=("relative_pd_mean",)),
    Field("PD (total variation)", metrics=("tv_pd_mean",)),
    Field("chart signals"),
)
LABELS = tuple(f.label for f in FIELDS)
# Params that differ between runs of one configuration (a per-run folder, a given run name), and
# `capture.backend`, which runs before each setting was logged once also had (as `capture_backend`
# from the served model's config, which every run has): old and new runs of one config match.
RUN_SPECIFIC_PARAMS = frozenset({"capture.uri", "capture_uri", "capture.backend", "tracking.run_name", "data.resolved_path"})
CHART_SIGNAL_SUFFIX = f".{CHART_SIGNAL}"


@dataclass(frozen=True)
class Comparison:
    """The compared quantities of each run.

    ``rows[i][j]`` is quantity :data:`LABELS` ``[i]`` of run ``j`` (``run_names[j]`` /
    ``run_ids[j]``).  Every output prints one run per row and one quantity per column (runs down,
    quantities across, as ``mlflow.search_runs`` returns them); ``transpose=True`` gives one
    column per run instead.
    """

    run_ids: list[str]
    run_names: list[str]
    rows: list[list[Any]]

    def records(self) -> list[dict[str, Any]]:
        """One mapping per run: ``run``, ``run id`` and every label of :data:`LABELS`."""
        return [
            {"run": name, "run id": run_id, **{label: values[j] for label, values in zip(LABELS, self.rows)}}
            for j, (name, run_id) in enumerate(zip(self.run_names, self.run_ids))
        ]

    def table(self, *, transpose: bool = False, short_ids: bool = False, drop_empty: bool = False) -> tuple[list[str], list[list[Any]]]:
        """``(header, body)``: one run per row, or with ``transpose`` one quantity per row.

        ``drop_empty`` leaves out the quantities no compared run recorded.
        """
        labels = [label for label, values in zip(LABELS, self.rows) if not drop_empty or any(v is not None for v in values)]
        ids = [r[:12] if short_ids else r for r in self.run_ids]
        if transpose:
            by_label = dict(zip(LABELS, self.rows))
            return ["", *self.run_names], [["run id", *ids], *([label, *by_label[label]] for label in labels)]
        records = self.records()
        return ["run", "run id", *labels], [[name, run_id, *(record[label] for label in labels)]
                                             for name, run_id, record in zip(self.run_names, ids, records)]

    def to_text(self, *, width: int | None = None, transpose: bool = False) -> str:
        """The terminal table, its widest columns shortened to fit ``width`` characters.

        By default ``width`` is the terminal's (``COLUMNS`` when set); output that goes to no
        terminal (a pipe, a file) is not shortened, so nothing is lost to ``grep`` or a log.
        """
        if width is None:
            width = shutil.get_terminal_size(fallback=(0, 0)).columns or sys.maxsize
        header, body = self.table(transpose=transpose, short_ids=True, drop_empty=True)
        cells = [[cell_text(v) for v in row] for row in body]
        widths = fit_widths([max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(header)], width)
        # Shortened here, not by rich: rich cuts a cell's end, and run names differ at the end.
        header, *cells = [[shorten(c, w) for c, w in zip(row, widths)] for row in [header, *cells]]
        return format_table(header, cells)

    def to_markdown(self, *, transpose: bool = False) -> str:
        def line(cells: Sequence[Any]) -> str:
            return "| " + " | ".join(cell_text(c).replace("|", "\\|") for c in cells) + " |"

        header, body = self.table(transpose=transpose, short_ids=True)
        return "\n".join([line(header), "|" + "---|" * len(header), *(line(row) for row in body)]) + "\n"

    def to_csv(self, *, transpose: bool = False) -> str:
        header, body = self.table(transpose=transpose)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["field", *header[1:]] if transpose else header)
        for row in body:
            writer.writerow(["" if v is None else v for v in row])
        return out.getvalue()


SEPARATOR = "  "  # the gap format_table leaves between columns
MIN_WIDTH = 8  # a shortened cell keeps its head, an ellipsis and its tail: "train-…0-f5"


def fit_widths(widths: Sequence[int], limit: int, *, min_width: int = MIN_WIDTH) -> list[int]:
    """Column widths whose table fits ``limit`` characters, taking from the widest columns first.

    A column is never shortened below ``min_width`` (nor below its own width); when even that
    does not fit, the table is as narrow as it can be and the terminal wraps it.
    """
    fitted = list(widths)
    excess = sum(fitted) + len(SEPARATOR) * (len(fitted) - 1) - limit
    while excess > 0:
        widest = max(range(len(fitted)), key=fitted.__getitem__)
        if fitted[widest] <= min_width:
            break
        fitted[widest] -= 1
        excess -= 1
    return fitted


def shorten(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters: its head and tail around an ellipsis (run names differ at the end)."""
    if len(text) <= width:
        return text
    if width < 3:
        return text[:width]
    tail = (width - 1) // 2
    return text[: width - 1 - tail] + "…" + text[len(text) - tail :]


def select_runs(
    client,
    run_ids: Sequence[str] = (),
    *,
    experiments: Sequence[str] = (),
    latest_per_config: bool = False,
    max_runs: int = 50,
) -> list:
    """The runs to compare: the given ids, else the newest runs of the experiments (all when none is named)."""
    from mlflow.exceptions import MlflowException

    if max_runs < 1:
        raise ConfigError(f"--max-runs must be >= 1. Got: {max_runs}")
    if run_ids:
        runs = []
        for run_id in run_ids:
            try:
                runs.append(client.get_run(run_id))
            except MlflowException:
                raise ConfigError(f"No MLflow run {run_id!r} in the tracking store {_store(client)}. "
                                  "Give full run ids (`trustops compare` without ids lists recent runs).") from None
    else:
        if experiments:
            found = [client.get_experiment_by_name(name) for name in experiments]
            missing = [name for name, e in zip(experiments, found) if e is None]
            if missing:
                known = ", ".join(sorted(e.name for e in client.search_experiments())) or "none"
                raise ConfigError(f"No experiment named {', '.join(map(repr, missing))} in {_store(client)}. Experiments: {known}.")
        else:
            found = client.search_experiments()
        ids = [e.experiment_id for e in found]
        # Latest per configuration looks further back than --max-runs, then keeps max_runs groups.
        limit = max(max_runs * 20, 1000) if latest_per_config else max_runs
        runs = list(client.search_runs(ids, order_by=["attributes.start_time DESC"], max_results=limit)) if ids else []
    if latest_per_config:
        latest: dict[tuple, Any] = {}
        for run in sorted(runs, key=lambda r: r.info.start_time or 0, reverse=True):
            latest.setdefault(config_key(run), run)
        runs = list(latest.values())
    return runs[:max_runs] if not run_ids else runs


def config_key(run) -> tuple:
    """What makes two runs "the same configuration": experiment, job and every config param.

    A param logged as ``None`` (a setting left at its null default, e.g. ``capture.layers``) counts as
    absent, so a run from before that setting existed matches a newer run of the same configuration."""
    params = tuple(sorted((k, v) for k, v in run.data.params.items() if k not in RUN_SPECIFIC_PARAMS and v != "None"))
    return run.info.experiment_id, run.data.tags.get("trustops_job", ""), params


def compare_runs(client, runs: Sequence) -> Comparison:
    experiments: dict[str, str] = {}
    columns = []
    for run in runs:
        exp_id = run.info.experiment_id
        if exp_id not in experiments:
            experiments[exp_id] = client.get_experiment(exp_id).name
        columns.append(_column(client, run, experiments[exp_id]))
    rows = [[column[i] for column in columns] for i in range(len(FIELDS))]
    return Comparison([r.info.run_id for r in runs], [r.info.run_name or r.info.run_id[:12] for r in runs], rows)


def _column(client, run, experiment: str) -> list[Any]:
    values: list[Any] = []
    for f in FIELDS:
        if f.label == "experiment":
            values.append(experiment)
        elif f.label == "status":
            values.append(run.info.status)
        elif f.label == "chart signals":
            values.append(chart_signals(client, run))
        else:
            values.append(_lookup(run, f))
    return values


def _lookup(run, f: Field) -> Any:
    for name in f.metrics:
        if name in run.data.metrics:
            return float(run.data.metrics[name])
    for name in f.tags:
        if name in run.data.tags:
            value = run.data.tags[name]
            if f.label == "data hash":
                return value[:10]
            return _number(value) if f.metrics else value
    for name in f.params:
        if name in run.data.params:
            value = run.data.params[name]
            return value.lower() if value in ("True", "False") else value
    return None


def _number(value: str) -> Any:
    try:
        return float(value)
    except ValueError:
        return value


def chart_signals(client, run) -> int | None:
    """How many monitored batches a control chart flagged in this run (``None``: no charts)."""
    names = [k for k in run.data.metrics if k.endswith(CHART_SIGNAL_SUFFIX)]
    if not names:
        return None
    return sum(1 for name in names for m in client.get_metric_history(run.info.run_id, name) if m.value)


def _store(client) -> str:
    from trustops.capture.store import redact_url

    return redact_url(str(client.tracking_uri))


def write_outputs(comparison: Comparison, *, markdown: str | Path | None = None, csv_path: str | Path | None = None,
                  transpose: bool = False) -> list[Path]:
    written = []
    for target, text in ((markdown, comparison.to_markdown), (csv_path, comparison.to_csv)):
        if target:
            path = Path(target)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text(transpose=transpose), encoding="utf-8")
            written.append(path)
    return written
