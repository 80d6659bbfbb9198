"""Step: PGD adversarial versions of a data split, with attack success and example images."""

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from torch import nn
from zenml import step

from trustops.attacks import attack_metrics, pgd_attack, plot_attack_examples
from trustops.data.loading import load_dataset
from trustops.registry import RegisteredModel
from trustops.settings import AttackSettings
from trustops.tracking import log_batch
from trustops.training.tensors import split_dataset


def load_split(model_info: RegisteredModel, split: str) -> tuple[torch.Tensor, torch.Tensor, tuple[float, float]]:
    """Inputs, labels and the valid input range of a split of the model's training data."""
    data = model_info.training.data
    frame, info = load_dataset(
        Path(data.path) if Path(data.path).is_absolute() else _root() / data.path,
        fmt=data.format, label_column=data.label_column, split_column=data.split_column,
        feature_columns=data.feature_columns, image_shape=data.image_shape,
        val_fraction=data.val_fraction, test_fraction=data.test_fraction, split_seed=data.split_seed,
    )
    dataset = split_dataset(frame, split, feature_columns=info.feature_columns, label_column=info.label_column,
                            split_column=info.split_column, input_shape=info.input_shape, classes=info.classes)
    if data.value_range:
        bounds = (float(data.value_range[0]), float(data.value_range[1]))
    else:  # the range the data itself spans, as the validation suite learns it
        values = frame[info.feature_columns].to_numpy(dtype=np.float64)
        bounds = (float(values.min()), float(values.max()))
    return dataset.tensors[0], dataset.tensors[1], bounds


def _root():
    from trustops.paths import project_root

    return project_root()


@step(enable_cache=False)
def attack_split(
    model: nn.Module, model_info: dict[str, Any], attack: dict[str, Any]
) -> tuple[
    Annotated[np.ndarray, "clean_inputs"],
    Annotated[np.ndarray, "adversarial_inputs"],
    Annotated[np.ndarray, "labels"],
    Annotated[dict[str, float], "attack_metrics"],
]:
    import tempfile

    import mlflow

    settings = AttackSettings(**attack)
    inputs, labels, clamp = load_split(RegisteredModel.from_dict(model_info), settings.split)
    adversarial = pgd_attack(model, inputs, labels, norm=settings.norm, epsilon=settings.epsilon,
                             step_size=settings.effective_step_size, steps=settings.steps, clamp=clamp)
    metrics = attack_metrics(model, inputs, adversarial, labels)
    values = {"clean_accuracy": metrics.clean_accuracy, "adversarial_accuracy": metrics.adversarial_accuracy,
              "attack_success_rate": metrics.attack_success_rate}
    log_batch(params={f"attack.{k}": v for k, v in attack.items()}, metrics=values)
    with tempfile.TemporaryDirectory() as folder:
        path = plot_attack_examples(inputs, adversarial, Path(folder) / "attack_examples.png", n=6,
                                    image_shape=tuple(inputs.shape[-2:]) if inputs.ndim == 4 else None, labels=labels)
        mlflow.log_artifact(str(path), "attack")
    return inputs.numpy(), adversarial.numpy(), labels.numpy(), values
