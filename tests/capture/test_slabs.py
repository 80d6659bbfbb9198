"""The hooks' slab copies: the bytes on disk are exactly those of the straightforward clone + cat."""

import json
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from trustops.capture import ActivationCapture, open_capture
from trustops.capture.hooks import _Slabs, _snapshot
from trustops.capture.native import _slab_runs
from trustops.models.networks import build_classifier


def _capture(folder: Path, batches: list[torch.Tensor], take) -> None:
    """One chunk (the writer never flushes on its own here), the model in ``inference_mode``."""
    torch.manual_seed(0)
    model = build_classifier("mlp", (6,), 3, hidden=[5, 4]).eval()
    capture = ActivationCapture(model, folder, mode="predict", flush_interval=3600.0)
    capture._take = take
    with capture, torch.inference_mode():
        for batch in batches:
            model(batch)
            batch.mul_(-1.0)  # a serving loop reusing its input buffer: the capture must hold a copy


def _on_disk(folder: Path) -> list[tuple[dict, bytes]]:
    chunks = []
    for manifest_path in sorted((folder / "predict" / "manifest").rglob("*.json")):
        manifest = json.loads(manifest_path.read_text())
        manifest.pop("created")
        chunks.append((manifest, (folder / manifest["data"]).read_bytes()))
    return chunks


@settings(max_examples=25, deadline=None)
@given(
    rows=st.lists(st.integers(0, 40), min_size=1, max_size=12),
    slab_bytes=st.sampled_from([1, 100, 512, 1 << 20]),
)
def test_slab_capture_writes_exactly_the_bytes_of_clone_and_cat(tmp_path_factory, rows, slab_bytes):
    generator = torch.Generator().manual_seed(len(rows))
    batches = [torch.randn(n, 6, generator=generator) for n in rows]
    straightforward, optimized = tmp_path_factory.mktemp("clone"), tmp_path_factory.mktemp("slab")
    _capture(straightforward, [b.clone() for b in batches], _snapshot)
    _capture(optimized, [b.clone() for b in batches], _Slabs(slab_bytes))

    expected, actual = _on_disk(straightforward), _on_disk(optimized)
    assert len(actual) == 1 and actual == expected
    steps = list(open_capture(optimized).iter_steps("predict"))
    assert [torch.equal(step.tensors["inputs"], batch) for step, batch in zip(steps, batches)] == [True] * len(rows)


def test_slab_runs_split_at_slab_boundaries_and_refuse_foreign_tensors():
    slabs = _Slabs(slab_bytes=3 * 4 * 4)  # three rows of four float32 per slab
    views = [slabs("x", torch.full((n, 4), float(i))) for i, n in enumerate([2, 1, 2, 1])]
    runs = _slab_runs(views)
    assert [run.shape[0] for run in runs] == [3, 3]
    assert torch.equal(torch.cat(runs), torch.cat(views))
    assert _slab_runs([views[0], torch.zeros(1, 4)]) is None  # not a slab view: the writer concatenates


def test_slabs_work_outside_inference_mode_after_being_made_inside_it():
    slabs = _Slabs()
    with torch.inference_mode():
        first = slabs("x", torch.ones(2, 3))
    second = slabs("x", torch.full((1, 3), 2.0, requires_grad=True))
    assert not second.requires_grad and second._base is first._base
    assert torch.equal(torch.cat(_slab_runs([first, second])), torch.tensor([[1.0] * 3, [1.0] * 3, [2.0] * 3]))


@pytest.mark.parametrize("dtype", [torch.float16, torch.int64, torch.bool])
def test_a_dtype_or_shape_change_starts_a_new_slab(dtype):
    slabs = _Slabs()
    a = slabs("x", torch.zeros(2, 3))
    b = slabs("x", torch.zeros(2, 3, dtype=dtype))
    c = slabs("x", torch.zeros(2, 5, dtype=dtype))
    assert a._base is not b._base and b._base is not c._base
    assert (b.dtype, c.shape) == (dtype, torch.Size([2, 5]))
