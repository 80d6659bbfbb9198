"""Run every enabled monitor on one captured inference batch, each at its share of the false-page budget.

Each monitor sees the view of the batch it understands (penultimate activations, predicted
classes, class probabilities, squeezing scores, or the inputs as a table) and returns an exact
one-sided p-value.  The loop's one number, the *false-page budget* ``B`` (the expected number of
clean batches between false pages, across all monitors), is split evenly over the enabled
statistical monitors: each pages at ``p <= 1 / (B x count)``, so by the union bound a clean
batch pages with probability at most ``1 / B``.  That per-monitor limit is each chart's
probability limit, and the chart and the monitor's alarm are one and the same condition.

A monitor that raises does not stop the others: its failure is returned for alerting.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from monitors import Monitor, MonitorResult, get_monitor
from monitors.sequential import draws_for_level
from trustops.capture import CapturedStep, LayerNotFoundError
from trustops.errors import ConfigError
from trustops.monitoring.budget import COMBINED_MONITOR
from trustops.monitoring.reference import Reference

SHIFT, ADVERSARIAL, DATA_QUALITY = "distribution_shift", "suspected_adversarial", "data_quality"


@dataclass(frozen=True)
class Traffic:
    """One batch as the monitors see it, each view computed at most once."""

    step: CapturedStep
    model: torch.nn.Module | None
    value_range: tuple[float, float]
    columns: tuple[str, ...] | None = None  # the reference's feature names (Reference.columns)
    # The layers the MMD monitor tests together (``--combine-layers``, resolved); empty: penultimate alone.
    combine_layers: tuple[str, ...] = ()
    _squeezing: list = field(default_factory=list)

    @property
    def penultimate(self) -> torch.Tensor:
        return self.step.tensors["penultimate"].float()

    @property
    def combined(self) -> dict[str, torch.Tensor]:
        """``{layer: shape-(N, D) activations}`` of :attr:`combine_layers`, each flattened."""
        missing = [name for name in self.combine_layers if name not in self.step.tensors]
        if missing:
            raise LayerNotFoundError(
                missing[0], sorted(self.step.tensors),
                f"{self.step.mode} step {self.step.step} (served by a model or server that does not capture it; "
                "traffic captured before the model was trained with capture.layers lacks it)",
            )
        return {name: self.step.tensors[name].flatten(1).float() for name in self.combine_layers}

    @property
    def probabilities(self) -> torch.Tensor:
        outputs = next(v for k, v in self.step.tensors.items() if k == "outputs" or k.endswith("output_0"))
        return torch.softmax(outputs.float(), dim=1)

    @property
    def inputs(self) -> torch.Tensor:
        return next(v for k, v in self.step.tensors.items() if k == "inputs" or k.endswith("input_0"))

    @property
    def squeezing_scores(self) -> np.ndarray:
        if not self._squeezing:
            from trustops.monitoring.squeezing import squeezing_scores

            self._squeezing.append(squeezing_scores(self.model, self.inputs, self.value_range).numpy())
        return self._squeezing[0]


def input_table(inputs: torch.Tensor, columns: Sequence[str] | None = None) -> Any:
    """Inputs as a table for the drift and expectation monitors, named by ``columns`` (``x0 ... x{D-1}`` when
    there are none, or not one per flattened input: e.g. a model whose inputs are not its data's columns)."""
    import pandas as pd

    flat = inputs.reshape(len(inputs), -1).double().numpy()
    named = columns is not None and len(columns) == flat.shape[1]
    return pd.DataFrame(flat, columns=list(columns) if named else [f"x{i}" for i in range(flat.shape[1])])


@dataclass(frozen=True)
class MonitorView:
    """How a monitor plugin is fed and what its evidence means (whether it spends the budget: ``budget.STATISTICAL``)."""

    title: str  # the quantity in plain words, as an alert names it
    reference: Callable[[Reference], Any]
    batch: Callable[[Traffic], Any]
    evidence: str = SHIFT  # the incident its alarm is evidence of
    # Constructor options from the monitor's page level and the inputs' valid range.
    options: Callable[[float, tuple[float, float] | None], dict[str, Any]] = lambda level, value_range: {"alpha": level}
    applies: Callable[[Traffic], bool] = lambda traffic: True  # e.g. only batches whose labels arrived


VIEWS: dict[str, MonitorView] = {
    "mmd_adversarial": MonitorView(
        title="activation shift (MMD on penultimate activations)",
        reference=lambda ref: dict(ref.layers) if ref.layers else ref.penultimate,
        batch=lambda traffic: traffic.combined if traffic.combine_layers else traffic.penultimate,
        options=lambda level, value_range: {"alpha": level, "n_permutations": draws_for_level(level), "stop_after": 10,
                                            "class_matching": False, "seed": 0},
    ),
    "prediction_shift": MonitorView(
        title="predicted-class mix", reference=lambda ref: ref.predictions.numpy(),
        batch=lambda traffic: traffic.probabilities.argmax(1).numpy(),
    ),
    "mean_confidence": MonitorView(
        title="mean confidence drop", reference=lambda ref: ref.probabilities.numpy(),
        batch=lambda traffic: traffic.probabilities.numpy(),
    ),
    "evidently_drift": MonitorView(
        title="input drift", reference=lambda ref: input_table(ref.inputs, ref.columns), batch=lambda traffic: input_table(traffic.inputs, traffic.columns),
    ),
    "feature_squeezing": MonitorView(
        title="instability under feature squeezing", evidence=ADVERSARIAL,
        reference=lambda ref: ref.squeezing_scores, batch=lambda traffic: traffic.squeezing_scores,
    ),
    "accuracy": MonitorView(
        title="accuracy drop",
        reference=lambda ref: (ref.predictions.numpy(), ref.labels.numpy()),
        batch=lambda traffic: (traffic.probabilities.argmax(1).numpy(), np.asarray(traffic.step.meta["labels"])),
        applies=lambda traffic: "labels" in traffic.step.meta,
    ),
    "input_expectations": MonitorView(
        title="input expectations", evidence=DATA_QUALITY,
        reference=lambda ref: input_table(ref.inputs, ref.columns), batch=lambda traffic: input_table(traffic.inputs, traffic.columns),
        options=lambda level, value_range: {"value_range": value_range},
    ),
}


def combined_title(layers: Sequence[str]) -> str:
    """The combined MMD test's quantity in plain words, as an alert names it."""
    return f"activation shift (MMD on layers {' + '.join(layers)}, combined by Fisher's method)"


def view_title(name: str, details: Mapping[str, Any] | None = None) -> str:
    """How an alert names monitor ``name``'s quantity; a combined MMD test names its layers (``details["layers"]``)."""
    layers = (details or {}).get("layers")
    return combined_title(str(layers).split(",")) if name == COMBINED_MONITOR and layers else VIEWS[name].title


def combine_overrides(layers: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    """The MMD monitor's options for a multi-layer test: the sequential early stop tests one layer only,
    so several layers are tested with every permutation (``stop_after=None``)."""
    return {COMBINED_MONITOR: {"stop_after": None}} if layers and len(layers) > 1 else {}


def monitor_options(
    name: str, levels: Mapping[str, float], value_range: tuple[float, float] | None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The constructor options of monitor ``name`` in the loop: its page level, then the user's overrides."""
    return {**VIEWS[name].options(levels.get(name, 1.0), value_range), **(overrides or {}).get(name, {})}


def check_monitor_options(
    names: list[str], levels: Mapping[str, float], value_range: tuple[float, float] | None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """Build every monitor once (no fitting) so a bad option, e.g. too few permutations, fails before any work."""
    from monitors import MonitorConfigError

    for name in names:
        try:
            get_monitor(name)(**monitor_options(name, levels, value_range, overrides))
        except (MonitorConfigError, TypeError) as error:
            raise ConfigError(f"Monitor {name}: {error}") from None


@dataclass
class BatchCheck:
    step: int
    results: dict[str, MonitorResult]
    failures: dict[str, str]


def fit_monitors(
    names: list[str], reference: Reference, levels: Mapping[str, float], overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> tuple[dict[str, Monitor], dict[str, str]]:
    fitted, failures = {}, {}
    for name in names:
        try:
            monitor = get_monitor(name)(**monitor_options(name, levels, reference.value_range, overrides))
            fitted[name] = monitor.fit(VIEWS[name].reference(reference))
        except Exception as error:  # one broken monitor must not stop the others
            failures[name] = f"{type(error).__name__}: {error}"
    return fitted, failures


@dataclass(frozen=True)
class ViewFailure:
    """A batch a monitor cannot be shown (e.g. a combined layer its capture lacks): that monitor's failure."""

    reason: str


def batch_views(monitors: Iterable[str], traffic: Traffic) -> dict[str, Any]:
    """What each applicable monitor checks in this batch (a :class:`ViewFailure` where there is none)."""
    views: dict[str, Any] = {}
    for name in monitors:
        if VIEWS[name].applies(traffic):
            try:
                views[name] = VIEWS[name].batch(traffic)
            except LayerNotFoundError as error:  # one monitor's missing input must not stop the others
                views[name] = ViewFailure(f"{type(error).__name__}: {error}")
    return views


def check_batch(monitors: dict[str, Monitor], step: int, views: dict[str, Any]) -> BatchCheck:
    """Every monitor on its view of the batch at capture ``step``; a failing monitor does not stop the others.

    Each monitor's resampling restarts from :func:`batch_seed`, so the batch's p-values do not
    depend on the batches checked before it, nor on the process that checks it.
    """
    results, failures = {}, {}
    for name, view in views.items():
        if isinstance(view, ViewFailure):
            failures[name] = view.reason
            continue
        monitor = monitors[name]
        try:
            monitor.reseed(batch_seed(name, step))
            results[name] = monitor.check(view)
        except Exception as error:
            failures[name] = f"{type(error).__name__}: {error}"
    return BatchCheck(step=step, results=results, failures=failures)


def batch_seed(monitor: str, step: int) -> int:
    """The seed of ``monitor``'s resampling for the batch at capture ``step`` (independent streams per monitor)."""
    return int(np.random.SeedSequence([step, zlib.crc32(monitor.encode())]).generate_state(1)[0])
