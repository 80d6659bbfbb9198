"""Control-chart benchmark: update/check throughput and simulated run lengths vs the textbook.

Run from the repository root::

    .venv/bin/python -m bench.bench_control_charts [--out bench/results/control_charts.json]

Throughput is the median over ``--repeats`` runs of observations (subgroups, for x-bar/s) per
second: streaming ``update`` one observation at a time, and ``check`` on one large batch.  Run
lengths come from :mod:`monitors.control_charts.run_length` (the product's own update code, many
streams at once) and are compared with the published zero-state ARLs.  Timings on a shared
machine are noisy; the core count is recorded with them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from monitors.control_charts import (
    TEXTBOOK_CASES,
    CUSUMChart,
    EWMAChart,
    IndividualsChart,
    NPChart,
    PChart,
    XbarSChart,
    average_run_length,
)
from monitors.control_charts.base import ControlChart

DEFAULT_OUT = Path("bench/results/control_charts.json")

# name -> (build a fitted chart, draw n Phase II observations)
Setup = tuple[Callable[[np.random.Generator], ControlChart], Callable[[np.random.Generator, int], np.ndarray]]
SETUPS: dict[str, Setup] = {
    "individuals": (lambda g: IndividualsChart().fit(g.normal(size=100)), lambda g, n: g.normal(size=n)),
    "individuals_we1234": (
        lambda g: IndividualsChart(rules=(1, 2, 3, 4)).fit(g.normal(size=100)),
        lambda g, n: g.normal(size=n),
    ),
    "xbar_s_n5": (lambda g: XbarSChart().fit(g.normal(size=(25, 5))), lambda g, n: g.normal(size=(n, 5))),
    "p_chart_n200": (
        lambda g: PChart(n=200).fit(g.binomial(200, 0.05, size=30)),
        lambda g, n: g.binomial(200, 0.05, size=n),
    ),
    "np_chart_n200": (
        lambda g: NPChart(n=200).fit(g.binomial(200, 0.05, size=30)),
        lambda g, n: g.binomial(200, 0.05, size=n),
    ),
    "ewma": (lambda g: EWMAChart().fit(g.normal(size=100)), lambda g, n: g.normal(size=n)),
    "cusum": (lambda g: CUSUMChart().fit(g.normal(size=100)), lambda g, n: g.normal(size=n)),
}


def throughput(setup: Setup, *, n_update: int, n_check: int, repeats: int, seed: int) -> dict[str, float]:
    """Median observations per second of streaming ``update`` and of one batch ``check``."""
    build, draw = setup
    update_rates, check_rates = [], []
    for repeat in range(repeats):
        rng = np.random.default_rng([seed, repeat])
        chart = build(rng)
        stream = draw(rng, n_update)
        started = time.perf_counter()
        for x in stream:
            chart.update(x)
        update_rates.append(n_update / (time.perf_counter() - started))
        chart.reset()
        batch = draw(rng, n_check)
        started = time.perf_counter()
        chart.check(batch)
        check_rates.append(n_check / (time.perf_counter() - started))
    return {
        "update_obs_per_s": statistics.median(update_rates),
        "check_obs_per_s": statistics.median(check_rates),
        "update_obs_per_s_all": update_rates,
        "check_obs_per_s_all": check_rates,
    }


def run_length_rows(*, replications: int, seed: int) -> list[dict[str, Any]]:
    cases = [(case.label, case.build, dict(case.arl), case.source) for case in TEXTBOOK_CASES]
    cases.append(
        (
            "EWMA lam=0.2, L=2.962, exact (time-varying) limits",
            lambda: EWMAChart(lam=0.2, L=2.962, mean=0.0, sigma=1.0, limits="exact"),
            {0.0: None, 1.0: None},
            "no published value: the exact limits signal earlier at the start",
        )
    )
    rows = []
    for label, build, arls, source in cases:
        for shift, published in arls.items():
            started = time.perf_counter()
            estimate = average_run_length(
                build(), shift=shift, replications=replications, generator=np.random.default_rng(seed)
            )
            rows.append(
                {
                    "chart": label,
                    "shift_sigmas": shift,
                    "published_arl": published,
                    "simulated_arl": estimate.arl,
                    "std_error": estimate.std_error,
                    "sdrl": estimate.sdrl,
                    "median_run_length": estimate.median,
                    "relative_error": None if published is None else (estimate.arl - published) / published,
                    "replications": replications,
                    "censored": estimate.censored,
                    "seconds": time.perf_counter() - started,
                    "source": source,
                }
            )
    return rows


def environment() -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    return {
        "cpu_count": os.cpu_count(),
        "usable_cores": usable,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})")
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats; the median is reported")
    parser.add_argument("--n-update", type=int, default=5_000, help="observations per streaming-update run")
    parser.add_argument("--n-check", type=int, default=50_000, help="observations in the batch-check run")
    parser.add_argument("--replications", type=int, default=20_000, help="streams per simulated ARL")
    parser.add_argument("--seed", type=int, default=2_024)
    args = parser.parse_args(argv)

    results: dict[str, Any] = {
        "benchmark": "control_charts",
        "environment": environment(),
        "settings": {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()},
        "throughput": {},
        "run_lengths": [],
    }
    print(f"cores: {results['environment']['usable_cores']} usable of {results['environment']['cpu_count']}")
    print(f"\n{'chart':<22}{'update obs/s':>15}{'check obs/s':>15}   (median of {args.repeats})")
    for name, setup in SETUPS.items():
        rates = throughput(setup, n_update=args.n_update, n_check=args.n_check, repeats=args.repeats, seed=args.seed)
        results["throughput"][name] = rates
        print(f"{name:<22}{rates['update_obs_per_s']:>15,.0f}{rates['check_obs_per_s']:>15,.0f}")

    print(f"\nrun lengths: {args.replications} replications each, seed {args.seed}")
    print(f"{'chart':<55}{'shift':>6}{'published':>11}{'simulated':>11}{'s.e.':>8}{'error':>8}")
    for row in run_length_rows(replications=args.replications, seed=args.seed):
        results["run_lengths"].append(row)
        published = "-" if row["published_arl"] is None else f"{row['published_arl']:.2f}"
        error = "-" if row["relative_error"] is None else f"{100 * row['relative_error']:+.1f}%"
        print(
            f"{row['chart']:<55}{row['shift_sigmas']:>6.1f}{published:>11}"
            f"{row['simulated_arl']:>11.2f}{row['std_error']:>8.2f}{error:>8}"
        )

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")
    print(f"\nwrote {args.out}")
    return results


if __name__ == "__main__":
    main()
