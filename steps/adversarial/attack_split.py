"""Step: PGD adversarial versions of a data split, with attack success and example images."""

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import numpy as np
from torch import nn
from zenml import step

from trustops.attacks import attack_metrics, pgd_attack, plot_attack_examples
from trustops.data.registered import load_split
from trustops.registry import RegisteredModel
from trustops.settings import AttackSettings
from trustops.tracking import log_batch


@step(enable_cache=False)
def attack_split(
    model: nn.Module, model_info: RegisteredModel, settings: AttackSettings
) -> tuple[
    Annotated[np.ndarray, "clean_inputs"],
    Annotated[np.ndarray, "adversarial_inputs"],
    Annotated[np.ndarray, "labels"],
    Annotated[dict[str, float], "attack_metrics"],
]:
    import tempfile

    import mlflow

    inputs, labels, clamp = load_split(model_info, settings.split)
    adversarial = pgd_attack(model, inputs, labels, norm=settings.norm, epsilon=settings.epsilon,
                             step_size=settings.effective_step_size, steps=settings.steps, clamp=clamp)
    metrics = attack_metrics(model, inputs, adversarial, labels)
    values = {"clean_accuracy": metrics.clean_accuracy, "adversarial_accuracy": metrics.adversarial_accuracy,
              "attack_success_rate": metrics.attack_success_rate}
    log_batch(params={f"attack.{k}": v for k, v in asdict(settings).items()}, metrics=values)
    with tempfile.TemporaryDirectory() as folder:
        path = plot_attack_examples(inputs, adversarial, Path(folder) / "attack_examples.png", n=6,
                                    image_shape=tuple(inputs.shape[-2:]) if inputs.ndim == 4 else None, labels=labels)
        mlflow.log_artifact(str(path), "attack")
    return inputs.numpy(), adversarial.numpy(), labels.numpy(), values
