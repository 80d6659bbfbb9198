"""Tabular data: trustops' tabular model against a plain baseline, on scikit-learn's tables.

Run from the repository root::

    .venv/bin/python -m bench.bench_tabular_baselines [--quick] [--seeds 5] [--out bench/results/tabular_baselines.json]

Tables: iris, wine and breast_cancer as scikit-learn ships them, and a ``make_classification``
table whose eight numeric features are rescaled to scales from 1e-3 to 1e4 plus one string
categorical column.  Each table is written to CSV and read back through trustops' own loader
(``load_dataset``: checks, seeded stratified 60/20/20 split, categorical codes), then trained
in-process with ``train_classifier`` exactly as ``trustops train data=table`` configures it
(``model=tabular``, the ``trainer=tabular`` defaults), without DP, with DP at ε = 8 and at ε = 3.
Under DP the columns are scaled by declared bounds (``data.feature_ranges``); here those
bounds stand in for public metadata and are the whole table's min and max widened by 10% of
the span, which a real deployment would take from documentation, not from the rows.

Baseline: scikit-learn ``LogisticRegression`` on a ``StandardScaler``'d copy (the categorical
column one-hot), fitted on the same training rows and scored on the same test rows.  Five
seeds (split and training seed together); mean ± s.d. of test accuracy.  Targets: without
DP within 2 points of the baseline; DP at ε = 8 within 5 points.

Monitors (``--monitor-tables``): in a throw-away project, ``trustops train data=table dp=off``
through the real CLI, then the composed loop (``trustops.monitoring.loop.monitor_pass`` with
the default monitors and false-page budget, as ``bench.bench_monitor_calibration`` runs it):
50 clean batches of 50 rows drawn from the test split, then, each from fresh monitor state,
5 batches with the highest-variance column x3 and 5 batches of one class's rows only.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench._common import machine, write_report

TABLES = ("iris", "wine", "breast_cancer", "wide_scales")
VARIANTS = {"no_dp": None, "dp_eps8": 8.0, "dp_eps3": 3.0}
TARGETS = {"no_dp": 0.02, "dp_eps8": 0.05}


def make_table(name: str) -> tuple[pd.DataFrame, list[str]]:
    """The table with a ``label`` column, and its categorical columns."""
    from sklearn import datasets

    if name == "wide_scales":
        features, labels = datasets.make_classification(
            n_samples=1000, n_features=8, n_informative=5, n_redundant=1, n_classes=3, n_clusters_per_class=1,
            class_sep=1.0, random_state=0,
        )
        scales = np.logspace(-3, 4, features.shape[1])
        frame = pd.DataFrame(features * scales + 10 * scales, columns=[f"x{i}" for i in range(features.shape[1])])
        # A categorical column that carries signal: a noisy copy of the label, as strings.
        rng = np.random.default_rng(0)
        noisy = np.where(rng.random(len(labels)) < 0.6, labels, rng.integers(0, 3, len(labels)))
        frame["colour"] = np.array(["red", "green", "blue"])[noisy]
        frame["label"] = labels
        return frame, ["colour"]
    loaded = getattr(datasets, f"load_{name}")()
    frame = pd.DataFrame(loaded.data, columns=[str(c).replace(" ", "_") for c in loaded.feature_names])
    frame["label"] = loaded.target
    return frame, []


def public_ranges(frame: pd.DataFrame, numeric: list[str]) -> dict[str, list[float]]:
    """Stand-in for published bounds: the table's span widened by 10% on each side."""
    low, high = frame[numeric].min(), frame[numeric].max()
    pad = 0.1 * (high - low)
    return {c: [float(low[c] - pad[c]), float(high[c] + pad[c])] for c in numeric}


def settings_for(path: Path, categorical: list[str], ranges: dict[str, list[float]], seed: int, epsilon: float | None, epochs: int | None):
    from configs.training import TABULAR_MODEL_DEFAULTS, TABULAR_TRAINER_DEFAULTS
    from trustops.settings import CaptureSettings, DataSettings, DPSettings, ModelSettings, TrainerSettings, TrainSettings

    trainer = TrainerSettings(**{**TABULAR_TRAINER_DEFAULTS, "seed": seed, **({"max_epochs": epochs} if epochs else {})})
    return TrainSettings(
        data=DataSettings(path=str(path), split_seed=seed, categorical_columns=categorical or None, feature_ranges=ranges),
        model=ModelSettings(**TABULAR_MODEL_DEFAULTS),
        trainer=trainer,
        dp=DPSettings(enabled=True, target_epsilon=epsilon) if epsilon else DPSettings(enabled=False, target_epsilon=None),
        capture=CaptureSettings(enabled=False),
    )


def baseline_accuracy(frame: pd.DataFrame, info) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    numeric = [c for c in info.feature_columns if c not in info.categories]
    def design(rows: pd.DataFrame) -> np.ndarray:
        parts = [rows[numeric].to_numpy(np.float64)]
        for column, vocabulary in info.categories.items():
            parts.append(np.eye(len(vocabulary))[rows[column].to_numpy(int).clip(0)] * (rows[column].to_numpy() >= 0)[:, None])
        return np.hstack(parts)

    train, test = (frame[frame[info.split_column] == s] for s in ("train", "test"))
    scaler = StandardScaler().fit(design(train))
    model = LogisticRegression(max_iter=5000).fit(scaler.transform(design(train)), train[info.label_column])
    return float(model.score(scaler.transform(design(test)), test[info.label_column]))


def trustops_accuracy(frame: pd.DataFrame, info, settings) -> tuple[float, float | None, Any]:
    import torch

    from trustops.training.tensors import split_dataset
    from trustops.training.trainer import train_classifier

    result = train_classifier(frame, info, settings)
    test = split_dataset(frame, "test", feature_columns=info.feature_columns, label_column=info.label_column,
                         split_column=info.split_column, input_shape=info.input_shape, classes=info.classes)
    with torch.no_grad():
        predictions = result.model(test.tensors[0]).argmax(1)
    return float((predictions == test.tensors[1]).float().mean()), result.dp_epsilon, result.model


def run_table(name: str, seeds: list[int], folder: Path, epochs: int | None) -> dict[str, Any]:
    from trustops.data.loading import load_dataset

    table, categorical = make_table(name)
    path = folder / f"{name}.csv"
    table.to_csv(path, index=False)
    numeric = [c for c in table.columns if c not in ("label", *categorical)]
    ranges = public_ranges(table, numeric)
    accuracy: dict[str, list[float]] = {"baseline": [], **{v: [] for v in VARIANTS}}
    epsilons: dict[str, list[float]] = {v: [] for v in VARIANTS if VARIANTS[v]}
    seconds: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for seed in seeds:
        frame, info = load_dataset(path, split_seed=seed, categorical_columns=categorical or None)
        accuracy["baseline"].append(baseline_accuracy(frame, info))
        for variant, epsilon in VARIANTS.items():
            begun = time.perf_counter()
            score, spent, _ = trustops_accuracy(frame, info, settings_for(path, categorical, ranges, seed, epsilon, epochs))
            seconds[variant].append(time.perf_counter() - begun)
            accuracy[variant].append(score)
            if epsilon:
                epsilons[variant].append(spent)
        print(f"{name} seed {seed}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in accuracy.items()), flush=True)
    summary = {k: {"mean": statistics.fmean(v), "sd": statistics.stdev(v) if len(v) > 1 else 0.0, "values": v} for k, v in accuracy.items()}
    gaps = {v: summary["baseline"]["mean"] - summary[v]["mean"] for v in VARIANTS}
    return {
        "table": name, "rows": len(table), "features": len(table.columns) - 1, "classes": int(table["label"].nunique()),
        "n_train": info.split_sizes["train"], "n_test": info.split_sizes["test"], "accuracy": summary,
        "gap_to_baseline": gaps, "met": {v: gaps[v] <= TARGETS[v] for v in TARGETS},
        "dp_epsilon_spent_max": {k: max(v) for k, v in epsilons.items()},
        "train_seconds_median": {k: statistics.median(v) for k, v in seconds.items()},
    }


MONITOR_BATCH = 50


def monitor_check(name: str, folder: Path, *, clean_batches: int = 50, shift_batches: int = 5) -> dict[str, Any]:
    """Pages on clean held-out batches and on two shifts, through the real training CLI and monitor loop."""
    import subprocess
    import sys

    import torch

    from bench._common import isolated_env
    from bench.bench_monitor_calibration import Loop, batch_incidents

    root = folder / f"project-{name}"
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "dvc.yaml").write_text("stages: {}\n")
    table, categorical = make_table(name)
    table.to_csv(root / "data" / f"{name}.csv", index=False)
    command = [str(Path(sys.executable).parent / "trustops"), "train", "data=table", f"data.path=data/{name}.csv", "dp=off"]
    if categorical:
        command.append(f"data.categorical_columns=[{','.join(categorical)}]")
    done = subprocess.run(command, cwd=root, env=isolated_env(root), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"trustops train failed:\n{done.stderr[-3000:]}")

    class TableLoop(Loop):
        def __init__(self) -> None:
            import os

            import mlflow
            from mlflow.tracking import MlflowClient

            from trustops.data.registered import load_split
            from trustops.registry import resolve_registered_model

            os.environ["TRUSTOPS_PROJECT_ROOT"] = str(root)
            uri = f"sqlite:///{root / '.trustops' / 'mlflow.db'}"
            mlflow.set_tracking_uri(uri)
            mlflow.set_registry_uri(uri)
            self.info = resolve_registered_model(f"trustops-{name}", "latest", MlflowClient(uri, uri))
            self.model = mlflow.pytorch.load_model(self.info.model_uri).eval()
            self.x, self.y, self.value_range = load_split(self.info, "test")
            self.root, self.monitors = root, None
            self.generator = torch.Generator().manual_seed(0)

        def clean(self):
            rows = torch.randperm(len(self.x), generator=self.generator)[:MONITOR_BATCH]
            return self.x[rows], self.y[rows]

    loop = TableLoop()
    state, capture = loop.fresh_state("clean")
    clean = []
    for start in range(0, clean_batches, 10):
        for _ in range(min(10, clean_batches - start)):
            loop.serve(capture, *loop.clean())
        clean += batch_incidents(loop.monitor(state, capture))
    features = [c for c in table.columns if c != "label"]
    numeric = [i for i, c in enumerate(features) if c not in categorical]
    spread = loop.x.var(0) / (loop.x.mean(0) ** 2 + 1e-12)  # relative spread: comparable across scales
    column = max(numeric, key=lambda i: float(spread[i]))

    def rescaled():
        inputs, labels = loop.clean()
        inputs = inputs.clone()
        inputs[:, column] *= 3
        return inputs, labels

    def one_class():
        keep = torch.nonzero(loop.y == 0).flatten()
        rows = keep[torch.randperm(len(keep), generator=loop.generator)[:MONITOR_BATCH]]
        return loop.x[rows], loop.y[rows]

    shifts = {}
    for label, make in ((f"column {features[column]} x3", rescaled), ("class 0 rows only", one_class)):
        state, capture = loop.fresh_state(label.replace(" ", "-"))
        kinds = []
        for _ in range(shift_batches):
            loop.serve(capture, *make())
            kinds.append(batch_incidents(loop.monitor(state, capture))[0]["incidents"])
        shifts[label] = {"first_page_batch": next((i + 1 for i, k in enumerate(kinds) if k), None), "per_batch": kinds,
                         "paged_as_drift": any("distribution_shift" in k for k in kinds)}
    result = {"table": name, "clean_batches": len(clean), "clean_pages": sum(bool(b["incidents"]) for b in clean),
              "clean_alarms": sorted({a for b in clean for a in b["alarms"]}), "paged_clean": [b for b in clean if b["incidents"]],
              "shifts": shifts}
    print(f"monitors {name}: {result['clean_pages']}/{len(clean)} clean batches paged; "
          + "; ".join(f"{k}: first page {v['first_page_batch']}" for k, v in shifts.items()), flush=True)
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tables", nargs="+", choices=TABLES, default=list(TABLES))
    parser.add_argument("--epochs", type=int, default=None, help="override the trainer's epochs (smoke runs)")
    parser.add_argument("--quick", action="store_true", help="two seeds, iris and wide_scales only")
    parser.add_argument("--monitor-tables", nargs="*", choices=TABLES, default=None,
                        help="tables whose monitors are checked on clean and shifted batches (default: breast_cancer "
                             "wide_scales; --quick: wide_scales; give none to skip)")
    parser.add_argument("--skip-accuracy", action="store_true", help="only the monitor check")
    args = parser.parse_args(argv)
    import logging
    import warnings

    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    seeds = list(range(2 if args.quick else args.seeds))
    if args.monitor_tables is None:
        args.monitor_tables = ["wide_scales"] if args.quick else ["breast_cancer", "wide_scales"]
    tables = ["iris", "wide_scales"] if args.quick else args.tables
    report: dict[str, Any] = {"machine": machine(), "seeds": seeds, "targets": TARGETS, "results": []}
    begun = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        for name in [] if args.skip_accuracy else tables:
            report["results"].append(run_table(name, seeds, Path(folder), args.epochs))
        report["monitors"] = [monitor_check(name, Path(folder)) for name in args.monitor_tables]
    report["seconds"] = time.perf_counter() - begun
    write_report("tabular_baselines", report, args.out)
    return report


if __name__ == "__main__":
    main()
