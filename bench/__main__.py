"""Run every benchmark script in turn: ``python -m bench`` (or ``make bench``).

Each script measures ratios in one process (median of several repeats) and writes its JSON
under ``bench/results/``; they run one after another so they do not compete for the cores.
"""

import subprocess
import sys

SCRIPTS = ("bench_mmd", "bench_capture", "bench_control_charts")

if __name__ == "__main__":
    failed = [name for name in SCRIPTS if subprocess.run([sys.executable, "-m", f"bench.{name}"]).returncode != 0]
    if failed:
        sys.exit(f"benchmarks failed: {', '.join(failed)}")
