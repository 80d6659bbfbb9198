"""Activation-capture benchmark: inference throughput with capture on ÷ off, per backend.

Run from the repository root::

    .venv/bin/python -m bench.bench_capture [--out bench/results/capture.json]

For the digits-sized MLP and CNN at batch sizes 1, 32 and 256, each repeat times the same
number of ``torch.inference_mode`` forward passes with no capture, with native capture, with
smdebug capture and with native capture of references (``copy=False``), in rotating order
so drift on a shared machine hits all of them.  A
capture run's clock stops only when its writer has flushed every step to the local store,
so asynchronous writing cannot hide its cost.  The ratio reported is the median over
repeats of (capture-on throughput ÷ capture-off throughput of the same repeat).  smdebug
writes one trial step per forward pass and is orders of magnitude slower at small batches,
so its runs are capped at ``--smdebug-max-batches`` passes (throughput is per pass, so the
cap does not bias the ratio).  Timings on a shared 2-core machine are noisy: the core
count, torch threads and load average are recorded with them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from trustops.capture import ActivationCapture
from trustops.models.networks import build_classifier

FAMILIES = {"mlp": (64,), "cnn": (1, 8, 8)}
BATCH_SIZES = (1, 32, 256)
BACKENDS = ("native", "smdebug")
# Extra row: native with copy=False (hooks keep references instead of copying).
VARIANTS = {"native": {}, "smdebug": {}, "native_nocopy": {"backend": "native", "copy": False}}
TARGET_OVERHEAD_PCT = 5.0  # native capture at batch 32


def _run(model: torch.nn.Module, batch: torch.Tensor, n_batches: int, backend: str | None, folder: Path) -> float:
    """Seconds for ``n_batches`` forward passes (plus the flush, when capturing)."""
    if backend is None:
        with torch.inference_mode():
            start = time.perf_counter()
            for _ in range(n_batches):
                model(batch)
            return time.perf_counter() - start
    options = VARIANTS[backend] or {"backend": backend}
    capture = ActivationCapture(model, folder, mode="predict", **options).attach()
    try:
        with torch.inference_mode():
            start = time.perf_counter()
            for _ in range(n_batches):
                model(batch)
            capture.flush()
            return time.perf_counter() - start
    finally:
        capture.close()


def _calibrate(model: torch.nn.Module, batch: torch.Tensor, seconds: float) -> int:
    n = 8
    while True:
        elapsed = _run(model, batch, n, None, Path())
        if elapsed >= seconds / 4 or n >= 1 << 20:
            return max(8, int(n * seconds / max(elapsed, 1e-9)))
        n *= 4


def bench_config(
    family: str, batch_size: int, *, repeats: int, seconds: float, smdebug_max_batches: int, workdir: Path
) -> list[dict[str, Any]]:
    torch.manual_seed(0)
    model = build_classifier(family, FAMILIES[family], 10).eval()
    batch = torch.rand(batch_size, *FAMILIES[family]) * 16
    _run(model, batch, 50, None, Path())  # warm-up
    n_batches = _calibrate(model, batch, seconds)
    n_for = {None: n_batches, "native": n_batches, "native_nocopy": n_batches, "smdebug": min(n_batches, smdebug_max_batches)}
    order: list[str | None] = [None, *VARIANTS]
    throughput: dict[str | None, list[float]] = {b: [] for b in order}
    for repeat in range(repeats):
        rotated = order[repeat % len(order) :] + order[: repeat % len(order)]
        for backend in rotated:
            folder = workdir / f"{family}-{batch_size}-{backend}-{repeat}"
            elapsed = _run(model, batch, n_for[backend], backend, folder)
            throughput[backend].append(n_for[backend] * batch_size / elapsed)
            shutil.rmtree(folder, ignore_errors=True)
    results = []
    for backend in VARIANTS:
        ratios = [on / off for on, off in zip(throughput[backend], throughput[None])]
        ratio = statistics.median(ratios)
        results.append(
            {
                "family": family,
                "batch_size": batch_size,
                "backend": backend,
                "batches_per_run": n_for[backend],
                "repeats": repeats,
                "throughput_off_samples_per_s": statistics.median(throughput[None]),
                "throughput_on_samples_per_s": statistics.median(throughput[backend]),
                "ratio_on_over_off": ratio,
                "overhead_pct": (1 / ratio - 1) * 100,
                "ratios": ratios,
            }
        )
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/capture.json"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one capture-off run (long enough to amortize the final flush)")
    parser.add_argument("--smdebug-max-batches", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (the writer thread uses another core)")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=list(BATCH_SIZES))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="trustops-bench-capture-"))
    results = []
    try:
        for family in args.families:
            for batch_size in args.batch_sizes:
                for row in bench_config(
                    family, batch_size, repeats=args.repeats, seconds=args.seconds,
                    smdebug_max_batches=args.smdebug_max_batches, workdir=workdir,
                ):  # fmt: skip
                    results.append(row)
                    print(
                        f"{row['family']:4} batch {row['batch_size']:4} {row['backend']:8} "
                        f"off {row['throughput_off_samples_per_s']:12.0f}/s  on {row['throughput_on_samples_per_s']:12.0f}/s  "
                        f"on/off {row['ratio_on_over_off']:.3f}  overhead {row['overhead_pct']:8.1f}%",
                        flush=True,
                    )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    target_rows = [r for r in results if r["backend"] == "native" and r["batch_size"] == 32]
    report = {
        "benchmark": "capture",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "cpus_available": len(os.sched_getaffinity(0)),
            "torch_threads": torch.get_num_threads(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "platform": platform.platform(),
        },
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "seconds_total": time.perf_counter() - started,
        "target": {
            "native_overhead_pct_at_batch_32_max": TARGET_OVERHEAD_PCT,
            "measured": {r["family"]: r["overhead_pct"] for r in target_rows},
            "met": {r["family"]: r["overhead_pct"] <= TARGET_OVERHEAD_PCT for r in target_rows},
        },
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
