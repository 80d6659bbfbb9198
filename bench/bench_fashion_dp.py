"""Fashion-MNIST under DP-SGD: test accuracy against ε per activation, and what trustops' wiring costs.

Run from the repository root (needs Debian's ``dataset-fashion-mnist``)::

    .venv/bin/python -m bench.bench_fashion_dp [--out bench/results/fashion_dp.json]   # reduced, CPU: a few minutes
    .venv/bin/python -m bench.bench_fashion_dp --quick      # smoke sizes (``python -m bench --quick``)
    .venv/bin/python -m bench.bench_fashion_dp --paper      # Tramèr & Boneh's sizes: hours on 2 CPU cores

Two parts, each measurement in a fresh worker process:

- **accuracy vs ε**: ``trustops.training.trainer.train_classifier`` (the product's training
  path: ``data=fashion_mnist``'s composed config, ``model=fashion_cnn``, Opacus ``make_private``
  with Poisson sampling and the budget calibration) for each activation and target ε at
  δ = 1e-5, plus one run without DP per activation; test accuracy on the official 10,000 test
  images.  The ``--paper`` sizes follow Tramèr & Boneh (2021), "Differentially private learning
  needs better features (or much more data)": Poisson batches of 2048, 40 epochs, clipping
  norm C = 0.1, SGD with learning rate 4 and momentum 0.9, ε of 1, 3 and 8.  Their end-to-end
  model is a tanh CNN; trustops' CNN family here is ``fashion_cnn`` (GroupNorm blocks) with
  each activation of ``--activations`` that trustops offers (relu, smelu, tanh by default).
- **epoch time**: trustops' DP training ÷ a bare Opacus loop (``PrivacyEngine.make_private``,
  forward, ``cross_entropy``, backward, ``step``) on the same model, data, batch size, Poisson
  sampling, noise multiplier and thread count; DP ÷ no DP for both; and the bare loop with
  ``grad_sample_mode="ghost"`` (Opacus's fast gradient / ghost clipping: per-sample gradient
  norms without storing per-sample gradients; the norm shortcut covers Linear layers, the conv
  and GroupNorm layers fall back to per-sample gradients).  An epoch's time is its training part
  (trustops: ``on_train_epoch_start`` to the validation pass; bare: one pass over the loader), so
  Poisson sampling and data loading count; the first epoch is a warm-up and the median of the
  others is kept.  Target: trustops ÷ bare ≤ 1.1.  trustops fits under deterministic algorithms
  (Lightning's ``deterministic=True``) but without PyTorch's NaN fill of new memory, which that mode
  also switches on and which cost Opacus's per-sample copies time without changing any result; the
  ``hooks_deterministic`` loop (deterministic algorithms with the fill, what trustops ran before)
  shows that cost.  Ghost clipping gives the same clipped update, hence the same guarantee, as
  hooks; on this CNN it is not faster, so trustops trains with hooks.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import epoch_clock, machine, report_from_worker, run_worker, write_report

TARGET_OVERHEAD = 1.1
DELTA = 1e-5

#: name -> sizes.  ``reduced`` is what a shared 2-core machine runs in minutes, and what results.md quotes.
CONFIGS: dict[str, dict[str, Any]] = {
    "paper": {"max_train_rows": None, "epochs": 40, "batch_size": 2048, "epsilons": [1.0, 3.0, 8.0],
              "activations": ["relu", "smelu", "tanh"], "timing_epochs": 3, "repeats": 2},
    "reduced": {"max_train_rows": 10_000, "epochs": 3, "batch_size": 512, "epsilons": [3.0],
                "activations": ["relu"], "timing_epochs": 3, "repeats": 1},
    "quick": {"max_train_rows": 2_000, "epochs": 1, "batch_size": 256, "epsilons": [3.0],
              "activations": ["relu"], "timing_epochs": 2, "repeats": 1},
}  # fmt: skip
HYPER = {"lr": 4.0, "momentum": 0.9, "max_grad_norm": 0.1}  # Tramèr & Boneh's, at every size


def overrides(npz: Path, *, activation: str, dp: bool, epsilon: float | None, epochs: int, batch_size: int,
              max_train_rows: int | None, seed: int) -> list[str]:
    """The ``trustops train`` overrides of one run (capture off: the bench measures training)."""
    common = [f"data.path={npz}", f"model.activation={activation}", f"trainer.max_epochs={epochs}",
              f"trainer.batch_size={batch_size}", f"trainer.momentum={HYPER['momentum']}",
              f"trainer.seed={seed}", "capture=off"]  # fmt: skip
    if max_train_rows is not None:
        common.append(f"data.max_train_rows={max_train_rows}")
    if not dp:
        # Unclipped gradients would blow up at DP's learning rate of 4: trustops' non-DP default (0.1) instead.
        return ["data=fashion_mnist", "dp=off", "trainer.lr=null", *common]
    return ["data=fashion_mnist", "dp=on", f"dp.target_epsilon={epsilon}", f"dp.target_delta={DELTA}",
            f"dp.max_grad_norm={HYPER['max_grad_norm']}", f"trainer.lr={HYPER['lr']}", *common]  # fmt: skip


def _load(cfg_overrides: list[str]):
    from configs.training import settings_from_config
    from trustops.configuration import compose_config
    from trustops.data.loading import load_configured

    settings = settings_from_config(compose_config(cfg_overrides))
    frame, info = load_configured(Path(settings.data.path), settings.data)
    return settings, frame, info


def _steady(seconds: list[float]) -> float:
    """The median epoch after the warm-up epoch."""
    return statistics.median(seconds[1:] or seconds)


def trustops_worker(cfg_overrides: list[str], threads: int) -> dict[str, Any]:
    """One ``train_classifier`` run: test accuracy, ε spent and the epoch times."""
    import torch

    from trustops.evaluation import evaluate_classifier
    from trustops.training.tensors import split_dataset
    from trustops.training.trainer import train_classifier

    torch.set_num_threads(threads)
    settings, frame, info = _load(cfg_overrides)
    clock = epoch_clock()
    started = time.perf_counter()
    result = train_classifier(frame, info, settings, callbacks=[clock])
    seconds = time.perf_counter() - started
    test = split_dataset(frame, "test", feature_columns=info.feature_columns, label_column=info.label_column,
                         split_column=info.split_column, input_shape=info.input_shape, classes=info.classes)  # fmt: skip
    evaluation = evaluate_classifier(result.model, *test.tensors, info.classes)
    return {
        "activation": settings.model.activation, "dp": settings.dp.enabled, "target_epsilon": settings.dp.target_epsilon,
        "dp_epsilon": result.dp_epsilon, "dp_delta": result.dp_delta, "noise_multiplier": result.noise_multiplier,
        "test_accuracy": evaluation.accuracy, "n_train": info.split_sizes["train"], "n_test": info.split_sizes["test"],
        "epochs": settings.trainer.max_epochs, "batch_size": settings.trainer.batch_size,
        "epoch_seconds": clock.seconds, "median_epoch_seconds": _steady(clock.seconds), "train_seconds": seconds,
    }  # fmt: skip


def bare_worker(cfg_overrides: list[str], mode: str, noise_multiplier: float, threads: int) -> dict[str, Any]:
    """The same model, data and batch size in a plain loop: ``mode`` is ``hooks``/``ghost`` (DP) or ``no_dp``;
    ``hooks_deterministic`` is ``hooks`` under ``torch.use_deterministic_algorithms(True)``, what trustops'
    ``Trainer(deterministic=True)`` switches on (it also fills every new tensor's memory, see torch.utils.deterministic)."""
    import warnings

    import torch
    import torch.nn.functional as F
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader

    from trustops.models.networks import build_classifier
    from trustops.training.tensors import split_dataset

    torch.set_num_threads(threads)
    if mode == "hooks_deterministic":
        torch.use_deterministic_algorithms(True)
        mode = "hooks"
    settings, frame, info = _load(cfg_overrides)
    torch.manual_seed(settings.trainer.seed)
    train = split_dataset(frame, "train", feature_columns=info.feature_columns, label_column=info.label_column,
                          split_column=info.split_column, input_shape=info.input_shape, classes=info.classes)  # fmt: skip
    model = build_classifier(settings.model.family, info.input_shape, len(info.classes), hidden=settings.model.hidden,
                             channels=settings.model.channels, activation=settings.model.activation, beta=settings.model.beta)  # fmt: skip
    model.set_input_statistics(float(train.tensors[0].mean()), float(train.tensors[0].std()))  # as train_classifier does
    optimizer = torch.optim.SGD(model.parameters(), lr=settings.learning_rate, momentum=settings.trainer.momentum)
    loader = DataLoader(train, batch_size=settings.trainer.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(settings.trainer.seed))  # fmt: skip
    criterion = F.cross_entropy
    if mode != "no_dp":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the "secure RNG off" reminder
            engine = PrivacyEngine(accountant="rdp")
            private = engine.make_private(
                module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=noise_multiplier,
                max_grad_norm=settings.dp.max_grad_norm, poisson_sampling=True, loss_reduction="mean",
                grad_sample_mode=mode, **({"criterion": torch.nn.CrossEntropyLoss()} if mode == "ghost" else {}),
            )  # fmt: skip
        if mode == "ghost":
            model, optimizer, criterion, loader = private
        else:
            model, optimizer, loader = private
    model.train()
    seconds = []
    for _ in range(settings.trainer.max_epochs):
        started = time.perf_counter()
        for inputs, targets in loader:
            optimizer.zero_grad()
            logits = model(inputs)
            loss = criterion(logits, targets) if len(targets) else logits.sum() * 0.0  # an empty Poisson batch still steps
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - started)
    return {"mode": mode, "epoch_seconds": seconds, "median_epoch_seconds": _steady(seconds), "n_train": len(train)}


def _worker_main(args: argparse.Namespace) -> None:
    cfg_overrides = args.overrides
    if args.worker == "trustops":
        report_from_worker(trustops_worker(cfg_overrides, args.threads))
    else:
        report_from_worker(bare_worker(cfg_overrides, args.worker, args.noise_multiplier, args.threads))


def _export(folder: Path, source_dir: Path | None) -> Path:
    from trustops.data.fashion_mnist import DEFAULT_SOURCE_DIR, export_fashion_mnist

    return export_fashion_mnist(folder / "fashion_mnist.npz", source_dir=source_dir or DEFAULT_SOURCE_DIR, seed=0)


def _worker(kind: str, cfg_overrides: list[str], threads: int, *, noise_multiplier: float | None = None) -> dict[str, Any]:
    extra = ["--noise-multiplier", str(noise_multiplier)] if noise_multiplier is not None else []
    return run_worker("bench_fashion_dp", [kind, "--threads", str(threads), *extra, "--", *cfg_overrides], timeout=6 * 3600)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true", help="smoke sizes: 2,000 training images, 1 epoch (the figures mean little)")
    sizes.add_argument("--paper", action="store_true", help="Tramèr & Boneh's sizes: all 55,000 training images, 40 epochs, batch 2048")
    parser.add_argument("--activations", nargs="+", default=None, help="override the configuration's activations")
    parser.add_argument("--epsilons", nargs="+", type=float, default=None, help="override the configuration's target ε values")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in every worker (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--source-dir", type=Path, default=None, help="the Fashion-MNIST IDX files (default: Debian's folder)")
    parser.add_argument("--skip-ghost", action="store_true", help="leave out the ghost-clipping loop")
    parser.add_argument("--skip-no-dp", action="store_true",
                        help="leave out the run without DP per activation (an anchor point against the papers' DP figure)")
    parser.add_argument("--skip-timing", action="store_true", help="leave out the epoch-time ratios (accuracy only)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--worker", choices=("trustops", "hooks", "hooks_deterministic", "ghost", "no_dp"), default=None,
                        help=argparse.SUPPRESS)
    parser.add_argument("--noise-multiplier", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker_main(args)
        return {}

    from trustops.models.activations import ACTIVATIONS

    name = "quick" if args.quick else "paper" if args.paper else "reduced"
    config = dict(CONFIGS[name])
    config["activations"] = args.activations or config["activations"]
    config["epsilons"] = args.epsilons or config["epsilons"]
    runnable = [a for a in config["activations"] if a in ACTIVATIONS]
    report: dict[str, Any] = {
        "machine": machine(), "configuration": name, "config": config, "hyperparameters": HYPER, "delta": DELTA,
        "threads": args.threads, "seed": args.seed,
        # An activation trustops does not offer is recorded as not run, not silently dropped.
        "not_run": {a: f"not a trustops activation (model.activation is one of {', '.join(ACTIVATIONS)})"
                    for a in config["activations"] if a not in ACTIVATIONS},
        "accuracy": [], "timing": {},
    }  # fmt: skip
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        npz = _export(Path(folder), args.source_dir)
        sizes = {k: config[k] for k in ("epochs", "batch_size", "max_train_rows")}
        for activation in runnable:
            for epsilon in [*([] if args.skip_no_dp else [None]), *config["epsilons"]]:
                run = _worker("trustops", overrides(npz, activation=activation, dp=epsilon is not None, epsilon=epsilon,
                                                    seed=args.seed, **sizes), args.threads)  # fmt: skip
                report["accuracy"].append(run)
                privacy = f"DP ε={epsilon:g} (spent {run['dp_epsilon']:.2f})" if epsilon else "no DP"
                print(f"{activation}, {privacy}: test accuracy {run['test_accuracy']:.4f} "
                      f"({run['n_train']:,} training images, {run['epochs']} epochs, {run['train_seconds']:.0f} s)", flush=True)

        if not args.skip_timing:
            # Timing: the first activation at the middle ε; the noise level does not change the work done.
            activation, epsilon = runnable[0], sorted(config["epsilons"])[len(config["epsilons"]) // 2]
            timing = {**sizes, "epochs": config["timing_epochs"]}
            dp_overrides = overrides(npz, activation=activation, dp=True, epsilon=epsilon, seed=args.seed, **timing)
            no_dp_overrides = overrides(npz, activation=activation, dp=False, epsilon=None, seed=args.seed, **timing)
            runs: dict[str, list[dict[str, Any]]] = {}
            for repeat in range(config["repeats"]):
                trustops_dp = _worker("trustops", dp_overrides, args.threads)
                sigma = trustops_dp["noise_multiplier"]
                measured = {"trustops_dp": lambda: trustops_dp,
                            "bare_dp": lambda: _worker("hooks", dp_overrides, args.threads, noise_multiplier=sigma),
                            "bare_dp_deterministic": lambda: _worker("hooks_deterministic", dp_overrides, args.threads,
                                                                     noise_multiplier=sigma),
                            "trustops_no_dp": lambda: _worker("trustops", no_dp_overrides, args.threads),
                            "bare_no_dp": lambda: _worker("no_dp", no_dp_overrides, args.threads),
                            **({} if args.skip_ghost else
                               {"bare_ghost": lambda: _worker("ghost", dp_overrides, args.threads, noise_multiplier=sigma)})}  # fmt: skip
                order = list(measured) if repeat % 2 == 0 else list(reversed(measured))  # alternate which runs first
                for key in order:
                    runs.setdefault(key, []).append(measured[key]())
            seconds = {key: statistics.median(r["median_epoch_seconds"] for r in values) for key, values in runs.items()}
            report["timing"] = {
                "activation": activation, "target_epsilon": epsilon, "noise_multiplier": runs["trustops_dp"][0]["noise_multiplier"],
                "n_train": runs["trustops_dp"][0]["n_train"], "batch_size": config["batch_size"], "epochs_per_run": config["timing_epochs"],
                "repeats": config["repeats"], "epoch_seconds": seconds,
                "trustops_over_bare_dp": seconds["trustops_dp"] / seconds["bare_dp"],
                "trustops_over_bare_no_dp": seconds["trustops_no_dp"] / seconds["bare_no_dp"],
                "dp_over_no_dp_trustops": seconds["trustops_dp"] / seconds["trustops_no_dp"],
                "dp_over_no_dp_bare": seconds["bare_dp"] / seconds["bare_no_dp"],
                "deterministic_over_plain_bare_dp": seconds["bare_dp_deterministic"] / seconds["bare_dp"],
                **({"ghost_over_hooks_bare": seconds["bare_ghost"] / seconds["bare_dp"]} if "bare_ghost" in seconds else {}),
                "runs": runs,
            }  # fmt: skip
    if not args.skip_timing:
        timing = report["timing"]
        print(f"epoch: trustops DP {seconds['trustops_dp']:.2f} s vs bare Opacus {seconds['bare_dp']:.2f} s "
              f"({timing['trustops_over_bare_dp']:.2f}x, target <= {TARGET_OVERHEAD}); DP / no DP: trustops "
              f"{timing['dp_over_no_dp_trustops']:.2f}x, bare {timing['dp_over_no_dp_bare']:.2f}x"
              + (f"; ghost / hooks {timing['ghost_over_hooks_bare']:.2f}x" if "ghost_over_hooks_bare" in timing else ""), flush=True)
    report["target"] = {"trustops_over_bare_dp_max": TARGET_OVERHEAD}
    report["seconds_total"] = time.perf_counter() - started
    write_report("fashion_dp", report, args.out)
    return report


if __name__ == "__main__":
    main()
