"""The smdebug backend: smdebug's own trial reads our captures, and we read smdebug trials."""

import shutil

import pytest
import torch

import trustops  # noqa: F401, I001 - selects the protobuf runtime smdebug needs; must precede smdebug
from smdebug import modes

from trustops.capture import CaptureConfigError, CorruptChunkError, LayerNotFoundError, open_capture
from trustops.capture.native import NativeWriter
from trustops.capture.smdebug_backend import SmdebugWriter, event_key


def _write(folder, **options):
    g = torch.Generator().manual_seed(0)
    written = {"eval": [], "predict": []}
    with SmdebugWriter(folder, root_name="Classifier", **options) as writer:
        for mode, n in (("eval", 2), ("predict", 3)):
            for i in range(n):
                tensors = {"penultimate": torch.randn(4, 32, generator=g)}
                if mode == "predict":
                    tensors |= {"inputs": torch.randn(4, 64, generator=g), "outputs": torch.randn(4, 10, generator=g)}
                assert writer.write_step(mode, tensors, {"i": i}) == i
                written[mode].append(tensors)
    return written


def test_smdebug_create_trial_reads_our_steps_and_tensor_names(tmp_path):
    from smdebug.trials import create_trial

    written = _write(tmp_path)
    trial = create_trial(str(tmp_path))
    assert trial.steps(mode=modes.EVAL) == [0, 1]
    assert trial.steps(mode=modes.PREDICT) == [0, 1, 2]
    assert trial.steps() == [0, 1, 2, 3, 4]  # smdebug's global steps span both modes
    assert set(trial.tensor_names()) == {"penultimate_output_0", "Classifier_input_0", "Classifier_output_0"}
    value = trial.tensor("Classifier_input_0").value(2, mode=modes.PREDICT)
    assert torch.equal(torch.from_numpy(value), written["predict"][2]["inputs"])


def test_round_trip_through_our_reader(tmp_path):
    written = _write(tmp_path)
    reader = open_capture(tmp_path)
    assert reader.backend == "smdebug"
    assert reader.steps("eval") == [0, 1] and reader.steps("predict", after=0) == [1, 2]
    assert reader.layers("predict") == ["inputs", "outputs", "penultimate"]
    for mode in ("eval", "predict"):
        for captured, tensors in zip(reader.iter_steps(mode), written[mode], strict=True):
            assert captured.meta["i"] == captured.step
            for name, tensor in tensors.items():
                assert torch.equal(captured.tensors[name], tensor)


def test_steps_continue_after_reopening(tmp_path):
    _write(tmp_path)
    with SmdebugWriter(tmp_path) as writer:
        assert writer.write_step("predict", {"penultimate": torch.ones(1, 2)}) == 3
        assert writer.write_step("eval", {"penultimate": torch.ones(1, 2)}) == 2
    assert open_capture(tmp_path).steps("predict") == [0, 1, 2, 3]


def test_corrupt_event_file_is_reported_naming_the_step(tmp_path):
    _write(tmp_path)
    reader = open_capture(tmp_path)
    global_step = reader.trial().global_step(modes.PREDICT, 1)
    event = tmp_path / event_key(global_step)
    raw = event.read_bytes()
    event.write_bytes(raw[: len(raw) - 7])
    readable, bad = [], []
    for chunk in reader.chunks("predict"):
        try:
            readable += [s.step for s in chunk.read()]
        except CorruptChunkError as e:
            bad.append(e)
    assert readable == [0, 2]
    [error] = bad
    assert error.steps == (1,) and "predict step 1" in str(error) and "SHA-256" in str(error)


def test_sagemaker_trial_without_our_sidecars_is_read(tmp_path):
    _write(tmp_path)
    (tmp_path / "trustops-capture.json").unlink()
    shutil.rmtree(tmp_path / "trustops")
    reader = open_capture(tmp_path)
    assert reader.backend == "smdebug"
    # Without our descriptor there are no inputs/outputs aliases: a module's output goes by
    # the module's name (the root module's name is its class name), anything else by smdebug's.
    assert reader.layers("predict") == ["Classifier", "Classifier_input_0", "penultimate"]
    [step] = reader.iter_steps("predict", after=1, layers=["penultimate"])
    assert step.tensors["penultimate"].shape == (4, 32)
    with pytest.raises(LayerNotFoundError, match="Captured layers: Classifier, Classifier_input_0, penultimate"):
        list(reader.iter_steps("predict", layers=["logits"]))


def test_a_truncated_sagemaker_event_file_is_reported(tmp_path):
    _write(tmp_path)
    shutil.rmtree(tmp_path / "trustops")
    reader = open_capture(tmp_path)
    global_step = reader.trial().global_step(modes.PREDICT, 0)
    event = tmp_path / event_key(global_step)
    event.write_bytes(event.read_bytes()[:20])
    with pytest.raises(CorruptChunkError, match="predict step 0.*smdebug failed to read"):
        list(reader.iter_steps("predict", layers=["penultimate"]))


def test_one_uri_holds_one_backend(tmp_path):
    _write(tmp_path)
    with pytest.raises(CaptureConfigError, match="already holds a 'smdebug' capture"):
        NativeWriter(tmp_path)
    with pytest.raises(CaptureConfigError, match="holds a 'smdebug' capture, not 'native'"):
        open_capture(tmp_path, backend="native")
