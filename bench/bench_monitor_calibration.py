"""Monitor calibration: how often the live loop pages on clean traffic, and how fast on known shifts.

Run from the repository root::

    .venv/bin/python -m bench.bench_monitor_calibration [--quick] [--clean-batches 1500]

Set-up (not measured), in a throw-away project: ``trustops train`` with the default
configuration (the model ``trustops run`` registers: digits MLP, DP at epsilon 8).

Clean traffic: ``--clean-batches`` batches of 120 rows, each drawn without replacement from
the test split (rows the reference, the validation split, never saw), with their labels,
served through the model with the PREDICT capture on (as ``trustops predict`` does), then
monitored by ``trustops.monitoring.loop.monitor_pass`` -- collect, check, chart, alert,
watermark, the stages the ``trustops monitor`` pipeline runs -- with the default monitors and
the default false-page budget (500 clean batches between false pages), ``--batches-per-pass``
batches per pass.  Reported: each monitor's alarm rate (its chart's signal rate) and the
whole loop's page rate per batch (a batch opens an incident: any alarm), each with a
Clopper-Pearson 95% interval, and the raised alerts.

Shifts: each scenario starts from fresh monitor state and serves ``--shift-batches`` batches:
an abrupt brightness +2 (pixel units, 0-16), a gradual brightening (+0.25 more per batch),
Gaussian noise (sigma 2), a label-prior shift (rows of classes 0-2 only), one rescaled
feature (the highest-variance pixel x3), PGD L-inf epsilon 2 and PGD L2 epsilon 8 (10 steps),
one pass per batch as a schedule would run it.  Reported per scenario: the first batch that
paged (the delay) and which incident kinds it raised -- the drift/adversarial confusion table.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import isolated_env, machine, make_project, write_report

BATCH_SIZE = 120
INCIDENTS = ("suspected_adversarial", "distribution_shift", "data_quality")


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    from scipy import stats

    low = 0.0 if k == 0 else float(stats.beta.ppf((1 - confidence) / 2, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1 - (1 - confidence) / 2, k + 1, n - k))
    return low, high


def train_default_model(root: Path) -> None:
    trustops = Path(sys.executable).parent / "trustops"
    done = subprocess.run([str(trustops), "train"], cwd=root, env=isolated_env(root), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"trustops train failed:\n{done.stderr[-3000:]}")


class Loop:
    """The registered model, its held-out pool, and monitor passes over a capture store of our own."""

    def __init__(self, root: Path) -> None:
        import os

        import mlflow
        import torch
        from mlflow.tracking import MlflowClient

        from trustops.data.registered import load_split
        from trustops.registry import resolve_registered_model

        os.environ["TRUSTOPS_PROJECT_ROOT"] = str(root)
        uri = f"sqlite:///{root / '.trustops' / 'mlflow.db'}"
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        self.info = resolve_registered_model("trustops-digits", "latest", MlflowClient(uri, uri))
        self.model = mlflow.pytorch.load_model(self.info.model_uri).eval()
        self.x, self.y, self.value_range = load_split(self.info, "test")
        self.root = root
        self.monitors: list[str] | None = None  # None: the loop's defaults
        self.generator = torch.Generator().manual_seed(0)

    def clean(self) -> tuple[Any, Any]:
        import torch

        rows = torch.randperm(len(self.x), generator=self.generator)[:BATCH_SIZE]  # without replacement
        return self.x[rows], self.y[rows]

    def serve(self, capture_uri: str, inputs, labels) -> None:
        import torch

        from trustops.capture import ActivationCapture

        with ActivationCapture(self.model, capture_uri, mode="predict") as capture, torch.no_grad():
            capture.meta = {"labels": labels.tolist()}
            self.model(inputs)

    def fresh_state(self, name: str) -> tuple[Path, str]:
        """A new monitor state folder and a capture store seeded with the reference (EVAL) pass."""
        from trustops.capture import open_capture

        folder = self.root / "calibration" / name
        shutil.rmtree(folder, ignore_errors=True)
        capture = folder / "capture"
        source = Path(open_capture(self.info.capture_uri).store.local_root)
        shutil.copytree(source / "eval", capture / "eval")  # the reference pass; no production traffic
        for descriptor in source.glob("*.json"):
            shutil.copy(descriptor, capture / descriptor.name)
        return folder / "state", str(capture)

    def monitor(self, state: Path, capture_uri: str):
        from trustops.alerts import AlertManager
        from trustops.monitoring.checking import PassOptions
        from trustops.monitoring.loop import monitor_pass

        alerts = AlertManager.from_config(state / "alerts", [])
        info = type(self.info)(**{**self.info.__dict__, "tags": {**self.info.tags, "capture_uri": capture_uri}})
        return monitor_pass(self.model, info, state=state, alerts=alerts,
                            options=PassOptions(drift_report="never", **({"monitors": tuple(self.monitors)} if self.monitors else {})))


def batch_incidents(report) -> list[dict[str, Any]]:
    """Per monitored batch: which monitors alarmed and which incident kinds it opened."""
    from trustops.monitoring.batch_check import VIEWS

    rows = []
    for metrics in report.metrics:
        alarms = sorted(k.removesuffix(".alarm") for k, v in metrics.items() if k.endswith(".alarm") and v)
        rows.append({"step": metrics["step"], "alarms": alarms, "incidents": sorted({VIEWS[a].evidence for a in alarms})})
    return rows


def clean_run(loop: Loop, n_batches: int, per_pass: int) -> dict[str, Any]:
    from trustops.monitoring.budget import DEFAULT_FALSE_PAGE_BUDGET

    state, capture = loop.fresh_state("clean")
    per_batch: list[dict[str, Any]] = []
    raised = 0
    started = time.perf_counter()
    for start in range(0, n_batches, per_pass):
        for _ in range(min(per_pass, n_batches - start)):
            loop.serve(capture, *loop.clean())
        report = loop.monitor(state, capture)
        per_batch += batch_incidents(report)
        raised += sum(1 for a in report.alerts if a["kind"] in INCIDENTS)
        print(f"  clean: {len(per_batch)}/{n_batches} batches, {sum(bool(b['incidents']) for b in per_batch)} paged", flush=True)
    n = len(per_batch)
    pages = sum(bool(b["incidents"]) for b in per_batch)
    monitors = sorted({m for b in report.metrics for m in (k.removesuffix(".alarm") for k in b if k.endswith(".alarm"))})
    per_monitor = {}
    for name in monitors:
        k = sum(name in b["alarms"] for b in per_batch)
        per_monitor[name] = {"alarms": k, "rate": k / n, "interval95": clopper_pearson(k, n)}
    return {
        "batches": n, "pages": pages, "page_rate": pages / n, "page_rate_interval95": clopper_pearson(pages, n),
        "false_page_budget": DEFAULT_FALSE_PAGE_BUDGET, "alerts_raised": raised, "per_monitor": per_monitor,
        "paged_batches": [b for b in per_batch if b["incidents"]], "seconds": time.perf_counter() - started,
    }


def scenarios(loop: Loop) -> dict[str, Any]:
    """Scenario name -> function(batch index) -> (inputs, labels)."""
    import torch

    from trustops.attacks import pgd_attack

    low, high = loop.value_range
    noise = torch.Generator().manual_seed(1)
    column = int(loop.x.reshape(len(loop.x), -1).var(0).argmax())

    def rescaled(index):
        inputs, labels = loop.clean()
        flat = inputs.reshape(len(inputs), -1).clone()
        flat[:, column] = (flat[:, column] * 3).clamp(low, high)
        return flat.reshape(inputs.shape), labels

    def prior(index):
        keep = torch.nonzero(loop.y <= 2).flatten()
        rows = keep[torch.randperm(len(keep), generator=loop.generator)[:BATCH_SIZE]]
        return loop.x[rows], loop.y[rows]

    def pgd(norm, epsilon):
        def attacked(index):
            inputs, labels = loop.clean()
            return pgd_attack(loop.model, inputs, labels, norm=norm, epsilon=epsilon, step_size=epsilon / 4, steps=10,
                              clamp=(low, high)), labels
        return attacked

    def shifted(make):
        def batch(index):
            inputs, labels = loop.clean()
            return make(inputs, index).clamp(low, high), labels
        return batch

    return {
        "brightness +2 (abrupt)": shifted(lambda x, i: x + 2.0),
        "gradual brightening (+0.25 per batch)": shifted(lambda x, i: x + 0.25 * (i + 1)),
        "Gaussian noise sigma 2": shifted(lambda x, i: x + 2.0 * torch.randn(x.shape, generator=noise)),
        "label-prior shift (classes 0-2 only)": prior,
        f"rescaled feature (pixel {column} x3)": rescaled,
        "PGD L-inf epsilon 2": pgd("inf", 2.0),
        "PGD L2 epsilon 8": pgd("l2", 8.0),
    }


def shift_run(loop: Loop, n_batches: int) -> list[dict[str, Any]]:
    rows = []
    for index, (name, make) in enumerate(scenarios(loop).items()):
        state, capture = loop.fresh_state(f"shift-{index}")
        kinds_per_batch = []
        for batch in range(n_batches):
            loop.serve(capture, *make(batch))
            kinds_per_batch.append(batch_incidents(loop.monitor(state, capture))[0]["incidents"])
        first = next((i + 1 for i, kinds in enumerate(kinds_per_batch) if kinds), None)
        kinds = sorted({kind for batch_kinds in kinds_per_batch for kind in batch_kinds})
        rows.append({"scenario": name, "delay_batches": first, "incidents": kinds, "per_batch": kinds_per_batch,
                     "paged_as_adversarial": "suspected_adversarial" in kinds,
                     "paged_as_shift": "distribution_shift" in kinds})
        print(f"  {name}: first page at batch {first}, incidents {kinds}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--clean-batches", type=int, default=1500)
    parser.add_argument("--batches-per-pass", type=int, default=25)
    parser.add_argument("--shift-batches", type=int, default=8)
    parser.add_argument("--project", type=Path, default=None, help="an existing project with a trained default model")
    parser.add_argument("--monitors", nargs="+", default=None, help="monitors (default: the loop's defaults)")
    parser.add_argument("--quick", action="store_true", help="60 clean batches, 3 per shift scenario")
    args = parser.parse_args(argv)
    if args.quick:
        args.clean_batches, args.shift_batches = 60, 3

    import torch

    torch.set_num_threads(2)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="trustops-bench-calibration-") as folder:
        root = args.project or make_project(Path(folder) / "project")
        if args.project is None:
            train_default_model(root)
        loop = Loop(root)
        loop.monitors = args.monitors
        clean = clean_run(loop, args.clean_batches, args.batches_per_pass)
        print(f"clean: {clean['pages']} of {clean['batches']} batches paged "
              f"(rate {clean['page_rate']:.4f}, 95% CI {clean['page_rate_interval95'][0]:.4f}-{clean['page_rate_interval95'][1]:.4f})")
        shifts = shift_run(loop, args.shift_batches)
    report = {
        "machine": machine(), "settings": {k: str(v) for k, v in vars(args).items()},
        "batch_size": BATCH_SIZE, "clean": clean, "shifts": shifts, "seconds_total": time.perf_counter() - started,
    }
    write_report("monitor_calibration", report, args.out)
    return report


if __name__ == "__main__":
    main()
