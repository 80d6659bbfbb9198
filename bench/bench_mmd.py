"""MMD detector benchmark: trustops against alibi-detect's ``MMDDrift`` (PyTorch backend).

Run from the repository root::

    .venv/bin/python -m bench.bench_mmd [--out bench/results/mmd.json] [--skip-alibi] [--quick]

Cases, all with d = 128 Gaussian features and P = 100 permutations:

* one permutation test at n = m = 100, 1,000, 2,500 and 10,000: ``check`` of a fitted
  ``MMDAdversarialMonitor`` against ``MMDDrift.score`` of a constructed detector (fitting and
  constructing are not timed; one untimed warm-up call first, so alibi-detect's precomputed
  reference kernel counts as set-up);
* the detection rate: 100 tests of 100 vs 100 rows, trustops' ``detection_rate`` against a
  loop of ``MMDDrift`` construction + ``score`` on the same kind of draws;
* peak memory of one trustops test at n = m = 10,000, measured in a fresh subprocess: the
  kernel's peak-RSS mark (``VmHWM`` in ``/proc/self/status``) is reset through
  ``/proc/self/clear_refs`` just before the call and read after it, and the resident set
  size just before the call is subtracted, so the torch import and the data do not count.
  (``ru_maxrss`` is not used: a child started from a big parent inherits the parent's peak,
  and tracemalloc cannot see torch's allocations.)

Times are medians over repeats (wall clock, ``time.perf_counter``).  The machine is shared
and small (2 cores): the load average at start and end is recorded with the results, and
the numbers are only comparable between runs on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monitors.mmd_adversarial import MMDAdversarialMonitor

DEFAULT_OUT = Path("bench/results/mmd.json")
DIM, N_PERMUTATIONS = 128, 100
SIZES = (100, 1_000, 2_500, 10_000)
TRUSTOPS_REPEATS = {100: 7, 1_000: 5, 2_500: 3, 10_000: 3}
ALIBI_REPEATS = {100: 5, 1_000: 3, 2_500: 1}  # one alibi-detect test at 2,500 takes ~20 s
ALIBI_SKIP_10K = (
    "skipped: alibi-detect builds the full 20,000 x 20,000 pooled kernel (1.6 GB in float32), "
    "copies it for the concatenation and the zero diagonal, and makes two more permuted copies for "
    "each of the 100 permutations; scaling its 2,500-row time by (10,000 / 2,500)² puts one test "
    "at several minutes, with >= 6 GB live at peak on a shared 24 GB machine."
)


def mmd_timer(fn: Callable[[], Any], repeats: int) -> list[float]:
    fn()  # warm-up: caches, allocator, lazy imports
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return runs


def mmd_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    reference = rng.standard_normal((n, DIM), dtype=np.float32)
    batch = rng.standard_normal((n, DIM), dtype=np.float32) + np.float32(0.02)
    return reference, batch


def fitted_monitor(reference: np.ndarray) -> MMDAdversarialMonitor:
    return MMDAdversarialMonitor(class_matching=False, n_permutations=N_PERMUTATIONS, seed=0).fit(reference)


def standardized(reference: np.ndarray, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = reference.mean(0), reference.std(0)
    return (reference - mean) / std, (batch - mean) / std


def alibi_detector(reference: np.ndarray, bandwidths: tuple[float, ...]) -> Any:
    from monitors.mmd.alibi_backend import load_mmd_drift

    return load_mmd_drift()(
        reference,
        backend="pytorch",
        sigma=np.asarray(bandwidths, dtype=np.float32),
        configure_kernel_from_x_ref=False,
        n_permutations=N_PERMUTATIONS,
        device="cpu",
    )


def permutation_tests(sizes: tuple[int, ...], with_alibi: bool) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        reference, batch = mmd_data(n, seed=n)
        monitor = fitted_monitor(reference)
        row: dict[str, Any] = {"n": n, "m": n, "d": DIM, "permutations": N_PERMUTATIONS}
        row["trustops_runs_s"] = mmd_timer(lambda: monitor.check(batch), TRUSTOPS_REPEATS[n])
        row["trustops_median_s"] = statistics.median(row["trustops_runs_s"])
        if not with_alibi:
            row["alibi"] = "skipped: --skip-alibi"
        elif n not in ALIBI_REPEATS:
            row["alibi"] = ALIBI_SKIP_10K
        else:
            x, y = standardized(reference, batch)
            detector = alibi_detector(x.astype(np.float32), monitor.bandwidths["activations"])
            row["alibi_runs_s"] = mmd_timer(lambda: detector.score(y.astype(np.float32)), ALIBI_REPEATS[n])
            row["alibi_median_s"] = statistics.median(row["alibi_runs_s"])
            row["ratio_alibi_over_trustops"] = row["alibi_median_s"] / row["trustops_median_s"]
        print(f"  permutation test n = m = {n:>6,}: done", file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def detection_rates(with_alibi: bool, repeats: int) -> dict[str, Any]:
    reference, batch = mmd_data(3_000, seed=1)
    monitor = fitted_monitor(reference)
    result: dict[str, Any] = {"n_tests": 100, "n_samples": 100, "d": DIM, "permutations": N_PERMUTATIONS}
    result["trustops_runs_s"] = mmd_timer(lambda: monitor.detection_rate(batch), repeats)
    result["trustops_median_s"] = statistics.median(result["trustops_runs_s"])
    if not with_alibi:
        result["alibi"] = "skipped: --skip-alibi"
        return result
    x, y = standardized(reference, batch)
    bandwidths = monitor.bandwidths["activations"]
    rng = np.random.default_rng(0)

    def alibi_rate() -> float:
        rejections = 0
        for _ in range(100):
            xs = x[rng.choice(len(x), 100, replace=False)].astype(np.float32)
            ys = y[rng.choice(len(y), 100, replace=False)].astype(np.float32)
            p, _, _ = alibi_detector(xs, bandwidths).score(ys)
            rejections += p < 0.05
        return rejections / 100

    result["alibi_runs_s"] = mmd_timer(alibi_rate, max(1, repeats - 2))
    result["alibi_median_s"] = statistics.median(result["alibi_runs_s"])
    result["ratio_alibi_over_trustops"] = result["alibi_median_s"] / result["trustops_median_s"]
    return result


_MEMORY_PROBE = """
import json, os, time
import torch
torch.set_num_threads({threads})
from bench.bench_mmd import fitted_monitor, mmd_data

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024

reference, batch = mmd_data({n}, seed={n})
monitor = fitted_monitor(reference)
with open("/proc/self/clear_refs", "w") as marks:
    marks.write("5")  # reset the peak-RSS mark
before = status("VmRSS")
start = time.perf_counter()
monitor.check(batch)
seconds = time.perf_counter() - start
print(json.dumps({{"rss_before_bytes": before, "peak_rss_bytes": status("VmHWM"), "seconds": seconds}}))
"""


def peak_memory(n: int) -> dict[str, Any]:
    code = _MEMORY_PROBE.format(n=n, threads=torch.get_num_threads())
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    probe["n"] = n
    probe["increase_bytes"] = probe["peak_rss_bytes"] - probe["rss_before_bytes"]
    probe["method"] = "fresh subprocess; VmHWM (reset via /proc/self/clear_refs) minus VmRSS before the first check"
    return probe


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "load_average_start": os.getloadavg(),
    }


def print_table(results: dict[str, Any]) -> None:
    info = results["machine"]
    print(
        f"MMD benchmark: d = {DIM}, P = {N_PERMUTATIONS}; {info['cpu_count']} cores, torch threads "
        f"{info['torch_threads']}, load average {info['load_average_start'][0]:.2f} -> "
        f"{info['load_average_end'][0]:.2f} (shared machine: medians are noisy)"
    )
    print(f"{'case':<34}{'trustops s':>12}{'alibi s':>12}{'alibi/trustops':>16}")

    def line(label: str, row: dict[str, Any]) -> None:
        alibi = f"{row['alibi_median_s']:.3f}" if "alibi_median_s" in row else "-"
        ratio = f"{row['ratio_alibi_over_trustops']:.1f}x" if "ratio_alibi_over_trustops" in row else "-"
        print(f"{label:<34}{row['trustops_median_s']:>12.3f}{alibi:>12}{ratio:>16}")

    for row in results["permutation_test"]:
        line(f"one test, n = m = {row['n']:,}", row)
    line("detection rate, 100 x (100 vs 100)", results["detection_rate"])
    for row in results["permutation_test"]:
        if "alibi" in row:
            print(f"  alibi-detect at n = {row['n']:,}: {row['alibi']}")
    memory = results.get("memory")
    if memory:
        print(
            f"peak memory, one trustops test at n = m = {memory['n']:,}: +{memory['increase_bytes'] / 2**20:.0f} MiB "
            f"over {memory['rss_before_bytes'] / 2**20:.0f} MiB before the call "
            f"(peak RSS {memory['peak_rss_bytes'] / 2**20:.0f} MiB; cold call {memory['seconds']:.2f} s)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results path")
    parser.add_argument("--skip-alibi", action="store_true", help="time trustops only")
    parser.add_argument("--quick", action="store_true", help="n = 100 and 1,000 only, no memory probe")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    results: dict[str, Any] = {"created": datetime.now(timezone.utc).isoformat(), "machine": machine()}
    sizes = SIZES[:2] if args.quick else SIZES
    results["permutation_test"] = permutation_tests(sizes, with_alibi=not args.skip_alibi)
    results["detection_rate"] = detection_rates(with_alibi=not args.skip_alibi, repeats=5)
    if not args.quick:
        results["memory"] = peak_memory(10_000)
    results["machine"]["load_average_end"] = os.getloadavg()
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
