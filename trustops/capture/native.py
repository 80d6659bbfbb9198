"""The native capture format: raw tensor bytes plus a JSON manifest per chunk.

Layout under the store root (``<last>``/``<first>``: 12-digit step numbers, ``<shard>``:
``last // 100000`` as 6 digits, so no folder grows past 100k chunks)::

    trustops-capture.json                                  {"format": "trustops-capture", "backend": "native", "version": 1}
    <mode>/data/<shard>/<last>-<first>.bin                 tensors, back to back, each 64-byte aligned
    <mode>/manifest/<shard>/<last>-<first>.json            the commit marker (below)
    predict/leases/<shard>/<link>.json                     step leases (see trustops.capture.leases)

A chunk holds consecutive steps ``first..last`` of one mode (``eval`` or ``predict``).
Its data object is written first and its manifest second, each atomically, so a chunk
exists for readers exactly when its manifest does.  Naming manifests by their *last*
step makes "chunks with steps after N" a listing that starts after ``<N>-~``.

The manifest (columnar: a layer's tensors from consecutive steps are concatenated along
dim 0 into one *segment*, so a chunk of thousands of steps is a handful of segments)::

    {"format": "trustops-capture", "backend": "native", "version": 1, "mode": "predict",
     "first_step": 40, "last_step": 47, "data": "predict/data/000000/000000000047-000000000040.bin",
     "nbytes": 123456, "checksum": "sha256:<hex of the data object>", "byteorder": "little",
     "created": 1732345678.9, "steps": [40, 41, ..., 47], "meta": [{...}, ..., {...}],
     "layers": ["inputs", "outputs", "penultimate"],
     "segments": [{"name": "inputs", "dtype": "float32", "item_shape": [64],
                   "steps": [40, ..., 47], "rows": [32, ..., 32], "offset": 0, "nbytes": 65536}, ...]}

``dtype`` is the torch dtype's name.  Step ``steps[i]`` of a segment is rows
``sum(rows[:i]) .. sum(rows[:i + 1])`` of the segment's tensor of shape
``(sum(rows), *item_shape)``.  A layer whose dtype or trailing shape changes between steps
gets one segment per run of equal ones; a 0-d tensor has ``item_shape`` null and one row.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trustops.capture.base import CapturedStep, CaptureWriter, _Pending
from trustops.capture.errors import CaptureError, CaptureNotFoundError, CorruptChunkError, LayerNotFoundError
from trustops.capture.store import CaptureStore

if TYPE_CHECKING:  # listing chunks (a no-op monitor pass) needs no torch; writing and reading tensors import it
    import torch

ALIGN = 64
SHARD_SIZE = 100_000


def _stem(first: int, last: int) -> str:
    return f"{last // SHARD_SIZE:06d}/{last:012d}-{first:012d}"


def manifest_prefix(mode: str) -> str:
    return f"{mode}/manifest/"


def _after_key(mode: str, step: int) -> str:
    # '~' sorts after every digit, so this skips all manifests whose last step is <= step.
    return f"{manifest_prefix(mode)}{step // SHARD_SIZE:06d}/{step:012d}-~"


def _parse_manifest_key(key: str) -> tuple[int, int]:
    last, _, first = key.rsplit("/", 1)[-1].removesuffix(".json").partition("-")
    return int(first), int(last)


def _raw_bytes(tensor: torch.Tensor) -> memoryview:
    import torch

    flat = tensor.reshape(-1)
    return memoryview(flat.view(torch.uint8).numpy()) if flat.numel() else memoryview(b"")


def _torch_dtype(name: str) -> torch.dtype:
    import torch

    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {name!r}")
    return dtype


def _slab_runs(tensors: list[torch.Tensor]) -> list[torch.Tensor] | None:
    """``torch.cat(tensors)`` as a few zero-copy views, when the tensors are consecutive rows of slabs.

    That is how :class:`trustops.capture.hooks._Slabs` lays out a layer's steps: each maximal
    run of tensors that sit back to back in one contiguous base becomes one view of it, and
    the views' bytes, written one after another, are exactly the concatenation's.  Anything
    else (references kept with ``copy=False``, tensors of their own) returns ``None``.
    """
    runs: list[torch.Tensor] = []
    base = None
    for tensor in tensors:
        if tensor._base is base and base is not None and tensor.data_ptr() == expected and tensor.is_contiguous():
            expected += tensor.nbytes
            rows += tensor.shape[0]
            continue
        if base is not None:
            runs.append(_rows_view(base, first, expected, rows))
        base, first = tensor._base, tensor
        if base is None or not base.is_contiguous() or base.dtype != tensor.dtype or not tensor.is_contiguous():
            return None
        expected, rows = tensor.data_ptr() + tensor.nbytes, tensor.shape[0]
    runs.append(_rows_view(base, first, expected, rows))
    return runs


def _rows_view(base: torch.Tensor, first: torch.Tensor, end: int, rows: int) -> torch.Tensor:
    size = first.element_size()
    start = (first.data_ptr() - base.data_ptr()) // size
    return base.reshape(-1)[start : start + (end - first.data_ptr()) // size].view(rows, *first.shape[1:])


def _segments(steps: list[_Pending]) -> Iterator[tuple[str, list[int], list[torch.Tensor]]]:
    """Per layer, runs of consecutive steps whose tensors share dtype and trailing shape."""
    first = steps[0].tensors
    if all(item.tensors.keys() == first.keys() for item in steps):
        # The usual case: every step holds the same layers.  Comprehensions instead of a
        # per-step loop: this runs on the writer thread and competes for the GIL.
        step_numbers = [item.step for item in steps]
        uniform = True
        columns = {}
        for name in first:
            column = [item.tensors[name] for item in steps]
            head = column[0]
            key = (head.dtype, head.shape[1:] if head.dim() else None)
            if any((t.dtype, t.shape[1:] if t.dim() else None) != key for t in column):
                uniform = False
                break
            columns[name] = column
        if uniform:
            for name, column in columns.items():
                yield name, step_numbers, column
            return
    names = dict.fromkeys(name for item in steps for name in item.tensors)
    for name in names:
        run_key = None
        run_steps: list[int] = []
        run_tensors: list[torch.Tensor] = []
        for item in steps:
            tensor = item.tensors.get(name)
            if tensor is None:
                continue
            key = (tensor.dtype, tensor.shape[1:] if tensor.dim() else None)
            if key != run_key and run_steps:
                yield name, run_steps, run_tensors
                run_steps, run_tensors = [], []
            run_key = key
            run_steps.append(item.step)
            run_tensors.append(tensor)
        if run_steps:
            yield name, run_steps, run_tensors


class NativeWriter(CaptureWriter):
    """Writes the native format (see the module docstring); options as :class:`CaptureWriter`."""

    backend = "native"
    shared_modes = ("predict",)

    def _last_committed_step(self, mode: str) -> int:
        last = -1
        for key in self.store.list(manifest_prefix(mode)):
            if key.endswith(".json"):
                last = max(last, _parse_manifest_key(key)[1])
        return last

    def _write_chunk(self, mode: str, steps: list[_Pending]) -> None:
        import torch

        first, last = steps[0].step, steps[-1].step
        stem = _stem(first, last)
        data_key = f"{mode}/data/{stem}.bin"
        hasher = hashlib.sha256()
        parts: list[memoryview | bytes] = []
        segments = []
        offset = 0
        for name, run_steps, tensors in _segments(steps):
            scalar = tensors[0].dim() == 0
            if scalar:
                blocks = [torch.stack(tensors)]
            elif len(tensors) == 1:
                blocks = [tensors[0].contiguous()]
            else:
                # The hooks' slabs usually hold the run back to back already (no copy);
                # otherwise one copy into a contiguous block (torch does it without the GIL).
                blocks = _slab_runs(tensors) or [torch.cat(tensors)]
            pad = -offset % ALIGN
            if pad:
                parts.append(bytes(pad))
                hasher.update(bytes(pad))
                offset += pad
            nbytes = 0
            for block in blocks:
                raw = _raw_bytes(block)
                parts.append(raw)
                hasher.update(raw)
                nbytes += raw.nbytes
            head = blocks[0]
            segments.append(
                {
                    "name": name,
                    "dtype": str(head.dtype).removeprefix("torch."),
                    "item_shape": None if scalar else list(head.shape[1:]),
                    "steps": run_steps,
                    "rows": [1] * len(tensors) if scalar else [t.shape[0] for t in tensors],
                    "offset": offset,
                    "nbytes": nbytes,
                }
            )
            offset += nbytes
        manifest = {
            "format": "trustops-capture",
            "backend": "native",
            "version": 1,
            "mode": mode,
            "first_step": first,
            "last_step": last,
            "data": data_key,
            "nbytes": offset,
            "checksum": f"sha256:{hasher.hexdigest()}",
            "byteorder": sys.byteorder,
            "created": time.time(),
            "steps": [item.step for item in steps],
            "meta": [item.meta for item in steps],
            "layers": sorted({segment["name"] for segment in segments}),
            "segments": segments,
        }
        self.store.put(data_key, parts)
        self.store.put(f"{manifest_prefix(mode)}{stem}.json", json.dumps(manifest, separators=(",", ":")).encode())


@dataclass(frozen=True)
class NativeChunk:
    """A committed chunk: steps ``first_step..last_step`` of ``mode``; ``read`` loads it."""

    store: CaptureStore
    mode: str
    first_step: int
    last_step: int
    key: str

    @property
    def steps(self) -> range:
        return range(self.first_step, self.last_step + 1)

    def _corrupt(self, why: str) -> CorruptChunkError:
        return CorruptChunkError(
            f"Captured {self.mode} steps {self.first_step}-{self.last_step} in {self.store.uri} are unreadable: {why} "
            f"(manifest {self.key}).",
            mode=self.mode,
            steps=self.steps,
            key=self.key,
        )

    def manifest(self) -> dict[str, Any]:
        try:
            manifest = json.loads(self.store.get(self.key))
            manifest["steps"], manifest["segments"], manifest["data"], manifest["checksum"]  # noqa: B018
        except (ValueError, KeyError, TypeError):
            raise self._corrupt("the manifest is not valid JSON or lacks fields") from None
        if manifest.get("byteorder", sys.byteorder) != sys.byteorder:
            raise CaptureError(f"{self.key} was written on a {manifest['byteorder']}-endian machine; this one is {sys.byteorder}.")
        return manifest

    def read(self, layers: Sequence[str] | None = None, *, after: int | None = None) -> list[CapturedStep]:
        """The chunk's steps (those after ``after`` only), verified against the checksum.

        The tensors are views into the chunk's bytes (no copy per step).
        """
        import torch

        manifest = self.manifest()
        try:
            data = bytearray(self.store.get(manifest["data"]))
        except CaptureNotFoundError:
            raise self._corrupt(f"its data object {manifest['data']} is missing") from None
        if len(data) != manifest["nbytes"]:
            raise self._corrupt(f"the data object has {len(data)} bytes, the manifest says {manifest['nbytes']} (truncated)")
        algorithm, _, expected = manifest["checksum"].partition(":")
        if hashlib.new(algorithm, data).hexdigest() != expected:
            raise self._corrupt(f"the {algorithm} checksum of the data object does not match the manifest")
        available = manifest["layers"]
        if layers is not None:
            for layer in layers:
                if layer not in available:
                    raise LayerNotFoundError(layer, available, f"{self.mode} steps {self.first_step}-{self.last_step} of {self.store.uri}")
        wanted = [s for s in manifest["steps"] if after is None or s > after]
        tensors: dict[int, dict[str, torch.Tensor]] = {step: {} for step in wanted}
        for segment in manifest["segments"]:
            if layers is not None and segment["name"] not in layers:
                continue
            dtype = _torch_dtype(segment["dtype"])
            item_shape = segment["item_shape"]
            total = sum(segment["rows"])
            shape = (total, *item_shape) if item_shape is not None else (total,)
            if segment["nbytes"]:
                raw = torch.frombuffer(data, dtype=torch.uint8, count=segment["nbytes"], offset=segment["offset"])
                block = raw.view(dtype).reshape(shape)
            else:
                block = torch.empty(shape, dtype=dtype)
            start = 0
            for step, rows in zip(segment["steps"], segment["rows"]):
                if step in tensors:
                    tensors[step][segment["name"]] = block[start] if item_shape is None else block[start : start + rows]
                start += rows
        meta = dict(zip(manifest["steps"], manifest.get("meta") or [{}] * len(manifest["steps"])))
        return [CapturedStep(self.mode, step, tensors[step], meta[step]) for step in wanted]


def list_chunks(store: CaptureStore, mode: str, *, after: int | None = None) -> Iterator[NativeChunk]:
    """Committed chunks of ``mode`` holding a step after ``after`` (all when ``None``), in step order."""
    start = _after_key(mode, after) if after is not None else None
    for key in store.list(manifest_prefix(mode), start_after=start):
        if key.endswith(".json"):
            first, last = _parse_manifest_key(key)
            yield NativeChunk(store, mode, first, last, key)
