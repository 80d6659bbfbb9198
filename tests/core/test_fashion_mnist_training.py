"""``data=fashion_mnist``: its config picks the ``fashion_cnn`` model, the model is Opacus-valid and has the
``penultimate`` seam, ``data.max_train_rows`` caps training rows, and one smoke epoch trains with and
without DP through the pipeline's training function on 1,000 images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from configs.training import FASHION_MNIST_IMAGE_SHAPE, FASHION_MNIST_PATH, FASHION_MNIST_VALUE_RANGE, settings_from_config
from trustops.configuration import compose_config, validate_config
from trustops.data import fashion_mnist
from trustops.data.loading import cap_train_rows, load_configured
from trustops.errors import ConfigError, DataError
from trustops.evaluation import evaluate_classifier
from trustops.models.activations import ACTIVATIONS
from trustops.models.networks import build_classifier
from trustops.training.tensors import split_dataset

SMOKE_ROWS = 1_000


def test_the_config_layout_matches_the_reader():
    assert FASHION_MNIST_IMAGE_SHAPE == fashion_mnist.IMAGE_SHAPE
    assert FASHION_MNIST_VALUE_RANGE == fashion_mnist.VALUE_RANGE
    assert FASHION_MNIST_PATH == "data/fashion_mnist.npz"


def test_data_fashion_mnist_makes_fashion_cnn_the_default_model_and_the_command_line_still_wins():
    settings = settings_from_config(compose_config(["data=fashion_mnist"]))
    assert settings.data.path == FASHION_MNIST_PATH and settings.data.image_shape == [1, 28, 28]
    assert settings.data.value_range == [0.0, 255.0] and settings.data.classes == list(range(10))
    assert (settings.model.family, settings.model.channels, settings.model.hidden) == ("fashion_cnn", [16, 32, 64], [64])
    assert settings.tracking.registered_model_name == "trustops-fashion_mnist"
    assert settings_from_config(compose_config(["data=fashion_mnist", "model=cnn"])).model.family == "cnn"
    assert settings_from_config(compose_config([])).model.family == "mlp"  # digits keep their default


def test_max_train_rows_must_be_positive():
    with pytest.raises(ConfigError, match=r"data.max_train_rows must be >= 1 \(or null for all rows\). Got: 0"):
        validate_config(settings_from_config, ["data=fashion_mnist", "data.max_train_rows=0"])  # as `trustops train` checks


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_fashion_cnn_is_opacus_valid_and_has_the_penultimate_seam(activation):
    from opacus.validators import ModuleValidator

    model = build_classifier("fashion_cnn", (1, 28, 28), 10, channels=[16, 32, 64], hidden=[64], activation=activation)
    assert ModuleValidator.validate(model, strict=False) == []
    ModuleValidator.validate(model, strict=True)  # raises on any incompatible layer
    images = torch.rand(5, 1, 28, 28) * 255
    assert model(images).shape == (5, 10)
    assert dict(model.named_modules())["penultimate"] is model.penultimate
    assert model.embed(images).shape == (5, 64)


def test_the_validation_check_would_catch_batch_norm():
    """The check above is not vacuous: the same network with BatchNorm, which Opacus cannot train, fails it."""
    from opacus.validators import ModuleValidator

    model = build_classifier("fashion_cnn", (1, 28, 28), 10, channels=[16, 32, 64], hidden=[64], activation="relu")
    model.features[1] = nn.BatchNorm2d(16)
    assert ModuleValidator.validate(model, strict=False)


def test_fashion_cnn_refuses_images_too_small_for_its_blocks():
    with pytest.raises(ConfigError, match=r"halves the image 3 time\(s\).*at least 8x8 pixels. Got 4x4"):
        build_classifier("fashion_cnn", (1, 4, 4), 10, channels=[16, 32, 64], hidden=[64])


def test_cap_train_rows_is_exact_seeded_stratified_and_leaves_val_and_test_alone():
    rng = np.random.default_rng(0)
    labels = rng.choice(3, size=1_000, p=[0.6, 0.3, 0.1])
    split = rng.choice(["train", "val", "test"], size=1_000, p=[0.8, 0.1, 0.1])
    frame = pd.DataFrame({"x": rng.normal(size=1_000), "label": labels, "split": split})
    capped = cap_train_rows(frame, label_column="label", split_column="split", max_rows=101, seed=3)
    train = capped[capped["split"] == "train"]
    assert len(train) == 101
    # Shares of 101 in the training rows' class mix, each within one row of exact.
    shares = frame.loc[frame["split"] == "train", "label"].value_counts(normalize=True).sort_index() * 101
    assert (np.abs(train["label"].value_counts().sort_index() - shares) < 1).all()
    assert capped[capped["split"] != "train"].equals(frame[frame["split"] != "train"])
    assert capped.equals(cap_train_rows(frame, label_column="label", split_column="split", max_rows=101, seed=3))
    assert not capped.index.equals(cap_train_rows(frame, label_column="label", split_column="split", max_rows=101, seed=4).index)
    assert cap_train_rows(frame, label_column="label", split_column="split", max_rows=10_000, seed=0) is frame
    with pytest.raises(DataError, match="data.max_train_rows must be >= 1"):
        cap_train_rows(frame, label_column="label", split_column="split", max_rows=0, seed=0)


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    return fashion_mnist.export_fashion_mnist(tmp_path_factory.mktemp("fashion") / "fashion_mnist.npz", seed=0)


def smoke_settings(npz, *, dp: str):
    # One epoch of 1,000 images (16 batches of 64), as `trustops train data=fashion_mnist data.max_train_rows=1000 trainer=smoke`.
    return settings_from_config(compose_config(
        ["data=fashion_mnist", f"data.path={npz}", f"data.max_train_rows={SMOKE_ROWS}", "trainer=smoke", f"dp={dp}", "capture=off"]
    ))  # fmt: skip


@pytest.fixture(scope="module")
def data(npz):
    settings = smoke_settings(npz, dp="off")
    frame, info = load_configured(npz, settings.data)
    test = split_dataset(frame, "test", feature_columns=info.feature_columns, label_column=info.label_column,
                         split_column=info.split_column, input_shape=info.input_shape, classes=info.classes)  # fmt: skip
    return frame, info, test


@pytest.mark.trains_model
@pytest.mark.parametrize("dp", ["off", "on"])
def test_one_smoke_epoch_on_1000_images_learns_with_and_without_dp(npz, data, dp):
    """Seed 0; chance is 0.10.  Measured test accuracy (10,000 official test images) after the one epoch
    of 16 steps: 0.364 without DP (lr 0.1), 0.477 with DP at ε = 8 (lr 0.5, σ = 0.51); asserted: above
    0.25, which a model that learned nothing (0.10 ± 0.01 on 10,000 images) cannot reach by luck."""
    from trustops.training.trainer import train_classifier  # imports Lightning: seconds, so not at collection

    frame, info, test = data
    settings = smoke_settings(npz, dp=dp)
    assert info.split_sizes["train"] == SMOKE_ROWS
    result = train_classifier(frame, info, settings)
    assert len(result.history) == 1 and "val_accuracy" in result.history[0]
    assert dict(result.model.named_modules())["penultimate"] is result.model.penultimate
    if dp == "on":
        assert 0 < result.dp_epsilon <= 8.0 and result.noise_multiplier > 0
        assert result.dp_delta == pytest.approx(1 / SMOKE_ROWS)
    else:
        assert result.dp_epsilon is None
    accuracy = evaluate_classifier(result.model, *test.tensors, info.classes).accuracy
    assert accuracy > 0.25
