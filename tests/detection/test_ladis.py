"""LADIS on a real digits model: PGD batches are detected at the penultimate layer, clean ones are not.

Seeds: model seed 0, PGD deterministic, detector seed 0. Tolerances: the baseline (clean, held-out)
rate must stay under 0.15 (alpha = 0.05 plus binomial and reference-draw slack over 100 tests);
the PGD rate at eps = 2 must exceed 0.8.
"""

from dataclasses import replace

import pytest
import torch

from trustops.attacks import pgd_attack
from trustops.data.digits import digits_frame, pixel_columns
from trustops.data.loading import DatasetInfo
from trustops.detection.ladis import layer_table, run_combined_detection, run_detection, split_reference
from trustops.detection.layers import capturable_layers, layer_activations, resolve_layers
from trustops.errors import ConfigError
from trustops.settings import DataSettings, DetectSettings, DPSettings, TrainerSettings, TrainSettings
from trustops.training.tensors import split_dataset

SETTINGS = DetectSettings(alpha=0.05, n_permutations=100, n_tests=100, n_samples=100, class_matching=True, top_k=5, seed=0)


@pytest.fixture(scope="module")
def trained():
    frame = digits_frame()
    info = DatasetInfo(path="-", data_hash="-", dvc_tracked=False, feature_columns=pixel_columns(64), label_column="label",
                       split_column="split", image_shape=[1, 8, 8], classes=list(range(10)), split_sizes={})
    settings = TrainSettings(data=DataSettings(image_shape=[1, 8, 8]), trainer=TrainerSettings(max_epochs=8),
                             dp=DPSettings(enabled=False, target_epsilon=None))
    from trustops.training.trainer import train_classifier  # Lightning and Opacus: not at collection

    model = train_classifier(frame, info, settings).model
    columns = dict(feature_columns=info.feature_columns, label_column="label", split_column="split", input_shape=(1, 8, 8), classes=info.classes)
    val, test = (split_dataset(frame, split, **columns).tensors for split in ("val", "test"))
    adversarial = pgd_attack(model, *test, norm="inf", epsilon=2.0, step_size=0.5, steps=10, clamp=(0.0, 16.0))
    return model, val, test, adversarial


def test_pgd_is_detected_and_clean_data_is_not(trained):
    model, (x_val, _), (x_test, _), x_adv = trained
    with torch.no_grad():
        report = run_detection(model.embed(x_val), model.embed(x_test), model.embed(x_adv),
                               classify=lambda z: model.head(z).argmax(1), settings=SETTINGS)
    assert report.metrics["detection_rate"] > 0.8
    assert report.metrics["baseline_detection_rate"] < 0.15
    assert report.metrics["clean_detection_rate"] < 0.15
    assert 0 < report.metrics["p_value"] <= 1
    assert len(report.top_k) == 5 and report.top_k["score"].is_monotonic_decreasing


def test_layer_table_covers_every_capturable_layer(trained):
    model, (x_val, _), (x_test, y_test), x_adv = trained
    table = layer_table(layer_activations(model, x_val),
                        {"clean": layer_activations(model, x_test), "pgd eps=2": layer_activations(model, x_adv)},
                        settings=SETTINGS)
    assert list(table.index) == capturable_layers(model) == ["input", "features.2", "penultimate", "logits"]
    assert (table["clean"] < 0.15).all()
    assert table.loc["penultimate", "pgd eps=2"] > 0.8


def test_reference_halves_are_disjoint_and_complete():
    fit, held_out = split_reference(torch.zeros(11, 3), seed=3)
    assert sorted(torch.cat([fit, held_out]).tolist()) == list(range(11))


def test_class_matched_references_apply_when_the_reference_has_the_rows():
    """On a reference as large as Fashion-MNIST's (5,000 rows, 500 per class), matching must apply to
    every batch, even one the attack pushed into two classes; ``class_matched_*`` says so (a silent
    fallback to unmatched draws would show as 0 here).  Seeded synthetic activations: one Gaussian
    cluster per class; the attacked batch is class 3's cluster, shifted, predicted as 3 or 5."""
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(10, 8, generator=generator) * 4
    labels = torch.arange(5000) % 10
    reference = centres[labels] + torch.randn(5000, 8, generator=generator)
    clean = centres[torch.arange(300) % 10] + torch.randn(300, 8, generator=generator)
    adversarial = centres[torch.tensor([3, 5]).repeat(150)] + 0.8 + torch.randn(300, 8, generator=generator)

    def classify(z: torch.Tensor) -> torch.Tensor:
        return torch.cdist(z, centres).argmin(1)

    settings = DetectSettings(alpha=0.05, n_permutations=50, n_tests=20, n_samples=100, class_matching=True, top_k=3, seed=0)
    report = run_detection(reference, clean, adversarial, classify=classify, settings=settings)
    assert {report.metrics[f"class_matched_{name}"] for name in ("adversarial", "clean", "baseline")} == {1.0}
    assert report.metrics["detection_rate"] > 0.9  # 20 tests: the shift is large, matched draws see it


def test_combined_layers_get_their_own_rates_and_a_table_row(trained):
    """``combine_layers``: the hidden layer and the penultimate tested together (permutation-calibrated
    Fisher) detect the digits PGD batch and keep the clean rates low; the layer table gains a
    ``combined`` row.  Same seeds and tolerances as above, 30 tests to keep it quick."""
    model, (x_val, _), (x_test, _), x_adv = trained
    settings = replace(SETTINGS, n_tests=30, combine_layers=resolve_layers(model, ["block1", "penultimate"]))
    assert settings.combine_layers == ("features.2", "penultimate")
    reference, clean, adversarial = (layer_activations(model, x) for x in (x_val, x_test, x_adv))
    predictions = {"reference": reference["logits"].argmax(1), "clean": clean["logits"].argmax(1),
                   "adversarial": adversarial["logits"].argmax(1)}
    metrics = run_combined_detection(reference, clean, adversarial, predictions=predictions, settings=settings)
    assert metrics["combined_detection_rate"] > 0.8
    assert metrics["combined_detection_rate_ci_low"] <= metrics["combined_detection_rate"] <= metrics["combined_detection_rate_ci_high"]
    assert metrics["combined_baseline_detection_rate"] < 0.15 and metrics["combined_clean_detection_rate"] < 0.15
    table = layer_table(reference, {"clean": clean, "pgd eps=2": adversarial}, settings=settings)
    assert list(table.index)[-1] == "combined" and table.loc["combined", "pgd eps=2"] > 0.8


def test_unknown_combined_layers_are_refused_with_the_allowed_names(trained):
    model = trained[0]
    with pytest.raises(ConfigError, match=r"unknown layer\(s\) \['block9'\].*aliases: block1=features.2"):
        resolve_layers(model, ["block9", "penultimate"])
    with pytest.raises(ConfigError, match="names a layer twice"):
        resolve_layers(model, ["block1", "features.2"])
