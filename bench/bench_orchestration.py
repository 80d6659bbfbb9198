"""Orchestration overhead: the training pipeline via ZenML + MLflow ÷ the same steps as plain functions.

Run from the repository root::

    .venv/bin/python -m bench.bench_orchestration [--quick] [--out bench/results/orchestration.json]

Everything happens in a throw-away trustops project (a temporary folder with its own
``dvc.yaml``, digits table, MLflow and ZenML stores, selected by ``TRUSTOPS_PROJECT_ROOT``),
in one fresh process, so the repository's own ``.trustops`` state is never touched.

* **pipeline**: ``trustops.runs.training.run_training`` (what ``trustops train`` runs): the
  ZenML pipeline ``load_data -> validate_data -> train_model -> evaluate_model ->
  register_model`` on the trustops stack, every step on one MLflow run, model registered;
* **plain**: the same five step functions (``step.entrypoint``) called one after another
  inside one ``mlflow.start_run`` on the same tracking store, model registered.

The model is the digits MLP, 2 epochs, no DP, capture on: the steps' own work is the same
in both, so the difference is the orchestration.  The first pipeline run also creates the
ZenML store and stack; it is timed separately and left out.  Runs alternate; medians.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench._common import digits_settings, isolated_env, machine, make_project, report_from_worker, run_worker, write_report

TARGET_OVERHEAD_S = 10.0


def worker(repeats: int) -> dict[str, Any]:
    import logging

    import torch
    import yaml

    torch.set_num_threads(1)
    from trustops.paths import project_root
    from trustops.stack import configure_zenml_environment

    root = project_root()
    configure_zenml_environment(root)
    import mlflow

    from steps import evaluate_model, load_data, register_model, train_model, validate_data
    from trustops.paths import default_tracking_uri
    from trustops.runs.training import run_training
    from trustops.tracking import ensure_experiment

    logging.getLogger("zenml").setLevel(logging.WARNING)
    settings = digits_settings(family="mlp", epochs=2, capture=True, experiment_name="bench-orchestration")
    resolved = yaml.safe_dump(settings.to_dict())
    tracking_uri = default_tracking_uri(root)

    def pipeline() -> None:
        run_training(settings, resolved)

    def plain() -> None:
        import dataclasses

        run_settings = dataclasses.replace(
            settings, capture=dataclasses.replace(settings.capture, uri=str(root / ".trustops" / "captures" / uuid.uuid4().hex))
        )
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        experiment_id = ensure_experiment("bench-orchestration-plain", tracking_uri, root)
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"plain-{uuid.uuid4().hex[:6]}"):
            dataset, info = load_data.entrypoint(settings=run_settings, resolved_config=resolved, run_tags={"trustops_job": "train"})
            validate_data.entrypoint(dataset=dataset, dataset_info=info, data_settings=run_settings.data)
            model, summary = train_model.entrypoint(dataset=dataset, dataset_info=info, settings=run_settings)
            evaluation = evaluate_model.entrypoint(model=model, dataset=dataset, dataset_info=info)
            register_model.entrypoint(
                model=model, dataset=dataset, dataset_info=info, training_summary=summary, evaluation=evaluation,
                settings=run_settings,
            )  # fmt: skip

    def timed(fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    first_pipeline = timed(pipeline)  # creates the ZenML store and stack
    first_plain = timed(plain)
    seconds: dict[str, list[float]] = {"pipeline": [], "plain": []}
    for repeat in range(repeats):
        for name in (("pipeline", "plain") if repeat % 2 == 0 else ("plain", "pipeline")):
            seconds[name].append(timed(pipeline if name == "pipeline" else plain))
    return {"first_pipeline_s": first_pipeline, "first_plain_s": first_plain, "seconds": seconds,
            "monitor": _monitor_pass_overhead(settings, repeats)}


def _monitor_pass_overhead(settings, repeats: int) -> dict[str, Any]:
    """One monitor pass over the same 5 new batches: the ZenML monitor pipeline ÷ ``monitor_pass`` called directly.

    Each pass has its own state folder, so each sees all the batches served just before it.
    """
    import shutil

    import mlflow
    import torch

    from trustops.alerts import AlertManager
    from trustops.capture import ActivationCapture
    from trustops.data.registered import load_split
    from trustops.monitoring.checking import PassOptions
    from trustops.monitoring.loop import monitor_pass
    from trustops.paths import default_tracking_uri, project_root
    from trustops.registry import resolve_registered_model
    from trustops.runs.monitoring import monitor_state, run_monitor

    from mlflow.tracking import MlflowClient

    monitors = ["mmd_adversarial", "prediction_shift", "mean_confidence"]
    name = settings.tracking.registered_model_name
    tracking_uri = default_tracking_uri()  # explicit: a finished ZenML run leaves MLflow's globals at its defaults
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    found = resolve_registered_model(name, "latest", MlflowClient(tracking_uri, tracking_uri))
    model = mlflow.pytorch.load_model(found.model_uri).eval()
    x, _, _ = load_split(found, "test")
    state = monitor_state(project_root(), found)

    def serve() -> None:
        with ActivationCapture(model, found.capture_uri, mode="predict") as capture, torch.inference_mode():
            for start in range(0, 5 * 60, 60):
                model(x[start : start + 60])
            capture.flush()

    def pipeline() -> None:
        run_monitor(name, str(found.version), PassOptions(monitors=tuple(monitors)))

    def plain() -> None:
        shutil.rmtree(state.with_name("plain"), ignore_errors=True)
        monitor_pass(model, found, state=state.with_name("plain"), options=PassOptions(monitors=tuple(monitors)),
                     alerts=AlertManager.from_config(state.with_name("plain") / "alerts", ["console"]))

    seconds: dict[str, list[float]] = {"pipeline": [], "plain": []}
    for repeat in range(repeats + 1):
        shutil.rmtree(state, ignore_errors=True)  # both see every batch served so far
        serve()
        for kind in (("pipeline", "plain") if repeat % 2 == 0 else ("plain", "pipeline")):
            start = time.perf_counter()
            pipeline() if kind == "pipeline" else plain()
            if repeat:  # the first pair warms the caches (imports, the reference)
                seconds[kind].append(time.perf_counter() - start)
    return {"seconds": seconds, "pipeline_median_s": statistics.median(seconds["pipeline"]),
            "plain_median_s": statistics.median(seconds["plain"])}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one timed run each")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        report_from_worker(worker(args.repeats))
        return {}
    if args.quick:
        args.repeats = 1
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="trustops-bench-orchestration-") as folder:
        root = make_project(Path(folder) / "project")
        measured = run_worker("bench_orchestration", ["--repeats", str(args.repeats)], env=isolated_env(root), timeout=1200)
    pipeline_s = statistics.median(measured["seconds"]["pipeline"])
    plain_s = statistics.median(measured["seconds"]["plain"])
    report: dict[str, Any] = {
        "machine": machine(),
        "settings": {k: str(v) for k, v in vars(args).items()},
        "pipeline_median_s": pipeline_s,
        "plain_median_s": plain_s,
        "overhead_s": pipeline_s - plain_s,
        "ratio_pipeline_over_plain": pipeline_s / plain_s,
        **measured,
        "target": {"overhead_s_max": TARGET_OVERHEAD_S},
        "seconds_total": time.perf_counter() - started,
    }
    print(
        f"training pipeline: ZenML+MLflow {pipeline_s:.1f} s, plain step functions {plain_s:.1f} s -> "
        f"{report['ratio_pipeline_over_plain']:.2f}x, +{report['overhead_s']:.1f} s per run "
        f"(first run, creating the ZenML store: {measured['first_pipeline_s']:.1f} s)",
        flush=True,
    )
    monitor = measured["monitor"]
    report["monitor_overhead_s"] = monitor["pipeline_median_s"] - monitor["plain_median_s"]
    report["monitor_ratio"] = monitor["pipeline_median_s"] / monitor["plain_median_s"]
    print(f"monitor pass: ZenML+MLflow {monitor['pipeline_median_s']:.1f} s, plain {monitor['plain_median_s']:.1f} s -> "
          f"{report['monitor_ratio']:.2f}x, +{report['monitor_overhead_s']:.1f} s per run", flush=True)
    write_report("orchestration", report, args.out)
    return report


if __name__ == "__main__":
    main()
