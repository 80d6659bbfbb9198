"""Fashion-MNIST prediction difference: does SmeLU make retrained models agree more than ReLU does?

Run from the repository root (needs Debian's ``dataset-fashion-mnist``)::

    .venv/bin/python -m bench.bench_fashion_pd [--out bench/results/fashion_pd.json]   # reduced, CPU
    .venv/bin/python -m bench.bench_fashion_pd --quick      # smoke sizes (``python -m bench --quick``)
    .venv/bin/python -m bench.bench_fashion_pd --full       # all 55,000 training images, 10 pairs, 15 epochs

For each activation, ``pairs`` pairs of ``fashion_cnn`` models: a pair shares its initialisation
seed and differs only in data order (``trustops.trust.reproducibility.train_pair``, the code behind
``trustops trust reproducibility``), trained without DP through ``train_classifier`` on the
``data=fashion_mnist`` config.  Its prediction difference on the 10,000 official test images is
the relative PD on the true class and the total-variation PD (see
:mod:`trustops.trust.prediction_difference`); the figure is the mean ± standard deviation over pairs.
Shamir et al. report SmeLU roughly halving PD relative to ReLU; whether a reduced run shows it is
what the table says, with the spread, not a claim.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import machine, write_report

CONFIGS: dict[str, dict[str, Any]] = {
    "full": {"max_train_rows": None, "epochs": 15, "pairs": 10, "variants": [("relu", 1.0), ("smelu", 1.0)]},
    "reduced": {"max_train_rows": 3_000, "epochs": 2, "pairs": 5, "variants": [("relu", 1.0), ("smelu", 1.0)]},
    "quick": {"max_train_rows": 1_000, "epochs": 1, "pairs": 2, "variants": [("relu", 1.0), ("smelu", 1.0)]},
}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true", help="smoke sizes: 1,000 training images, 2 pairs, 1 epoch")
    sizes.add_argument("--full", action="store_true", help="all 55,000 training images, 10 pairs, 15 epochs")
    parser.add_argument("--pairs", type=int, default=None, help="override the configuration's number of pairs")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: %(default)s)")
    parser.add_argument("--source-dir", type=Path, default=None, help="the Fashion-MNIST IDX files (default: Debian's folder)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    from configs.training import settings_from_config
    from trustops.configuration import compose_config
    from trustops.data.fashion_mnist import DEFAULT_SOURCE_DIR, export_fashion_mnist
    from trustops.data.loading import load_configured
    from trustops.trust.reproducibility import Variant, summarize, train_pair

    torch.set_num_threads(args.threads)
    name = "quick" if args.quick else "full" if args.full else "reduced"
    config = dict(CONFIGS[name])
    config["pairs"] = args.pairs or config["pairs"]
    report: dict[str, Any] = {"machine": machine(), "configuration": name, "config": config, "threads": args.threads, "pairs": []}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        npz = export_fashion_mnist(Path(folder) / "fashion_mnist.npz", source_dir=args.source_dir or DEFAULT_SOURCE_DIR, seed=0)
        cap = [f"data.max_train_rows={config['max_train_rows']}"] if config["max_train_rows"] else []
        base = settings_from_config(compose_config(
            ["data=fashion_mnist", f"data.path={npz}", *cap, "dp=off", f"trainer.max_epochs={config['epochs']}", "capture=off"]
        ))  # fmt: skip
        frame, info = load_configured(npz, base.data)
        results = []
        for activation, beta in config["variants"]:
            for pair in range(config["pairs"]):
                result = train_pair(frame, info, base, Variant(activation, beta), pair)
                results.append(result)
                report["pairs"].append(vars(result))
                print(f"{result.variant} pair {pair}: relative PD {result.relative_pd:.4f}, TV PD {result.total_variation_pd:.4f}, "
                      f"accuracy {result.accuracy_a:.3f} / {result.accuracy_b:.3f}", flush=True)
    report["summary"] = summarize(results).to_dict(orient="records")
    report["n_train"] = info.split_sizes["train"]
    report["n_test"] = info.split_sizes["test"]
    report["epochs"] = config["epochs"]
    report["batch_size"] = base.trainer.batch_size
    report["seconds_total"] = time.perf_counter() - started
    write_report("fashion_pd", report, args.out)
    return report


if __name__ == "__main__":
    main()
