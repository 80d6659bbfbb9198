"""The smdebug backend: captures in SageMaker Debugger's trial layout.

Every captured step becomes one smdebug step, written with smdebug's own ``FileWriter``
(tfevent records plus an index file), in ``EVAL`` mode for the reference and ``PREDICT``
mode for inference, so ``smdebug.trials.create_trial(path)`` reads our captures and our
reader reads trials that SageMaker wrote.  Tensor names follow smdebug's PyTorch hook:
``<module>_output_0`` for a module's output, ``<Root>_input_0``/``<Root>_output_0`` for the
model's own inputs and outputs (``Root`` is the model's class name).

Two deviations from smdebug's hook, both because of the environment:

* smdebug 1.0.34 serializes tensors with ``ndarray.tostring``, removed in NumPy 2;
  :class:`_FileWriter` overrides ``write_tensor`` to build the same ``TensorProto`` with
  ``tobytes``.  Nothing else of smdebug is patched.
* smdebug's record checksums use a pure-Python CRC32C (milliseconds per step), so they stay
  off, as in SageMaker's default; instead each step gets a sidecar
  ``trustops/checksums/<shard>/<step>.json`` with the SHA-256 of its event file, written
  before the index file.  Trials without sidecars (SageMaker's) are still read; truncation
  shows up there as smdebug's own read error, which the reader reports the same way.

Commit order per step: event file, checksum sidecar, index file.  smdebug readers list
index files, so a step is visible only once it is complete.  Each file is staged in a
local folder and moved into the store atomically (renamed locally, a single PUT on S3).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

import trustops  # noqa: F401 - selects the pure-Python protobuf runtime smdebug needs
from trustops.capture.base import CaptureWriter, _Pending
from trustops.capture.store import CaptureStore

WORKER = "worker_0"
CHECKSUM_PREFIX = "trustops/checksums/"
SHARD_SIZE = 1000  # smdebug's own index sharding


def _modekey(mode: str):
    from smdebug.core.modes import ModeKeys

    return ModeKeys.EVAL if mode == "eval" else ModeKeys.PREDICT


def index_key(step: int, worker: str = WORKER) -> str:
    return f"index/{step // SHARD_SIZE:09d}/{step:012d}_{worker}.json"


def event_key(step: int, worker: str = WORKER) -> str:
    return f"events/{step:012d}/{step:012d}_{worker}.tfevents"


def checksum_key(step: int) -> str:
    return f"{CHECKSUM_PREFIX}{step // SHARD_SIZE:09d}/{step:012d}.json"


def parse_index_key(key: str) -> int:
    return int(key.rsplit("/", 1)[-1].split("_", 1)[0])


def smdebug_tensor_name(layer: str, root_name: str) -> str:
    """The name smdebug's PyTorch hook gives a captured layer."""
    if layer == "inputs":
        return f"{root_name}_input_0"
    if layer == "outputs":
        return f"{root_name}_output_0"
    return f"{layer}_output_0"


def _file_writer_class():
    from smdebug.core.modes import ModeKeys
    from smdebug.core.tfevent.proto.summary_pb2 import Summary
    from smdebug.core.tfevent.proto.tensor_pb2 import TensorProto
    from smdebug.core.tfevent.proto.tensor_shape_pb2 import TensorShapeProto
    from smdebug.core.tfevent.util import _get_proto_dtype
    from smdebug.core.writer import FileWriter

    class _FileWriter(FileWriter):
        def write_tensor(self, tdata, tname, write_index=True, mode=ModeKeys.GLOBAL, mode_step=None, timestamp=None):
            mode, mode_step = self._check_mode_step(mode, mode_step, self.step)
            value = np.ascontiguousarray(tdata)
            _, dtype = _get_proto_dtype(value.dtype)
            shape = TensorShapeProto(dim=[TensorShapeProto.Dim(size=d, name=f"{tname}_{d}") for d in value.shape])
            proto = TensorProto(dtype=dtype, tensor_content=value.tobytes(), tensor_shape=shape)
            summary = Summary(value=[Summary.Value(tag=tname, metadata=self._get_metadata(mode, mode_step), tensor=proto)])
            if write_index:
                self.proto_writer.write_summary_with_index(summary, self.step, tname, mode, mode_step, timestamp=timestamp)
            else:
                self.proto_writer.write_summary(summary, self.step, timestamp)

    return _FileWriter


class SmdebugWriter(CaptureWriter):
    """Writes smdebug trials; options as :class:`CaptureWriter`, plus ``root_name``.

    ``root_name`` names the model in tensor names (smdebug uses the model's class name);
    the hooks set it from the model they are attached to.
    """

    backend = "smdebug"

    def __init__(self, store: str | CaptureStore, *, root_name: str = "Classifier", **options: Any) -> None:
        self.root_name = root_name
        self._global_next: int | None = None
        super().__init__(store, **options)
        # smdebug numbers steps globally across modes; mode steps count within a mode.
        self._global_next = self._last_global_step() + 1
        self._staging = self._make_staging()
        self._collections_written = False
        self._file_writer = None

    def _make_staging(self) -> Path:
        root = self.store.local_root
        if root is not None:  # same file system as the store: publishing is a rename
            (root / ".staging").mkdir(parents=True, exist_ok=True)
            return Path(tempfile.mkdtemp(prefix="w-", dir=root / ".staging"))
        return Path(tempfile.mkdtemp(prefix="trustops-smdebug-"))

    def _descriptor(self) -> dict[str, Any]:
        aliases = {layer: smdebug_tensor_name(layer, self.root_name) for layer in ("inputs", "outputs")}
        return {**super()._descriptor(), "root_name": self.root_name, "aliases": aliases}

    def _last_global_step(self) -> int:
        last = -1
        for key in self.store.list("index/"):
            last = max(last, parse_index_key(key))
        return last

    def _last_committed_step(self, mode: str) -> int:
        # Index files carry the mode; scan from the newest until one of ``mode`` turns up.
        keys = sorted(self.store.list("index/"), reverse=True)
        for key in keys:
            meta = json.loads(self.store.get(key)).get("meta", {})
            if str(meta.get("mode", "")).lower() == mode:
                return int(meta["mode_step"])
        return -1

    def _write_collections(self) -> None:
        from smdebug.core.collection_manager import CollectionManager

        manager = CollectionManager()
        manager.set_num_workers(1)
        manager.export(str(self._staging), f"{WORKER}_collections.json")
        staged = self._staging / "collections" / "000000000" / f"{WORKER}_collections.json"
        self.store.put_file(f"collections/000000000/{WORKER}_collections.json", staged)
        self._collections_written = True

    def _write_chunk(self, mode: str, steps: list[_Pending]) -> None:
        if not self._collections_written:
            self._write_collections()
        writer_class = self._file_writer or _file_writer_class()
        self._file_writer = writer_class
        for item in steps:
            global_step = self._global_next
            writer = writer_class(str(self._staging), worker=WORKER, step=global_step, mode=_modekey(mode))
            for layer, tensor in item.tensors.items():
                value = tensor.detach()
                if value.dtype == torch.bfloat16:  # no NumPy dtype for it
                    value = value.float()
                writer.write_tensor(
                    value.numpy(), smdebug_tensor_name(layer, self.root_name), mode=_modekey(mode), mode_step=item.step
                )
            writer.close()
            staged_event = self._staging / event_key(global_step)
            staged_index = self._staging / index_key(global_step)
            digest = hashlib.sha256(staged_event.read_bytes()).hexdigest()
            sidecar = {
                "step": global_step,
                "mode": mode,
                "mode_step": item.step,
                "event_file": event_key(global_step),
                "sha256": digest,
                "meta": item.meta,
            }
            self.store.put_file(event_key(global_step), staged_event)
            self.store.put(checksum_key(global_step), json.dumps(sidecar).encode())
            self.store.put_file(index_key(global_step), staged_index)
            self._global_next = global_step + 1

    def close(self) -> None:
        try:
            super().close()
        finally:
            shutil.rmtree(getattr(self, "_staging", ""), ignore_errors=True)
            staging_parent = self.store.local_root / ".staging" if self.store.local_root else None
            if staging_parent is not None:
                try:
                    os.rmdir(staging_parent)
                except OSError:
                    pass
