"""Forward-hook capture around any nn.Module, for both backends."""

import pytest
import torch
from torch import nn

from trustops.capture import ActivationCapture, CaptureConfigError, open_capture
from trustops.models.networks import build_classifier

BACKENDS = ["native", "smdebug"]


@pytest.fixture(params=[("mlp", (64,)), ("cnn", (1, 8, 8))], ids=["mlp", "cnn"])
def model_and_shape(request):
    torch.manual_seed(0)
    family, shape = request.param
    return build_classifier(family, shape, 10).eval(), shape


@pytest.mark.parametrize("backend", BACKENDS)
def test_predict_mode_captures_inputs_penultimate_and_outputs(tmp_path, model_and_shape, backend):
    model, shape = model_and_shape
    batches = [torch.rand(n, *shape) * 16 for n in (3, 1, 7)]
    with ActivationCapture(model, tmp_path, mode="predict", backend=backend) as capture, torch.inference_mode():
        outputs = [model(x) for x in batches]
        assert capture.last_step == 2
    reader = open_capture(tmp_path)
    assert reader.backend == backend
    assert reader.steps("predict") == [0, 1, 2] and reader.steps("eval") == []
    for captured, x, logits in zip(reader.iter_steps("predict"), batches, outputs, strict=True):
        assert set(captured.tensors) == {"inputs", "penultimate", "outputs"}
        assert torch.equal(captured.tensors["inputs"], x)
        assert torch.equal(captured.tensors["outputs"], logits)
        with torch.inference_mode():
            assert torch.equal(captured.tensors["penultimate"], model.embed(x))


@pytest.mark.parametrize("backend", BACKENDS)
def test_eval_mode_captures_penultimate_and_included_layers(tmp_path, backend):
    model = build_classifier("cnn", (1, 8, 8), 10).eval()
    with ActivationCapture(model, tmp_path, mode="eval", backend=backend, include=r"features\.[0-2]") as capture:
        assert capture.layers == ["penultimate", "features.0", "features.1", "features.2"]
        with torch.no_grad():
            model(torch.rand(4, 1, 8, 8))
    reader = open_capture(tmp_path)
    assert sorted(reader.layers("eval")) == ["features.0", "features.1", "features.2", "penultimate"]
    [step] = reader.iter_steps("eval")
    assert step.tensors["features.0"].shape == (4, 16, 8, 8)
    assert step.tensors["penultimate"].shape == (4, 32)


def test_hooks_are_removed_on_exit_and_steps_continue_across_sessions(tmp_path):
    model = build_classifier("mlp", (64,), 10).eval()
    for expected in ([0, 1], [2, 3]):
        with ActivationCapture(model, tmp_path) as capture, torch.no_grad():
            model(torch.rand(2, 64))
            model(torch.rand(2, 64))
        assert capture.last_step == expected[-1]
    assert all(not m._forward_hooks for m in model.modules())
    with torch.no_grad():
        model(torch.rand(2, 64))  # not captured: detached
    assert open_capture(tmp_path).steps("predict") == [0, 1, 2, 3]


def test_an_inplace_change_after_forward_does_not_alter_the_capture(tmp_path):
    model = build_classifier("mlp", (64,), 10).eval()
    x = torch.rand(2, 64)
    expected = x.clone()
    with ActivationCapture(model, tmp_path), torch.no_grad():
        model(x)
        x.zero_()  # a serving loop reusing its input buffer
    [step] = open_capture(tmp_path).iter_steps("predict")
    assert torch.equal(step.tensors["inputs"], expected)


def test_without_copy_the_capture_shares_the_callers_tensors(tmp_path):
    model = build_classifier("mlp", (64,), 10).eval()
    x = torch.rand(2, 64)
    with ActivationCapture(model, tmp_path, copy=False, flush_interval=60), torch.no_grad():
        model(x)
        x.zero_()  # breaks the copy=False contract: the capture sees the change
    [step] = open_capture(tmp_path).iter_steps("predict")
    assert torch.equal(step.tensors["inputs"], torch.zeros(2, 64))


def test_any_module_without_penultimate(tmp_path):
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with ActivationCapture(model, tmp_path, penultimate=None, include="1"), torch.no_grad():
        model(torch.rand(5, 4))
    [step] = open_capture(tmp_path).iter_steps("predict")
    assert set(step.tensors) == {"inputs", "1", "outputs"}


def test_tuple_outputs_are_captured_item_by_item(tmp_path):
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.penultimate = nn.Linear(4, 3)

        def forward(self, x):
            z = self.penultimate(x)
            return z.sum(1), z.max(1).values

    model = TwoHeads()
    with ActivationCapture(model, tmp_path), torch.no_grad():
        model(torch.rand(2, 4))
    [step] = open_capture(tmp_path).iter_steps("predict")
    assert set(step.tensors) == {"inputs", "penultimate", "outputs.0", "outputs.1"}


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"penultimate": "embedding"}, "no module 'embedding'.*Its modules: .*penultimate"),
        ({"include": "decoder.*"}, "matches no module name"),
        ({"include": "(unclosed"}, "not a valid regex"),
        ({"mode": "train"}, "`mode` must be one of eval, predict"),
        ({"backend": "parquet"}, "Unknown capture backend 'parquet'"),
    ],
)
def test_bad_capture_options_are_clear_errors(tmp_path, options, fragment):
    model = build_classifier("mlp", (64,), 10)
    with pytest.raises(CaptureConfigError, match=fragment):
        ActivationCapture(model, tmp_path, **options)
