"""Run every enabled monitor on one captured inference batch.

Each monitor sees the view of the batch it understands (penultimate activations, predicted
classes, class probabilities, or the inputs as a table). A monitor that raises does not stop
the others: its failure is returned for alerting.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from monitors import Monitor, MonitorResult, get_monitor
from trustops.capture import CapturedStep
from trustops.monitoring.reference import Reference


def _table(inputs: torch.Tensor) -> pd.DataFrame:
    flat = inputs.reshape(len(inputs), -1).double().numpy()
    return pd.DataFrame(flat, columns=[f"x{i}" for i in range(flat.shape[1])])


@dataclass(frozen=True)
class MonitorView:
    """How a monitor plugin is fed: what it is fitted on and what it checks."""

    reference: Callable[[Reference], Any]
    batch: Callable[[CapturedStep], Any]
    options: dict[str, Any] = field(default_factory=dict)
    charted: bool = True  # its score goes on a control chart
    chart_value: Callable[[MonitorResult], float] = lambda result: float(result.score)
    # (mean, sigma) of the charted value when the batch is in control, if known in closed form;
    # otherwise the chart's limits come from clean batches resampled from the reference.
    in_control: tuple[float, float] | None = None
    applies: Callable[[CapturedStep], bool] = lambda step: True  # e.g. only batches whose labels arrived
    # Whether the monitor's own decision alerts.  A per-batch test at alpha = 0.05 would raise a
    # false alarm every 20 clean batches; such a monitor alerts through its chart (ARL ~370) only.
    alerts_on_alarm: bool = True


def _probabilities(step: CapturedStep) -> torch.Tensor:
    outputs = next(v for k, v in step.tensors.items() if k == "outputs" or k.endswith("output_0"))
    return torch.softmax(outputs.float(), dim=1)


def _inputs(step: CapturedStep) -> torch.Tensor:
    return next(v for k, v in step.tensors.items() if k == "inputs" or k.endswith("input_0"))


VIEWS: dict[str, MonitorView] = {
    "mmd_adversarial": MonitorView(
        reference=lambda ref: ref.penultimate,
        batch=lambda step: step.tensors["penultimate"].float(),
        options={"class_matching": False, "n_permutations": 200, "seed": 0},
        # -log10 of a valid p-value under H0 is exponential with rate ln 10: mean = sigma = 1/ln 10.
        chart_value=lambda result: -math.log10(float(result.details["p_value"])),
        in_control=(1 / math.log(10), 1 / math.log(10)),
    ),
    "prediction_shift": MonitorView(reference=lambda ref: ref.predictions.numpy(), batch=lambda step: _probabilities(step).argmax(1).numpy(),
                                   alerts_on_alarm=False),
    "mean_confidence": MonitorView(reference=lambda ref: ref.probabilities.numpy(), batch=lambda step: _probabilities(step).numpy()),
    "evidently_drift": MonitorView(reference=lambda ref: _table(ref.inputs), batch=lambda step: _table(_inputs(step))),
    "accuracy": MonitorView(
        reference=lambda ref: (ref.predictions.numpy(), ref.labels.numpy()),
        batch=lambda step: (_probabilities(step).argmax(1).numpy(), np.asarray(step.meta["labels"])),
        options={"tolerance": 0.1},
        applies=lambda step: "labels" in step.meta,
    ),
    "input_expectations": MonitorView(
        reference=lambda ref: _table(ref.inputs), batch=lambda step: _table(_inputs(step)), charted=False
    ),
}


@dataclass
class BatchCheck:
    step: int
    results: dict[str, MonitorResult]
    failures: dict[str, str]


def fit_monitors(names: list[str], reference: Reference) -> tuple[dict[str, Monitor], dict[str, str]]:
    fitted, failures = {}, {}
    for name in names:
        view = VIEWS[name]
        try:
            fitted[name] = get_monitor(name)(**view.options).fit(view.reference(reference))
        except Exception as error:  # one broken monitor must not stop the others
            failures[name] = f"{type(error).__name__}: {error}"
    return fitted, failures


def check_batch(monitors: dict[str, Monitor], step: CapturedStep) -> BatchCheck:
    results, failures = {}, {}
    for name, monitor in monitors.items():
        if not VIEWS[name].applies(step):
            continue
        try:
            results[name] = monitor.check(VIEWS[name].batch(step))
        except Exception as error:
            failures[name] = f"{type(error).__name__}: {error}"
    return BatchCheck(step=step.step, results=results, failures=failures)


def phase_one_scores(monitor: Monitor, view: MonitorView, reference: Reference, *, batch_size: int, n_batches: int, seed: int) -> np.ndarray:
    """The monitor's score on clean batches drawn from the reference: the in-control baseline of its chart.

    Bootstrap batches (rows drawn with replacement) of the monitored batch size, drawn from
    reference rows the monitor was *not* fitted on, so the limits include the sampling noise of
    real clean batches. Monitors whose charted value has a known in-control law (the MMD
    p-value) use that instead.
    """
    generator = torch.Generator().manual_seed(seed)
    scores = []
    for _ in range(n_batches):
        rows = torch.randint(len(reference.penultimate), (batch_size,), generator=generator)  # a bootstrap batch
        sample = Reference(reference.penultimate[rows], reference.probabilities[rows], reference.inputs[rows],
                           reference.labels[rows])
        fake_step = CapturedStep(mode="predict", step=-1, tensors={
            "penultimate": sample.penultimate,
            "inputs": sample.inputs,
            "outputs": torch.log(sample.probabilities.clamp_min(1e-12)),
        }, meta={"labels": sample.labels.tolist()})
        scores.append(view.chart_value(monitor.check(view.batch(fake_step))))
    return np.asarray(scores, dtype=float)
