"""The one-thread scoring path gives exactly what torch's default threads gave: predictions and captured tensors."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch

from trustops.capture import open_capture
from trustops.data.digits import DIGITS_IMAGE_SHAPE, export_digits
from trustops.errors import ConfigError
from trustops.models.networks import build_classifier
from trustops.serving.predict import read_inputs, score_inputs
from trustops.serving.pyfunc import THREADS_ENV, CapturingClassifier


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    path = export_digits(tmp_path_factory.mktemp("digits") / "digits.parquet")
    columns = [c for c in pd.read_parquet(path).columns if c.startswith("pixel_")]
    return read_inputs(path, columns, DIGITS_IMAGE_SHAPE), columns


def _score(model, inputs, columns, store, threads):
    config = {"input_shape": list(DIGITS_IMAGE_SHAPE), "feature_columns": columns, "classes": list(range(10)),
              "capture_uri": str(store), "torch_threads": threads}
    return score_inputs(CapturingClassifier.from_module(model, config), inputs, batch_size=100)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores for torch's default to differ from 1 thread")
def test_one_thread_scores_and_captures_exactly_as_the_default_threads(digits, tmp_path, monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    inputs, columns = digits
    torch.manual_seed(0)
    model = build_classifier("mlp", DIGITS_IMAGE_SHAPE, 10).eval()
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        before = _score(model, inputs, columns, tmp_path / "default", 0)  # torch's threads, as before the fix
        fast = _score(model, inputs, columns, tmp_path / "fast", 1)
        assert torch.get_num_threads() == 2  # the thread setting is restored after each forward pass
    finally:
        torch.set_num_threads(saved)
    pd.testing.assert_frame_equal(fast, before, check_exact=True)
    old, new = open_capture(str(tmp_path / "default")), open_capture(str(tmp_path / "fast"))
    assert new.steps("predict") == old.steps("predict") == list(range(-(-len(inputs) // 100)))
    for a, b in zip(old.iter_steps("predict"), new.iter_steps("predict"), strict=True):
        assert a.tensors.keys() == b.tensors.keys() == {"inputs", "penultimate", "outputs"}
        for layer in a.tensors:
            assert torch.equal(a.tensors[layer], b.tensors[layer]), (a.step, layer)


@pytest.mark.parametrize("value", ["-1", "two"])
def test_a_bad_thread_count_is_one_clear_error(digits, tmp_path, monkeypatch, value):
    monkeypatch.setenv(THREADS_ENV, value)
    inputs, columns = digits
    with pytest.raises(ConfigError, match=f"must be an integer >= 0.*Got: '{value}'"):
        _score(build_classifier("mlp", DIGITS_IMAGE_SHAPE, 10).eval(), inputs[:10], columns, tmp_path / "s", 1)
    assert not (tmp_path / "s").exists()  # nothing captured


def test_the_dataframe_request_path_matches_the_array_path(digits, tmp_path):
    inputs, columns = digits
    model = build_classifier("mlp", DIGITS_IMAGE_SHAPE, 10).eval()
    config = {"input_shape": list(DIGITS_IMAGE_SHAPE), "feature_columns": columns, "capture_uri": "off"}
    wrapper = CapturingClassifier.from_module(model, config)
    frame = pd.DataFrame(inputs.reshape(len(inputs), -1)[:64], columns=columns)
    np.testing.assert_array_equal(wrapper.predict(None, frame), wrapper.predict(None, inputs[:64]))
