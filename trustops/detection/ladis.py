"""The LADIS evaluation: detection rates, the false-positive baseline, suspicious samples, the layer table.

Following the SageMaker Model Monitor + Debugger write-up: the reference is the model's
penultimate activations on the validation data (captured during training); a batch is
flagged when an MMD two-sample test rejects; the *detection rate* is the fraction of
``n_tests`` repeated ``n_samples``-vs-``n_samples`` tests that reject.  The *baseline rate*
runs the same procedure on clean data the reference did not contain (half of the captured
validation rows are held out for it), and should sit near alpha.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import pandas as pd
import torch

from monitors.errors import MonitorInputError
from monitors.mmd.detection_rate import DetectionRate
from monitors.mmd_adversarial import MMDAdversarialMonitor
from trustops.settings import DetectSettings


@dataclass
class DetectionReport:
    metrics: dict[str, float]
    top_k: pd.DataFrame  # index, predicted class, score of the most suspicious batch samples
    reference: torch.Tensor
    adversarial: torch.Tensor


def split_reference(reference: torch.Tensor, *, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded halves of the reference rows: one to fit, one held out for the baseline rate."""
    order = torch.randperm(len(reference), generator=torch.Generator().manual_seed(seed))
    half = len(reference) // 2
    return order[:half], order[half:]


def build_monitor(settings: DetectSettings) -> MMDAdversarialMonitor:
    return MMDAdversarialMonitor(
        alpha=settings.alpha, n_permutations=settings.n_permutations, class_matching=settings.class_matching, seed=settings.seed
    )


def run_detection(
    reference: torch.Tensor,
    clean: torch.Tensor,
    adversarial: torch.Tensor,
    *,
    classify: Callable[[torch.Tensor], torch.Tensor],
    settings: DetectSettings,
) -> DetectionReport:
    """Detection and baseline rates at the penultimate layer, plus per-sample scores.

    ``classify`` maps penultimate activations to predicted classes (the model's head), so
    reference draws can match each batch's class mix.  Where the reference holds too few
    rows of a class the batch predicts often (PGD tends to push inputs into a few classes),
    that batch is tested against unmatched draws instead, and ``class_matched_<batch>`` is 0.
    """
    fit_rows, held_out_rows = split_reference(reference, seed=settings.seed)
    predictions = classify(reference)
    matched = build_monitor(settings).fit(reference[fit_rows], predictions=predictions[fit_rows])
    unmatched = build_monitor(replace(settings, class_matching=False)).fit(reference[fit_rows])
    metrics: dict[str, float] = {}

    def rate(name: str, batch: torch.Tensor, batch_predictions: torch.Tensor):
        return _matched_or_unmatched_rate(matched, unmatched, settings, metrics, f"class_matched_{name}", batch, batch_predictions)

    adversarial_predictions = classify(adversarial)
    adversarial_rate = rate("adversarial", adversarial, adversarial_predictions)
    clean_rate = rate("clean", clean, classify(clean))
    baseline = rate("baseline", reference[held_out_rows], predictions[held_out_rows])
    single = unmatched.check(adversarial)
    top = unmatched.top_k(adversarial, k=settings.top_k)
    metrics.update({
        "detection_rate": adversarial_rate.rate,
        "detection_rate_ci_low": adversarial_rate.confidence_interval[0],
        "detection_rate_ci_high": adversarial_rate.confidence_interval[1],
        "baseline_detection_rate": baseline.rate,
        "baseline_detection_rate_ci_high": baseline.confidence_interval[1],
        "clean_detection_rate": clean_rate.rate,
        "mmd2": float(single.details.get("mmd2", single.score)),
        "p_value": float(single.details["p_value"]),
        "adversarial_batch_flagged": float(single.alarm),
    })
    table = pd.DataFrame(
        [(index, int(adversarial_predictions[index]), score) for index, _, score in top],
        columns=["index", "predicted_class", "score"],
    )
    return DetectionReport(metrics=metrics, top_k=table, reference=reference[fit_rows], adversarial=adversarial)


def _rate_metrics(prefix: str, rate: DetectionRate) -> dict[str, float]:
    return {prefix: rate.rate, f"{prefix}_ci_low": rate.confidence_interval[0], f"{prefix}_ci_high": rate.confidence_interval[1]}


def run_combined_detection(
    reference_layers: Mapping[str, torch.Tensor],
    clean_layers: Mapping[str, torch.Tensor],
    adversarial_layers: Mapping[str, torch.Tensor],
    *,
    predictions: Mapping[str, torch.Tensor],
    settings: DetectSettings,
) -> dict[str, float]:
    """Detection, clean and baseline rates of the layers in ``settings.combine_layers`` tested together.

    Every test draws one set of rows and one set of permutations (within classes when class-matched)
    and applies them to every layer; the per-layer p-values are combined by Fisher's
    ``-2 sum log p`` and the combined p-value is read off the same permutations (Pesarin's
    nonparametric combination, which MMDAdversarialMonitor applies to several layers; see
    :mod:`trustops.detection.combination`), so the dependence between
    layers cannot inflate the false-positive rate as Fisher's chi-squared p-value would.
    ``predictions`` holds the predicted classes of ``reference``, ``clean`` and ``adversarial``.
    Metric names are those of :func:`run_detection` with the prefix ``combined_``.
    """
    layers = list(settings.combine_layers)
    if len(layers) < 2:
        raise ValueError(f"combine_layers must name at least two layers. Got: {layers}")
    fit_rows, held_out_rows = split_reference(next(iter(reference_layers.values())), seed=settings.seed)

    def pick(activations: Mapping[str, torch.Tensor], rows: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return {layer: activations[layer] if rows is None else activations[layer][rows] for layer in layers}

    reference_predictions = predictions["reference"]
    matched = build_monitor(settings).fit(pick(reference_layers, fit_rows), predictions=reference_predictions[fit_rows])
    unmatched = build_monitor(replace(settings, class_matching=False)).fit(pick(reference_layers, fit_rows))
    metrics: dict[str, float] = {}

    def rate(name: str, batch: dict[str, torch.Tensor], batch_predictions: torch.Tensor) -> DetectionRate:
        return _matched_or_unmatched_rate(matched, unmatched, settings, metrics, f"class_matched_combined_{name}", batch,
                                          batch_predictions)

    adversarial = rate("adversarial", pick(adversarial_layers), predictions["adversarial"])
    clean = rate("clean", pick(clean_layers), predictions["clean"])
    baseline = rate("baseline", pick(reference_layers, held_out_rows), reference_predictions[held_out_rows])
    metrics.update(_rate_metrics("combined_detection_rate", adversarial))
    metrics.update({
        "combined_baseline_detection_rate": baseline.rate,
        "combined_baseline_detection_rate_ci_high": baseline.confidence_interval[1],
        "combined_clean_detection_rate": clean.rate,
    })
    return metrics


def layer_table(
    reference_layers: Mapping[str, torch.Tensor],
    batches: Mapping[str, Mapping[str, torch.Tensor]],
    *,
    settings: DetectSettings,
) -> pd.DataFrame:
    """Detection rate at every layer for every named batch (e.g. ``clean``, ``pgd eps=1``).

    Class matching is off here, so the table compares layers on equal terms.  With
    ``settings.combine_layers`` a last row, ``combined``, tests those layers together
    (see :func:`run_combined_detection`).
    """
    rows = []
    unmatched = replace(settings, class_matching=False)
    for layer, reference in reference_layers.items():
        fit_rows, _ = split_reference(reference, seed=settings.seed)
        monitor = build_monitor(unmatched).fit(reference[fit_rows])
        for batch_name, layers in batches.items():
            rate = monitor.detection_rate(layers[layer], n_tests=settings.n_tests, n_samples=settings.n_samples)
            rows.append({"layer": layer, "batch": batch_name, "detection_rate": rate.rate})
    order = list(reference_layers)
    if settings.combine_layers:
        combined = list(settings.combine_layers)
        fit_rows, _ = split_reference(reference_layers[combined[0]], seed=settings.seed)
        monitor = build_monitor(unmatched).fit({layer: reference_layers[layer][fit_rows] for layer in combined})
        for batch_name, layers in batches.items():
            rate = monitor.detection_rate({layer: layers[layer] for layer in combined},
                                          n_tests=settings.n_tests, n_samples=settings.n_samples)
            rows.append({"layer": "combined", "batch": batch_name, "detection_rate": rate.rate})
        order.append("combined")
    table = pd.DataFrame(rows).pivot(index="layer", columns="batch", values="detection_rate")
    return table.reindex(index=order, columns=list(batches))  # the caller's order, not the alphabet's


def _matched_or_unmatched_rate(matched, unmatched, settings, metrics: dict[str, float], flag: str, batch, predictions) -> DetectionRate:
    """The class-matched detection rate when the reference has rows of every predicted class, else the
    unmatched one; ``metrics[flag]`` says which applied (1 matched, 0 not), so a silent fallback shows."""
    kwargs = dict(n_tests=settings.n_tests, n_samples=settings.n_samples)
    if settings.class_matching:
        try:
            result = matched.detection_rate(batch, predictions=predictions, **kwargs)
            metrics[flag] = 1.0
            return result
        except MonitorInputError:
            metrics[flag] = 0.0
    return unmatched.detection_rate(batch, **kwargs)
