"""SmeLU cost: forward+backward time of trustops's SmeLU ÷ ReLU and ÷ GELU on a large tensor.

Run from the repository root::

    .venv/bin/python -m bench.bench_smelu [--quick] [--out bench/results/smelu.json]

One timed call is ``act(x).backward(grad)`` on a float32 tensor of ``--numel`` elements
(default 2**22, 16 MiB) that requires grad; the activations are the modules the models use
(``trustops.models.activations.make_activation``).  Activations are timed in rotating order
within each repeat and the ratio is taken within the repeat, then the median over repeats is
reported.  There is no target: ReLU and GELU are one fused kernel each way, SmeLU is a custom
autograd function of four elementwise passes forward and three backward (no compiled kernel,
no ``torch.compile``), and this says how much that costs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from bench._common import machine, write_report
from trustops.models.activations import make_activation

ACTIVATIONS = ("smelu", "relu", "gelu")


def one_pass(activation: torch.nn.Module, x: torch.Tensor, grad: torch.Tensor, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        x.grad = None
        activation(x).backward(grad)
    return (time.perf_counter() - start) / calls


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--numel", type=int, default=1 << 22)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--calls", type=int, default=5, help="forward+backward calls per timing")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--quick", action="store_true", help="2**20 elements, 3 repeats")
    args = parser.parse_args(argv)
    if args.quick:
        args.numel, args.repeats = 1 << 20, 3
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    x = (torch.randn(args.numel, generator=generator) * 2).requires_grad_()
    grad = torch.randn(args.numel, generator=generator)
    modules = {name: make_activation(name, beta=1.0) for name in ACTIVATIONS}
    for module in modules.values():
        one_pass(module, x, grad, 2)  # warm-up

    seconds: dict[str, list[float]] = {name: [] for name in ACTIVATIONS}
    for repeat in range(args.repeats):
        order = ACTIVATIONS[repeat % 3 :] + ACTIVATIONS[: repeat % 3]
        for name in order:
            seconds[name].append(one_pass(modules[name], x, grad, args.calls))
    ratios = {
        other: [s / o for s, o in zip(seconds["smelu"], seconds[other])] for other in ("relu", "gelu")
    }
    report: dict[str, Any] = {
        "machine": machine(),
        "settings": {k: str(v) for k, v in vars(args).items()},
        "numel": args.numel,
        "seconds_per_call": {name: statistics.median(runs) for name, runs in seconds.items()},
        "seconds_all": seconds,
        "ratio_smelu_over_relu": statistics.median(ratios["relu"]),
        "ratio_smelu_over_gelu": statistics.median(ratios["gelu"]),
        "ratios_all": ratios,
    }
    per_call = report["seconds_per_call"]
    print(
        f"forward+backward on {args.numel:,} float32: SmeLU {per_call['smelu'] * 1e3:.1f} ms, ReLU {per_call['relu'] * 1e3:.1f} ms, "
        f"GELU {per_call['gelu'] * 1e3:.1f} ms -> SmeLU/ReLU {report['ratio_smelu_over_relu']:.2f}x, "
        f"SmeLU/GELU {report['ratio_smelu_over_gelu']:.2f}x",
        flush=True,
    )
    write_report("smelu", report, args.out)
    return report


if __name__ == "__main__":
    main()
