"""Batch scoring with a registered model: one PREDICT step per batch, clear errors on bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trustops.capture import open_capture
from trustops.errors import TrustopsError
from trustops.serving.predict import parse_model_spec, predict_file


@pytest.fixture
def in_project(trained, monkeypatch):
    monkeypatch.setenv("TRUSTOPS_PROJECT_ROOT", str(trained.project.root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("TRUSTOPS_CAPTURE_URI", raising=False)
    return trained


def _digits_csv(trained, path, n=20):
    frame = pd.read_parquet(trained.project.root / "data" / "digits.parquet").head(n)
    frame.drop(columns=["label"], errors="ignore").to_csv(path, index=False)
    return frame


def test_predict_file_captures_one_step_per_batch(in_project, tmp_path):
    frame = _digits_csv(in_project, tmp_path / "new.csv", n=20)
    capture = tmp_path / "capture"
    table = predict_file(in_project.name, "1", tmp_path / "new.csv", capture_uri=str(capture), batch_size=8)
    assert len(table) == 20
    assert {"prediction", "confidence", "capture_step"} <= set(table.columns)
    np.testing.assert_allclose(table.filter(like="prob_").sum(axis=1), 1.0, rtol=1e-5)
    reader = open_capture(str(capture))
    assert reader.steps("predict") == [0, 1, 2]
    assert table["capture_step"].tolist() == [0] * 8 + [1] * 8 + [2] * 4
    step = reader.read_step("predict", 2).tensors
    assert {"inputs", "penultimate", "outputs"} <= set(step) and step["inputs"].shape == (4, 1, 8, 8)  # digits are 1x8x8 images
    pixels = frame[[c for c in frame.columns if c.startswith("pixel_")]].to_numpy(np.float32)
    np.testing.assert_allclose(step["inputs"].numpy().reshape(4, 64), pixels[16:])


def test_unreachable_store_still_answers_and_counts_the_failure(in_project, tmp_path):
    _digits_csv(in_project, tmp_path / "new.csv", n=5)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store should be")
    table = predict_file(in_project.name, "1", tmp_path / "new.csv", capture_uri=str(blocker / "capture"), batch_size=2)
    assert len(table) == 5 and table["prediction"].notna().all()
    assert table.attrs["capture_failures"] >= 1


@pytest.mark.parametrize(
    ("model", "version", "make_input", "message"),
    [
        ("no-such-model", "1", "good", "not found"),
        ("trustops-digits", "@nope", "good", "not found"),
        ("trustops-digits", "1", "missing_columns", "feature columns"),
        ("trustops-digits", "1", "absent", "not found"),
    ],
)
def test_bad_input_is_a_clear_error(in_project, tmp_path, model, version, make_input, message):
    path = tmp_path / "in.csv"
    if make_input == "good":
        _digits_csv(in_project, path, n=3)
    elif make_input == "missing_columns":
        pd.DataFrame({"pixel_0": [1.0], "other": [2.0]}).to_csv(path, index=False)
    with pytest.raises(TrustopsError, match=message):
        predict_file(model, version, path, capture_uri="off")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("m", ("m", "latest")), ("m:3", ("m", "3")), ("m@champion", ("m", "@champion"))],
)
def test_model_spec(spec, expected):
    assert parse_model_spec(spec) == expected


@pytest.mark.parametrize("spec", ["m:", "m@", ":3", "m:x"])
def test_bad_model_spec(spec):
    with pytest.raises(TrustopsError, match="NAME"):
        parse_model_spec(spec)
