"""The reproducibility study: pairs of models that differ only in the order they saw the data.

For each activation variant and each pair ``i``, two models share the initialisation seed
``i`` and train on data orders ``2i`` and ``2i + 1``; their prediction difference on the test
split measures how much the training's randomness leaks into predictions.  Several pairs are
averaged so the comparison is not one lucky seed.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass

import pandas as pd

from trustops.data.loading import DatasetInfo
from trustops.evaluation import predict_probabilities
from trustops.settings import TrainSettings
from trustops.training.tensors import split_dataset
from trustops.training.trainer import train_classifier
from trustops.trust.prediction_difference import relative_prediction_difference, total_variation_difference


@dataclass(frozen=True)
class Variant:
    activation: str
    beta: float = 1.0

    @property
    def label(self) -> str:
        return f"smelu(beta={self.beta:g})" if self.activation == "smelu" else self.activation


@dataclass(frozen=True)
class PairResult:
    variant: str
    pair: int
    relative_pd: float
    total_variation_pd: float
    accuracy_a: float
    accuracy_b: float


def train_pair(frame: pd.DataFrame, info: DatasetInfo, base: TrainSettings, variant: Variant, pair: int) -> PairResult:
    test = split_dataset(
        frame, "test", feature_columns=info.feature_columns, label_column=info.label_column,
        split_column=info.split_column, input_shape=info.input_shape, classes=info.classes,
    )
    inputs, targets = test.tensors
    model_settings = dataclasses.replace(base.model, activation=variant.activation, beta=variant.beta)
    probabilities, accuracies = [], []
    for order in (2 * pair, 2 * pair + 1):
        trainer = dataclasses.replace(base.trainer, seed=pair, data_order_seed=order)
        result = train_classifier(frame, info, dataclasses.replace(base, model=model_settings, trainer=trainer))
        p = predict_probabilities(result.model, inputs)
        probabilities.append(p)
        accuracies.append(float((p.argmax(1) == targets.numpy()).mean()))
    import torch

    p1, p2 = (torch.from_numpy(p) for p in probabilities)
    return PairResult(
        variant=variant.label,
        pair=pair,
        relative_pd=relative_prediction_difference(p1, p2, targets),
        total_variation_pd=total_variation_difference(p1, p2),
        accuracy_a=accuracies[0],
        accuracy_b=accuracies[1],
    )


def summarize(results: list[PairResult]) -> pd.DataFrame:
    """One row per variant: mean and standard deviation over pairs of each PD form, and accuracy."""
    rows = []
    for variant in dict.fromkeys(r.variant for r in results):
        mine = [r for r in results if r.variant == variant]
        relative = [r.relative_pd for r in mine]
        tv = [r.total_variation_pd for r in mine]
        accuracy = [a for r in mine for a in (r.accuracy_a, r.accuracy_b)]
        rows.append({
            "variant": variant,
            "pairs": len(mine),
            "relative_pd_mean": statistics.fmean(relative),
            "relative_pd_std": statistics.stdev(relative) if len(relative) > 1 else 0.0,
            "tv_pd_mean": statistics.fmean(tv),
            "tv_pd_std": statistics.stdev(tv) if len(tv) > 1 else 0.0,
            "accuracy_mean": statistics.fmean(accuracy),
        })
    return pd.DataFrame(rows)


DEFAULT_VARIANTS = (Variant("relu"), Variant("smelu", 0.5), Variant("smelu", 1.0), Variant("smelu", 2.0), Variant("gelu"))
