"""A capture store belongs to one model: a writer for a model with other layer shapes is refused before writing."""

from __future__ import annotations

import pytest
import torch

from trustops.capture import ActivationCapture, CaptureConfigError, CaptureError, make_writer, open_capture, open_store
from trustops.capture.hooks import model_identity
from trustops.models.networks import build_classifier


def _capture_one(model, uri, **options) -> None:
    with ActivationCapture(model, uri, mode="predict", **options) as capture, torch.inference_mode():
        model(torch.rand(2, 64))


def test_a_store_refuses_a_model_with_other_layer_shapes_before_writing(tmp_path):
    uri = str(tmp_path / "store")
    digits = build_classifier("mlp", (64,), 10).eval()
    _capture_one(digits, uri)
    before = sorted(open_store(uri).list(""))

    other = build_classifier("mlp", (64,), 3).eval()  # another model: three classes
    with pytest.raises(CaptureConfigError) as error:
        ActivationCapture(other, uri, mode="predict")
    message = str(error.value)
    assert "\n" not in message and "different layer shapes" in message
    assert model_identity(digits)["shapes"] in message and model_identity(other)["shapes"] in message
    assert sorted(open_store(uri).list("")) == before  # nothing written
    assert open_capture(uri).steps("predict") == [0]


def test_the_same_architecture_retrained_may_add_to_the_store(tmp_path):
    uri = str(tmp_path / "store")
    torch.manual_seed(0)
    _capture_one(build_classifier("mlp", (64,), 10).eval(), uri)
    torch.manual_seed(1)  # other weights, same layer shapes
    _capture_one(build_classifier("mlp", (64,), 10).eval(), uri)
    assert open_capture(uri).steps("predict") == [0, 1]


def test_a_store_refuses_another_registered_model_with_the_same_shapes(tmp_path):
    uri = str(tmp_path / "store")
    model = build_classifier("mlp", (64,), 10).eval()
    with make_writer(uri, model=model_identity(model, "digits-a")) as writer:
        writer.write_step("predict", {"outputs": torch.zeros(1, 10)})
    with pytest.raises(CaptureConfigError, match=r"belongs to model 'digits-a'.*model 'digits-b'.*another registered model"):
        make_writer(uri, model=model_identity(model, "digits-b"))


def test_two_models_racing_to_describe_an_empty_store_one_is_refused(tmp_path):
    uri = str(tmp_path / "store")
    a, b = build_classifier("mlp", (64,), 10).eval(), build_classifier("mlp", (64,), 4).eval()
    # Both open while the store is still empty, so both pass the check at construction.
    first = make_writer(uri, model=model_identity(a))
    second = make_writer(uri, model=model_identity(b))
    first.write_step("predict", {"outputs": torch.zeros(1, 10)})
    first.close()
    second.write_step("predict", {"outputs": torch.zeros(1, 4)})
    with pytest.raises(CaptureError, match="different layer shapes"):
        second.close()
    assert open_capture(uri).steps("predict") == [0]  # the refused writer's step was not written
