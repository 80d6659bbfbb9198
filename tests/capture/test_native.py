"""The native backend: round trips, chunking, monotonic steps, cheap listing, corruption."""

import json

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from trustops.capture import CaptureError, CorruptChunkError, LayerNotFoundError, open_capture
from trustops.capture.errors import CaptureNotFoundError
from trustops.capture.native import NativeWriter
from trustops.capture.store import LocalStore

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int8, torch.uint8, torch.bool]


def _tensor(shape, dtype, generator):
    if dtype == torch.bool:
        return torch.rand(shape, generator=generator) > 0.5
    if dtype.is_floating_point:
        return torch.randn(shape, generator=generator).to(dtype)
    return torch.randint(0, 100, shape, generator=generator).to(dtype)


def _write(folder, steps, mode="predict", *, flush_every=None, **options):
    """Write steps; ``flush_every=k`` makes chunk boundaries deterministic (every k steps)."""
    numbers = []
    with NativeWriter(folder, **options) as writer:
        for i, (tensors, meta) in enumerate(steps, 1):
            numbers.append(writer.write_step(mode, tensors, meta))
            if flush_every and i % flush_every == 0:
                writer.flush()
    return numbers


def test_round_trip_eval_and_predict(tmp_path):
    g = torch.Generator().manual_seed(0)
    eval_steps = [({"penultimate": torch.randn(8, 32, generator=g)}, {"epoch": 0, "batch_idx": i}) for i in range(3)]
    predict_steps = [
        ({"inputs": torch.randn(n, 64, generator=g), "penultimate": torch.randn(n, 32, generator=g), "outputs": torch.randn(n, 10, generator=g)}, {})
        for n in (1, 32, 5)
    ]
    with NativeWriter(tmp_path) as writer:
        assert [writer.write_step("eval", t, m) for t, m in eval_steps] == [0, 1, 2]
        assert [writer.write_step("predict", t, m) for t, m in predict_steps] == [0, 1, 2]
    reader = open_capture(tmp_path)
    assert reader.backend == "native"
    assert reader.steps("eval") == [0, 1, 2] and reader.steps("predict") == [0, 1, 2]
    for mode, expected in (("eval", eval_steps), ("predict", predict_steps)):
        for captured, (tensors, meta) in zip(reader.iter_steps(mode), expected, strict=True):
            assert captured.mode == mode and captured.meta == meta
            assert captured.tensors.keys() == tensors.keys()
            for name, tensor in tensors.items():
                assert torch.equal(captured.tensors[name], tensor)
    assert reader.layers("predict") == ["inputs", "outputs", "penultimate"]
    assert reader.load("eval", "penultimate").shape == (24, 32)


@given(
    shapes=st.lists(st.lists(st.integers(0, 5), min_size=0, max_size=3), min_size=1, max_size=4),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**16),
)
def test_round_trip_any_shape_and_dtype(tmp_path_factory, shapes, dtype, seed):
    folder = tmp_path_factory.mktemp("rt")
    g = torch.Generator().manual_seed(seed)
    steps = [({f"layer{i}": _tensor(tuple(shape), dtype, g) for i, shape in enumerate(shapes)}, {}) for _ in range(2)]
    _write(folder, steps, max_chunk_steps=1)
    read = list(open_capture(folder).iter_steps("predict"))
    for captured, (tensors, _) in zip(read, steps, strict=True):
        for name, tensor in tensors.items():
            assert captured.tensors[name].dtype == tensor.dtype and captured.tensors[name].shape == tensor.shape
            assert torch.equal(captured.tensors[name], tensor)


def test_steps_increase_monotonically_across_writer_sessions(tmp_path):
    x = {"penultimate": torch.ones(2, 3)}
    assert _write(tmp_path, [(x, {})] * 3) == [0, 1, 2]
    assert _write(tmp_path, [(x, {})] * 2) == [3, 4]
    assert _write(tmp_path, [(x, {})] * 2, mode="eval") == [0, 1]  # each mode counts on its own
    assert open_capture(tmp_path).steps("predict") == [0, 1, 2, 3, 4]


def test_chunks_group_consecutive_steps_and_after_skips_whole_chunks(tmp_path):
    steps = [({"penultimate": torch.full((2, 3), float(i))}, {}) for i in range(10)]
    _write(tmp_path, steps, max_chunk_steps=3)
    reader = open_capture(tmp_path)
    chunks = [list(c.steps) for c in reader.chunks("predict")]
    assert [s for chunk in chunks for s in chunk] == list(range(10))  # consecutive, in order
    assert all(1 <= len(chunk) <= 3 for chunk in chunks)  # where the cuts fall depends on timing
    after = [list(c.steps) for c in reader.chunks("predict", after=4)]
    assert after == [chunk for chunk in chunks if chunk[-1] > 4]  # whole chunks up to step 4 are skipped
    assert reader.steps("predict", after=4) == [5, 6, 7, 8, 9]
    assert reader.steps("predict", after=9) == []
    assert [s.step for s in reader.iter_steps("predict", after=4)] == [5, 6, 7, 8, 9]
    assert reader.read_step("predict", 7).tensors["penultimate"][0, 0].item() == 7.0


class CountingStore(LocalStore):
    def __init__(self, root):
        super().__init__(root)
        self.gets = []

    def get(self, key):
        self.gets.append(key)
        return super().get(key)


def test_listing_steps_after_n_reads_no_chunk(tmp_path):
    _write(tmp_path, [({"penultimate": torch.ones(1, 2)}, {})] * 20, flush_every=2)
    store = CountingStore(tmp_path)
    reader = open_capture(store)
    store.gets.clear()
    assert reader.steps("predict", after=15) == [16, 17, 18, 19]
    assert store.gets == []  # step ranges come from the manifest keys
    list(reader.iter_steps("predict", after=15))
    assert len([k for k in store.gets if k.endswith(".bin")]) == 2  # only the two new chunks


def test_a_chunk_without_its_manifest_is_invisible(tmp_path):
    _write(tmp_path, [({"penultimate": torch.ones(1, 2)}, {})] * 2, flush_every=1)
    # A writer that died between the data object and the manifest leaves only the data.
    LocalStore(tmp_path).put("predict/data/000000/000000000002-000000000002.bin", b"\0" * 8)
    assert open_capture(tmp_path).steps("predict") == [0, 1]
    assert _write(tmp_path, [({"penultimate": torch.ones(1, 2)}, {})]) == [2]


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "manifest"])
def test_corrupt_or_truncated_chunk_is_reported_naming_its_steps(tmp_path, damage):
    _write(tmp_path, [({"penultimate": torch.full((4, 8), float(i))}, {}) for i in range(6)], flush_every=2)
    data = next((tmp_path / "predict" / "data").rglob("000000000003-000000000002.bin"))
    manifest = next((tmp_path / "predict" / "manifest").rglob("000000000003-000000000002.json"))
    raw = data.read_bytes()
    if damage == "flip":
        data.write_bytes(raw[:10] + bytes([raw[10] ^ 0xFF]) + raw[11:])
        why = "checksum"
    elif damage == "truncate":
        data.write_bytes(raw[: len(raw) // 2])
        why = "truncated"
    elif damage == "delete":
        data.unlink()
        why = "missing"
    else:
        manifest.write_bytes(manifest.read_bytes()[:40])
        why = "manifest"
    reader = open_capture(tmp_path)
    good, bad = [], []
    for chunk in reader.chunks("predict"):  # the monitor loop: skip and report, keep going
        try:
            good += [s.step for s in chunk.read()]
        except CorruptChunkError as e:
            bad.append(e)
    assert good == [0, 1, 4, 5]
    [error] = bad
    assert error.mode == "predict" and error.steps == (2, 3)
    assert "predict steps 2-3" in str(error) and why in str(error)
    with pytest.raises(CorruptChunkError, match="steps 2-3"):
        list(reader.iter_steps("predict"))


def test_layers_changing_shape_or_dtype_and_scalars_round_trip(tmp_path):
    steps = [
        ({"a": torch.ones(2, 3), "s": torch.tensor(1.5)}, {}),
        ({"a": torch.ones(1, 5), "s": torch.tensor(2.5)}, {}),  # new trailing shape: a new segment
        ({"a": torch.ones(2, 5, dtype=torch.float64)}, {}),  # new dtype, and "s" missing
    ]
    _write(tmp_path, steps)
    read = list(open_capture(tmp_path).iter_steps("predict"))
    for captured, (tensors, _) in zip(read, steps, strict=True):
        assert captured.tensors.keys() == tensors.keys()
        for name, tensor in tensors.items():
            assert captured.tensors[name].dtype == tensor.dtype and torch.equal(captured.tensors[name], tensor)


def test_requesting_an_uncaptured_layer_lists_the_captured_ones(tmp_path):
    _write(tmp_path, [({"inputs": torch.ones(1, 2), "penultimate": torch.ones(1, 2)}, {})])
    with pytest.raises(LayerNotFoundError, match=r"'logits' was not captured.*Captured layers: inputs, penultimate") as info:
        list(open_capture(tmp_path).iter_steps("predict", layers=["logits"]))
    assert isinstance(info.value, KeyError)


def test_reading_a_missing_step_or_mode_is_not_found(tmp_path):
    _write(tmp_path, [({"penultimate": torch.ones(1, 2)}, {})])
    reader = open_capture(tmp_path)
    with pytest.raises(CaptureNotFoundError, match="No predict step 5"):
        reader.read_step("predict", 5)
    with pytest.raises(CaptureNotFoundError, match="No eval steps"):
        reader.load("eval", "penultimate")


def test_layers_of_selected_steps_only(tmp_path):
    _write(tmp_path, [({"inputs": torch.ones(1, 2), "penultimate": torch.zeros(1, 3)}, {})])
    [step] = open_capture(tmp_path).iter_steps("predict", layers=["penultimate"])
    assert list(step.tensors) == ["penultimate"]


def test_manifest_is_plain_json_describing_the_chunk(tmp_path):
    _write(tmp_path, [({"penultimate": torch.ones(2, 3)}, {"epoch": 1}), ({"penultimate": torch.ones(4, 3)}, {"epoch": 1})])
    [path] = (tmp_path / "predict" / "manifest").rglob("*.json")
    manifest = json.loads(path.read_text())
    assert (manifest["first_step"], manifest["last_step"], manifest["steps"]) == (0, 1, [0, 1])
    assert manifest["checksum"].startswith("sha256:") and manifest["meta"] == [{"epoch": 1}, {"epoch": 1}]
    assert manifest["segments"] == [
        {"name": "penultimate", "dtype": "float32", "item_shape": [3], "steps": [0, 1], "rows": [2, 4], "offset": 0, "nbytes": 72}
    ]
    assert json.loads((tmp_path / "trustops-capture.json").read_text())["backend"] == "native"


def test_a_failing_store_surfaces_on_flush(tmp_path):
    class BrokenStore(LocalStore):
        def put(self, key, data):
            if "/data/" in key:
                raise OSError("no space left on device")
            super().put(key, data)

    writer = NativeWriter(BrokenStore(tmp_path))
    writer.write_step("predict", {"penultimate": torch.ones(1, 2)})
    with pytest.raises(CaptureError, match="no space left on device"):
        writer.flush()
    writer.close()


def test_backpressure_keeps_every_step(tmp_path):
    steps = [({"penultimate": torch.full((64, 64), float(i))}, {}) for i in range(50)]
    _write(tmp_path, steps, max_pending_bytes=64 * 64 * 4 * 3, max_chunk_bytes=64 * 64 * 4 * 2)
    read = list(open_capture(tmp_path).iter_steps("predict"))
    assert [s.tensors["penultimate"][0, 0].item() for s in read] == [float(i) for i in range(50)]


def test_writer_options_are_validated(tmp_path):
    with pytest.raises(ValueError, match="flush_interval"):
        NativeWriter(tmp_path, flush_interval=0)
    with pytest.raises(ValueError, match="max_chunk_steps"):
        NativeWriter(tmp_path, max_chunk_steps=0)
    with pytest.raises(ValueError, match="mode"):
        NativeWriter(tmp_path).write_step("train", {})
