"""The tabular model: per-column preprocessing fitted on the training rows, shipped inside the model."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from trustops.data.loading import load_dataset
from trustops.errors import ConfigError
from trustops.models.networks import TabularPreprocess
from trustops.serving.pyfunc import CapturingClassifier
from trustops.settings import CaptureSettings, DataSettings, DPSettings, ModelSettings, TrainerSettings, TrainSettings
from trustops.training.tensors import features_tensor

NO_DP = DPSettings(enabled=False, target_epsilon=None)


def wide_scale_table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Six informative columns on scales 1e-3 .. 1e4 (offset from zero) and a string categorical."""
    from sklearn.datasets import make_classification

    features, labels = make_classification(n_samples=n, n_features=6, n_informative=4, n_redundant=0, n_classes=3,
                                           n_clusters_per_class=1, random_state=seed)
    scales = np.logspace(-3, 4, features.shape[1])
    frame = pd.DataFrame(features * scales + 10 * scales, columns=[f"x{i}" for i in range(features.shape[1])])
    frame["colour"] = np.random.default_rng(seed).choice(["red", "green", "blue"], n)  # noise, but real strings
    frame["label"] = labels
    return frame


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("tabular") / "wide.csv"
    raw = wide_scale_table()
    raw.to_csv(path, index=False)
    frame, info = load_dataset(path, categorical_columns=["colour"])
    return path, raw, frame, info


def settings(path, family: str = "tabular", *, dp: DPSettings = NO_DP, **data) -> TrainSettings:
    return TrainSettings(
        data=DataSettings(path=str(path), categorical_columns=["colour"], **data),
        model=ModelSettings(family=family, hidden=[32, 16]),
        trainer=TrainerSettings(max_epochs=8, batch_size=64, optimizer="adam", lr=0.01),
        dp=dp,
        capture=CaptureSettings(enabled=False),
    )


def accuracy(model, frame, info) -> float:
    rows = frame[frame["split"] == "test"]
    with torch.no_grad():
        predictions = model(features_tensor(rows, info.feature_columns, info.input_shape)).argmax(1).numpy()
    return float((np.asarray(info.classes)[predictions] == rows["label"].to_numpy()).mean())


@pytest.fixture(scope="module")
def tabular(table):
    from trustops.training.trainer import train_classifier  # imports Lightning: seconds, so not at collection

    path, _, frame, info = table
    return train_classifier(frame, info, settings(path)).model


def test_categories_become_codes_of_the_training_vocabulary(table):
    _, raw, frame, info = table
    assert info.categories == {"colour": ["blue", "green", "red"]}
    assert set(frame["colour"].unique()) <= {-1.0, 0.0, 1.0, 2.0}
    assert (np.asarray(info.categories["colour"])[frame["colour"].astype(int)] == raw.loc[frame.index, "colour"]).all()


@pytest.mark.trains_model
def test_raw_rows_in_the_served_model_give_the_training_predictions(table, tabular, tmp_path):
    """Round trip: the pickled model + pyfunc take raw rows (strings and all) and agree with the model on codes."""
    path, raw, frame, info = table
    test_rows = frame["split"] == "test"
    with torch.no_grad():
        expected = torch.softmax(tabular(features_tensor(frame[test_rows], info.feature_columns, info.input_shape)), 1).numpy()
    served = CapturingClassifier.from_module(pickle.loads(pickle.dumps(tabular)),
                                             {"capture_uri": "off", "feature_columns": info.feature_columns,
                                              "input_shape": list(info.input_shape), "classes": info.classes})
    raw_rows = raw.loc[test_rows[test_rows].index, [*reversed(info.feature_columns), "label"]]  # any column order
    np.testing.assert_allclose(served.predict(None, raw_rows), expected, rtol=1e-5, atol=1e-6)
    as_strings = raw_rows[info.feature_columns].to_numpy(dtype=object)  # a JSON request: rows of mixed values
    np.testing.assert_allclose(served.predict(None, as_strings), expected, rtol=1e-5, atol=1e-6)

    from trustops.serving.predict import read_inputs

    batch = tmp_path / "batch.csv"
    raw_rows.to_csv(batch, index=False)
    inputs = read_inputs(batch, info.feature_columns, info.input_shape, served.categories)
    np.testing.assert_allclose(served.predict(None, inputs), expected, rtol=1e-5, atol=1e-6)


def test_an_unseen_category_is_an_all_zero_block():
    layer = TabularPreprocess([1.0], [2.0], numeric_index=[0], categorical_index=[1], cardinalities=[3])
    out = layer(torch.tensor([[3.0, 2.0], [3.0, -1.0]]))
    assert out.tolist() == [[1.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]]


@pytest.mark.trains_model
def test_per_column_standardization_is_what_makes_a_wide_scale_table_learnable(table, tabular):
    """Same table, split, seed, epochs and optimizer: the old shared mean/std (``model=mlp``) lets the
    1e4-scale column swamp the rest.  Measured test accuracy 0.95 vs 0.52 (seed 0; seeds 1, 2 of the
    table and split: 0.85 vs 0.35, 0.80 vs 0.35); asserted: at least 0.75, and 0.25 above the shared scaling."""
    from trustops.training.trainer import train_classifier  # imports Lightning: seconds, so not at collection

    path, _, frame, info = table
    shared = train_classifier(frame, info, settings(path, family="mlp")).model
    per_column = accuracy(tabular, frame, info)
    assert per_column >= 0.75
    assert per_column >= accuracy(shared, frame, info) + 0.25


@pytest.mark.trains_model
def test_dp_scales_by_public_bounds_and_refuses_without_them(table):
    from trustops.training.trainer import train_classifier  # imports Lightning: seconds, so not at collection

    path, _, frame, info = table
    numeric = [c for c in info.feature_columns if c != "colour"]
    dp = DPSettings(target_epsilon=8.0)
    with pytest.raises(ConfigError, match=r"6 column\(s\) have none \(x0, x1.*data.feature_ranges=\{x0:\[LOW,HIGH\]"):
        train_classifier(frame, info, settings(path, dp=dp))
    bounds = {c: [0.0, 40.0 * 10 ** (7 * i / 5 - 3)] for i, c in enumerate(numeric)}
    dp_settings = settings(path, dp=dp, feature_ranges=bounds)
    from trustops.training.trainer import fit_input_preprocess

    first = fit_input_preprocess(frame, info, dp_settings)
    shuffled = frame.assign(**{c: frame[c].sample(frac=1, random_state=1).to_numpy() for c in numeric})
    second = fit_input_preprocess(shuffled, info, dp_settings)
    assert torch.equal(first.center, second.center) and torch.equal(first.scale, second.scale)  # no row was read
    assert first.center.tolist() == pytest.approx([b[1] / 2 for b in bounds.values()])


def test_names_default_to_the_data_file_and_data_table_picks_the_tabular_model():
    from trustops.configuration import compose_config
    from configs.training import settings_from_config

    assert TrainSettings(data=DataSettings(path="data/iris.csv")).tracking.registered_model_name == "trustops-iris"
    assert TrainSettings().tracking.registered_model_name == "trustops-digits"
    composed = settings_from_config(compose_config(["data=table", "data.path=data/wine.csv", "dp=off"]))
    assert (composed.model.family, composed.trainer.optimizer, composed.tracking.registered_model_name) == ("tabular", "adam", "trustops-wine")
    assert settings_from_config(compose_config(["data=table", "data.path=w.csv", "model=mlp"])).model.family == "mlp"
