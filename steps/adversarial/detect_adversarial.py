"""Step: the LADIS evaluation on captured activations, with its tables and figures."""

from dataclasses import asdict, replace
from typing import Annotated, Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn
from zenml import step

from trustops.attacks import pgd_attack
from trustops.capture import open_capture
from trustops.detection.ladis import layer_table, run_combined_detection, run_detection
from trustops.detection.layers import layer_activations, resolve_layers
from trustops.detection.plots import embedding_figure, layer_table_figure, suspicious_inputs_figure
from trustops.registry import RegisteredModel
from trustops.settings import AttackSettings, DetectSettings
from trustops.tracking import log_batch
from trustops.data.registered import load_split


@step(enable_cache=False)
def detect_adversarial(
    model: nn.Module,
    model_info: RegisteredModel,
    captured_steps: dict[str, Any],
    clean_inputs: np.ndarray,
    adversarial_inputs: np.ndarray,
    labels: np.ndarray,
    attack: AttackSettings,
    detect: DetectSettings,
) -> Annotated[dict[str, float], "detection"]:
    import mlflow

    # The resolved names (block<k> aliases expanded) are what the captured layers are called.
    settings = replace(detect, combine_layers=resolve_layers(model, detect.combine_layers) if detect.combine_layers else None)
    reader = open_capture(model_info.capture_uri)  # the model's store: its EVAL reference
    reference = reader.load("eval", "penultimate", where=reader.last_pass("eval"))
    # This run's own store (see capture_inference): the clean and adversarial batches.
    batches = open_capture(captured_steps["capture_uri"], endpoint_url=captured_steps.get("endpoint_url"))
    clean = batches.read_step("predict", captured_steps["clean"][0], layers=["penultimate"]).tensors["penultimate"]
    adversarial = batches.read_step("predict", captured_steps["adversarial"][0], layers=["penultimate"]).tensors["penultimate"]

    with torch.no_grad():
        report = run_detection(reference.float(), clean.float(), adversarial.float(),
                               classify=lambda z: model.head(z).argmax(1), settings=settings)
    log_batch(metrics=report.metrics, params={f"detect.{k}": v for k, v in asdict(detect).items()})

    # The layer table: every capturable layer, clean and the user's attack at epsilons around its own.
    validation, _, clamp = load_split(model_info, "val")
    clean_tensor, label_tensor = torch.from_numpy(clean_inputs), torch.from_numpy(labels)
    reference_layers = layer_activations(model, validation)
    batches = {"clean": layer_activations(model, clean_tensor)}
    if settings.combine_layers:  # the user's attack, every layer: the combined rates sit beside the penultimate ones
        adversarial_layers = layer_activations(model, torch.from_numpy(adversarial_inputs))
        predictions = {name: layers["logits"].argmax(1) for name, layers in
                       (("reference", reference_layers), ("clean", batches["clean"]), ("adversarial", adversarial_layers))}
        combined = run_combined_detection(reference_layers, batches["clean"], adversarial_layers, predictions=predictions, settings=settings)
        report.metrics.update(combined)
        log_batch(metrics=combined)
    for epsilon in settings.layer_table_sweep(attack):
        attacked = pgd_attack(model, clean_tensor, label_tensor, norm=attack.norm, epsilon=epsilon,
                              step_size=attack.step_size_at(epsilon), steps=attack.steps, clamp=clamp)
        batches[attack.batch_name(epsilon)] = layer_activations(model, attacked)
    table = layer_table(reference_layers, batches, settings=settings)
    log_batch(metrics={f"layer_detection_rate.{layer}.{batch.replace(' ', '_').replace('=', '')}": value
                       for layer, row in table.iterrows() for batch, value in row.items()})

    # As MLflow tables, which the UI shows and mlflow.load_table reads back (no CSV copies: nothing read them).
    mlflow.log_table(report.top_k, "detection/top_k_suspicious.json")
    mlflow.log_table(table.rename_axis("layer").reset_index(), "detection/layer_table.json")
    figures = {
        "detection/embedding_pca.png": embedding_figure(report.reference, report.adversarial),
        "detection/layer_table.png": layer_table_figure(table),
        "detection/top_k_suspicious.png": suspicious_inputs_figure(
            torch.from_numpy(adversarial_inputs)[report.top_k["index"].to_numpy()],
            report.top_k["predicted_class"].tolist(), report.top_k["score"].tolist()),
    }
    for name, figure in figures.items():
        mlflow.log_figure(figure, name)
        plt.close(figure)
    return report.metrics
