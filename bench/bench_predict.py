"""Scoring benchmark: rows/s of ``trustops predict`` and of the served pyfunc, capture on and off.

Run from the repository root::

    .venv/bin/python -m bench.bench_predict [--out bench/results/predict.json]

Everything after process start-up and model loading is timed, in one process:

* **predict**: :func:`trustops.serving.predict.score_inputs`, the loop of ``trustops predict``
  (one forward pass and one captured PREDICT step per ``--batch-size`` rows, the table of
  predictions built at the end), over the digits rows repeated to ``--rows``;
* **pyfunc**: :meth:`CapturingClassifier.predict` called once per request of
  ``--request-rows`` rows given as a DataFrame of the feature columns, which is what MLflow's
  scoring server hands the model after parsing a request (the HTTP and JSON work is not timed).

The model is the digits MLP (``trustops train`` defaults: hidden 64, 32) built in place, the
same shapes and cost as a trained one; the capture store is a local folder.  A capture run's
clock stops when its writer has committed every step.  Each variant also runs once more per
repeat with torch's default intra-op threads (``torch_threads=0``), the setting before
``CapturingClassifier`` ran forward passes on one thread.  Variants rotate order per repeat;
the median over repeats is reported, with the core count and load average (a shared 2-core
machine is noisy).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from bench._common import machine, write_report
from trustops.data.digits import DIGITS_IMAGE_SHAPE, export_digits
from trustops.models.networks import build_classifier
from trustops.serving.predict import read_inputs, score_inputs
from trustops.serving.pyfunc import CapturingClassifier

TARGET_ROWS_PER_S = 5_000
PATHS = ("predict", "pyfunc")


def _wrapper(model: torch.nn.Module, columns: list[str], store: Path | None, threads: int) -> CapturingClassifier:
    config = {
        "input_shape": list(DIGITS_IMAGE_SHAPE), "feature_columns": columns, "classes": list(range(10)),
        "capture_uri": str(store) if store is not None else "off", "torch_threads": threads,
    }  # fmt: skip
    return CapturingClassifier.from_module(model, config)


def _time_predict(wrapper: CapturingClassifier, inputs: np.ndarray, batch_size: int) -> float:
    start = time.perf_counter()
    score_inputs(wrapper, inputs, batch_size=batch_size)  # closes the capture: every step committed
    return time.perf_counter() - start


def _time_pyfunc(wrapper: CapturingClassifier, frame: pd.DataFrame, request_rows: int) -> float:
    requests = [frame.iloc[i : i + request_rows] for i in range(0, len(frame), request_rows)]
    start = time.perf_counter()
    for request in requests:
        wrapper.predict(None, request)
    wrapper.close()
    return time.perf_counter() - start


def run(rows: int, batch_size: int, request_rows: int, repeats: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-predict-"))
    try:
        export_digits(work / "digits.parquet")
        table = pd.read_parquet(work / "digits.parquet")
        columns = [c for c in table.columns if c.startswith("pixel_")]
        table = pd.concat([table] * (rows // len(table) + 1), ignore_index=True).head(rows)
        table[columns].to_parquet(work / "rows.parquet")
        inputs = read_inputs(work / "rows.parquet", columns, DIGITS_IMAGE_SHAPE)
        frame = table[columns]
        torch.manual_seed(0)
        model = build_classifier("mlp", DIGITS_IMAGE_SHAPE, 10).eval()
        variants = [
            (path, capture, threads)
            for path in PATHS for capture in (True, False) for threads in (1, 0)
        ]  # fmt: skip
        seconds: dict[str, list[float]] = {f"{p}/{'capture' if c else 'no_capture'}/{'1_thread' if t else 'default_threads'}": []
                                           for p, c, t in variants}
        for repeat in range(repeats + 1):  # repeat 0 warms up and is not kept
            shift = repeat % len(variants)
            for path, capture, threads in variants[shift:] + variants[:shift]:
                store = work / f"store-{repeat}-{path}-{capture}-{threads}" if capture else None
                wrapper = _wrapper(model, columns, store, threads)
                took = _time_predict(wrapper, inputs, batch_size) if path == "predict" else _time_pyfunc(wrapper, frame, request_rows)
                if store is not None:
                    shutil.rmtree(store, ignore_errors=True)
                if repeat:
                    seconds[f"{path}/{'capture' if capture else 'no_capture'}/{'1_thread' if threads else 'default_threads'}"].append(took)
        results = {
            name: {"median_rows_per_s": rows / statistics.median(times), "rows_per_s": [rows / t for t in times]}
            for name, times in seconds.items()
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000, help="rows scored per timed run (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=256, help="trustops predict's --batch-size (default: %(default)s)")
    parser.add_argument("--request-rows", type=int, default=64, help="rows per pyfunc request (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 5,000 rows, 1 repeat")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.repeats = 5_000, 1
    info = machine()
    results = run(args.rows, args.batch_size, args.request_rows, args.repeats)
    report = {
        "machine": info,
        "settings": {"rows": args.rows, "batch_size": args.batch_size, "request_rows": args.request_rows,
                     "repeats": args.repeats, "quick": args.quick},
        "target_rows_per_s": TARGET_ROWS_PER_S,
        "results": results,
    }  # fmt: skip
    for name, result in results.items():
        print(f"{name:40s} {result['median_rows_per_s']:>12,.0f} rows/s")
    write_report("predict", report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
