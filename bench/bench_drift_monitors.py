"""Per-batch cost of the table monitors ``evidently_drift`` and ``input_expectations`` on digits traffic.

Run from the repository root::

    .venv/bin/python -m bench.bench_drift_monitors [--batches 20] [--skip-slow] [--out bench/results/drift_monitors.json]

The loop's setting (issue #10/#11): a reference of 360 digits rows, batches of 120 rows, 64
integer pixel columns (0-16).  For each monitor the median wall and CPU time per ``check`` over
``--batches`` clean held-out batches, the rows per second that gives, and the same for one
drifted batch (a pixel column rescaled x3), where the permutation p-value runs to ``max_draws``.
``evidently_drift`` is timed at the default page level (alpha = 0.05, 19 draws) and at the
loop's small level (1/3000, up to 2,999 draws).  Unless ``--skip-slow``, the slow paths kept for
the comparison tests (a full Evidently Report; a Great Expectations run) are timed once each:
that was the per-batch cost before the fast paths.  Timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from monitors.data_drift import EvidentlyDriftMonitor
from monitors.input_expectations import InputExpectationsMonitor

DEFAULT_OUT = Path("bench/results/drift_monitors.json")
N_REFERENCE, BATCH = 360, 120


def digits_tables(n_batches: int) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    from sklearn.datasets import load_digits

    data = load_digits().data.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(data))
    columns = [f"pixel_{i}" for i in range(data.shape[1])]
    reference = pd.DataFrame(data[order[:N_REFERENCE]], columns=columns)
    rest = data[order[N_REFERENCE:]]
    batches = [pd.DataFrame(rest[(k * BATCH) % (len(rest) - BATCH):][:BATCH], columns=columns) for k in range(n_batches)]
    return reference, batches


def timed(call: Callable[[], Any]) -> tuple[float, float, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def per_batch(monitor: Any, batches: list[pd.DataFrame]) -> dict[str, Any]:
    monitor.check(batches[0])  # warm caches (scipy's K-S p-values) as a running loop would
    times = [timed(lambda b=b: monitor.check(b)) for b in batches]
    wall = statistics.median(t[0] for t in times)
    row = {
        "median_wall_ms": 1e3 * wall,
        "median_cpu_ms": 1e3 * statistics.median(t[1] for t in times),
        "rows_per_second": BATCH / wall,
        "alarms": sum(bool(t[2].alarm) for t in times),
    }
    if "p_value" in times[0][2].details:
        row["median_draws"] = statistics.median(t[2].details["n_draws"] for t in times)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--skip-slow", action="store_true", help="do not time the Evidently Report and GE paths")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    reference, batches = digits_tables(args.batches)
    drifted = batches[0].assign(pixel_20=batches[0]["pixel_20"] * 3)
    monitors = {
        "evidently_drift(alpha=0.05)": EvidentlyDriftMonitor(alpha=0.05),
        "evidently_drift(alpha=1/3000)": EvidentlyDriftMonitor(alpha=1 / 3000),
        "input_expectations(value_range=(0, 16))": InputExpectationsMonitor(value_range=(0.0, 16.0)),
        "input_expectations(learned ranges)": InputExpectationsMonitor(),
    }
    results: dict[str, Any] = {"cpus": len(os.sched_getaffinity(0)), "load_average": list(os.getloadavg())}
    for name, monitor in monitors.items():
        monitor.fit(reference)
        row = per_batch(monitor, batches)
        wall, cpu, result = timed(lambda m=monitor: m.check(drifted))
        row["drifted_batch"] = {"wall_ms": 1e3 * wall, "cpu_ms": 1e3 * cpu, "alarm": bool(result.alarm),
                                **({"p_value": result.details["p_value"]} if "p_value" in result.details else {})}
        results[name] = row
        print(f"{name:42s} {row['median_wall_ms']:8.2f} ms/batch (cpu {row['median_cpu_ms']:.2f}) "
              f"{row['rows_per_second']:9.0f} rows/s  alarms {row['alarms']}/{len(batches)}  drifted: {row['drifted_batch']}")
    if not args.skip_slow:
        drift, expectations = monitors["evidently_drift(alpha=0.05)"], monitors["input_expectations(value_range=(0, 16))"]
        for name, call in {
            "evidently_report (before)": lambda: drift._evidently_decision(batches[1]),
            "great_expectations_run (before)": lambda: expectations._great_expectations_failures(batches[1]),
        }.items():
            wall, cpu, _ = timed(call)
            results[name] = {"wall_ms": 1e3 * wall, "cpu_ms": 1e3 * cpu}
            print(f"{name:42s} {1e3 * wall:8.0f} ms/batch (cpu {1e3 * cpu:.0f})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
