"""CPU time and size of the Evidently drift report a shifted monitor pass writes, by table width.

Run from the repository root::

    .venv/bin/python -m bench.bench_drift_report [--repeats 3] [--rows 2000] [--out bench/results/drift_report.json]

The pass's report (``EvidentlyDriftMonitor.report_run`` then ``report_html``) over its most recent
``--rows`` rows (2,000 in a pass) against a reference of as many rows, on pixel-like integer
columns (0-255, a block of 10% of the columns brightened by 30): at the digits width (64 columns,
under ``REPORT_MAX_COLUMNS``: Evidently's full ``DataDriftPreset``) and at the Fashion-MNIST width
(784 columns), there both as a pass runs it (the count over every column, the 64 most drifted
columns drawn) and with every column drawn (``max_columns=None``, what a pass ran before).  The
variants alternate within each repeat, in one process, after a warm-up run that imports
Evidently; each figure is the median over the repeats of CPU seconds (``time.process_time``) and
of HTML bytes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench._common import machine
from monitors.data_drift import REPORT_MAX_COLUMNS, EvidentlyDriftMonitor

DEFAULT_OUT = Path("bench/results/drift_report.json")
NARROW, WIDE = 64, 784  # the digits and Fashion-MNIST widths


def variants(wide: int) -> dict[str, tuple[int, int | None]]:
    """name -> (columns, max_columns)"""
    return {"narrow": (NARROW, REPORT_MAX_COLUMNS), "wide_most_drifted": (wide, REPORT_MAX_COLUMNS), "wide_every_column": (wide, None)}


def pixel_tables(width: int, rows: int, current_rows: int | None = None, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A reference of ``rows`` pixel-like rows (integers 0-255) and a current table of ``current_rows``
    (default ``rows``) whose first tenth of columns is brightened by 30."""
    rng = np.random.default_rng(seed)
    columns = [f"pixel_{j}" for j in range(width)]
    reference = rng.integers(0, 256, size=(rows, width)).astype(np.float64)
    current = rng.integers(0, 256, size=(current_rows or rows, width)).astype(np.float64)
    current[:, : max(1, width // 10)] = np.minimum(255.0, current[:, : max(1, width // 10)] + 30.0)
    return pd.DataFrame(reference, columns=columns), pd.DataFrame(current, columns=columns)


def one_report(monitor: EvidentlyDriftMonitor, table: pd.DataFrame, max_columns: int | None) -> dict[str, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    run = monitor.report_run(table, max_columns=max_columns)
    html = monitor.report_html()
    counted = next(m["value"] for m in run.dict()["metrics"] if m["config"]["type"].endswith("DriftedColumnsCount"))
    return {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall, "html_bytes": len(html),
            "drifted_columns_counted": counted["count"]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=2_000)
    parser.add_argument("--wide", type=int, default=WIDE, help="columns of the wide table")
    parser.add_argument("--quick", action="store_true", help="one repeat, 300 rows, 160 wide columns (a smoke run, not a measurement)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.rows, args.wide = 1, 300, 160
    chosen = variants(args.wide)
    warnings.simplefilter("ignore")
    monitors, tables = {}, {}
    for width in sorted({width for width, _ in chosen.values()}):
        reference, tables[width] = pixel_tables(width, args.rows)
        monitors[width] = EvidentlyDriftMonitor().fit(reference)
    one_report(monitors[NARROW], tables[NARROW].head(50), REPORT_MAX_COLUMNS)  # imports Evidently and Plotly
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in chosen}
    for repeat in range(args.repeats):
        for name, (width, max_columns) in chosen.items():
            samples[name].append(one_report(monitors[width], tables[width], max_columns))
            print(f"repeat {repeat + 1}/{args.repeats} {name:18s} {samples[name][-1]}", flush=True)
    measured = {
        name: {
            "columns": chosen[name][0],
            "max_columns": chosen[name][1],
            "median_cpu_s": statistics.median(s["cpu_s"] for s in runs),
            "median_wall_s": statistics.median(s["wall_s"] for s in runs),
            "median_html_bytes": statistics.median(s["html_bytes"] for s in runs),
            "drifted_columns_counted": runs[0]["drifted_columns_counted"],
            "cpu_s": [s["cpu_s"] for s in runs],
        }
        for name, runs in samples.items()
    }
    drawn, every = measured["wide_most_drifted"], measured["wide_every_column"]
    results = {
        "machine": machine(),
        "repeats": args.repeats,
        "rows": args.rows,
        "quick": args.quick,
        "variants": measured,
        "cpu_ratio_every_over_most_drifted_wide": every["median_cpu_s"] / drawn["median_cpu_s"],
        "html_ratio_every_over_most_drifted_wide": every["median_html_bytes"] / drawn["median_html_bytes"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
