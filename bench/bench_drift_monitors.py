"""Per-batch cost of the table monitors ``evidently_drift`` and ``input_expectations`` on digits traffic.

Run from the repository root::

    .venv/bin/python -m bench.bench_drift_monitors [--batches 20] [--skip-slow] [--out bench/results/drift_monitors.json]
    .venv/bin/python -m bench.bench_drift_monitors --wide [--repeats 5] [--out bench/results/drift_check_wide.json]

The loop's setting (issue #10/#11): a reference of 360 digits rows, batches of 120 rows, 64
integer pixel columns (0-16).  For each monitor the median wall and CPU time per ``check`` over
``--batches`` clean held-out batches, the rows per second that gives, and the same for one
drifted batch (a pixel column rescaled x3), where the permutation p-value runs to ``max_draws``.
``evidently_drift`` is timed at the default page level (alpha = 0.05, 19 draws) and at the
loop's small level (1/3000, up to 2,999 draws).  Unless ``--skip-slow``, the slow paths kept for
the comparison tests (a full Evidently Report; a Great Expectations run) are timed once each:
that was the per-batch cost before the fast paths.  Timings on a shared machine are noisy.

``--wide`` times ``evidently_drift``'s check at Fashion-MNIST's width instead: 784 pixel-like
columns (integers 0-255) with a reference of 5,000 rows, as a Fashion-MNIST model's validation
split gives it, and a 120-row batch whose first tenth of columns is brightened by 30, at the page
level 1/500 (up to 499 permutations).  The same check runs with ``drift_tests.FEW_CELLS`` at 64,
its value before 256 (pixel columns then took the sorted path), and at today's value, the two
alternating within each repeat; the result must be the same to the bit.
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

from bench._common import machine
from monitors.data_drift import EvidentlyDriftMonitor
from monitors.input_expectations import InputExpectationsMonitor

DEFAULT_OUT = Path("bench/results/drift_monitors.json")
DEFAULT_WIDE_OUT = Path("bench/results/drift_check_wide.json")
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


def wide_check(repeats: int, quick: bool) -> dict[str, Any]:
    from bench.bench_drift_report import pixel_tables
    from monitors import drift_tests

    width, n_reference, batch_rows, level = (160, 1_000, 120, 1 / 500) if quick else (784, 5_000, 120, 1 / 500)
    reference, batch = pixel_tables(width, n_reference, batch_rows)
    variants = {"sorted_path_before": 64, "counted_by_value": drift_tests.FEW_CELLS}
    samples: dict[str, list[float]] = {name: [] for name in variants}
    outcomes: dict[str, set[tuple[float, float, int]]] = {name: set() for name in variants}
    kept = drift_tests.FEW_CELLS
    try:
        for repeat in range(repeats):
            for name, few_cells in variants.items():
                drift_tests.FEW_CELLS = few_cells
                monitor = EvidentlyDriftMonitor(alpha=level).fit(reference)  # the same seeded permutations each time
                wall, cpu, result = timed(lambda m=monitor: m.check(batch))
                samples[name].append(cpu)
                outcomes[name].add((result.details["p_value"], result.details["statistic"], result.details["n_draws"]))
                shown = {key: result.details[key] for key in ("p_value", "statistic", "n_draws")}
                print(f"repeat {repeat + 1}/{repeats} {name:20s} {cpu:.2f} s CPU, {shown}", flush=True)
    finally:
        drift_tests.FEW_CELLS = kept
    before, now = (statistics.median(samples[name]) for name in variants)
    (p_value, statistic, draws), = outcomes["counted_by_value"]
    return {
        "columns": width, "reference_rows": n_reference, "batch_rows": batch_rows, "page_level": level,
        "repeats": repeats, "quick": quick,
        "median_cpu_s": {name: statistics.median(values) for name, values in samples.items()},
        "cpu_s": samples,
        "cpu_ratio_before_over_now": before / now,
        "same_result": outcomes["sorted_path_before"] == outcomes["counted_by_value"],
        "p_value": p_value, "statistic": statistic, "n_draws": draws,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wide", action="store_true", help="time evidently_drift's check at 784 columns (see above)")
    parser.add_argument("--repeats", type=int, default=5, help="with --wide")
    parser.add_argument("--quick", action="store_true", help="with --wide: 160 columns, 1,000 reference rows, one repeat")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--skip-slow", action="store_true", help="do not time the Evidently Report and GE paths")
    parser.add_argument("--out", type=Path, default=None, help=f"default {DEFAULT_OUT}, with --wide {DEFAULT_WIDE_OUT}")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    args.out = args.out or (DEFAULT_WIDE_OUT if args.wide else DEFAULT_OUT)
    if args.wide:
        result = {"machine": machine(), **wide_check(1 if args.quick else args.repeats, args.quick)}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        return
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
