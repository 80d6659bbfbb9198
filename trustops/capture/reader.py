"""One read interface over both capture backends.

The monitor loop's pattern: ask for the chunks after its watermark, read them one by one,
and skip (and alert on) a corrupt one without moving the watermark past it::

    reader = open_capture("s3://captures/model-7", endpoint_url="http://127.0.0.1:8333")
    for chunk in reader.chunks("predict", after=watermark):
        try:
            steps = chunk.read(["penultimate"], after=watermark)
        except CorruptChunkError as e:
            alert(e)          # e.mode, e.steps, e.key
            continue
        ...

A native chunk holds many consecutive steps; an smdebug chunk is one step.  Nothing reads
more than one chunk at a time, so history never has to fit in memory.
"""

from __future__ import annotations

import abc
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from trustops.capture.base import MODES, CapturedStep, check_mode, read_descriptor
from trustops.capture.errors import (
    CaptureConfigError,
    CaptureError,
    CaptureNotFoundError,
    CorruptChunkError,
    LayerNotFoundError,
)
from trustops.capture.store import CaptureStore, open_store
from trustops.files import write_atomically

if TYPE_CHECKING:  # listing chunks needs no torch; reading their tensors does, and imports it then
    import torch


class Chunk(Protocol):
    """A committed unit of a capture: ``steps`` of ``mode``, stored under ``key``."""

    mode: str
    key: str

    @property
    def steps(self) -> Sequence[int]: ...

    def read(self, layers: Sequence[str] | None = None, *, after: int | None = None) -> list[CapturedStep]: ...


class CaptureReader(abc.ABC):
    """Read a capture chunk by chunk; see the module docstring."""

    backend: str

    def __init__(self, store: CaptureStore) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.store!r})"

    @abc.abstractmethod
    def chunks(self, mode: str, *, after: int | None = None) -> Iterator[Chunk]:
        """Committed chunks of ``mode`` holding a step after ``after`` (all when ``None``), in step order."""

    def steps(self, mode: str, *, after: int | None = None) -> list[int]:
        """Committed step numbers of ``mode`` after ``after``, ascending (no chunk data is read)."""
        return [s for chunk in self.chunks(mode, after=after) for s in chunk.steps if after is None or s > after]

    def committed_horizon(self, mode: str = "predict", *, after: int | None = None, stale_after: float | None = None) -> int | None:
        """The highest step ``h`` such that no step ``<= h`` can still be committed; ``None`` when there are none.

        Every step up to ``h`` is committed, or void, or was reserved by a writer that is gone
        (its process on this host exited) or stale (its step lease is older than
        ``stale_after`` seconds, default :data:`trustops.capture.leases.STALE_AFTER`).  A monitor
        that reads only up to ``h`` never moves past a step another process is still writing.
        ``after`` (a watermark: everything up to it is settled) keeps the look-up short.
        """
        from trustops.capture.leases import STALE_AFTER, committed_horizon

        mode = check_mode(mode)

        def committed(first: int) -> Iterator[int]:
            for chunk in self.chunks(mode, after=first - 1):
                yield from (s for s in chunk.steps if s >= first)

        return committed_horizon(
            self.store, mode, committed, after=after, stale_after=STALE_AFTER if stale_after is None else stale_after
        )

    def iter_steps(
        self, mode: str, *, after: int | None = None, layers: Sequence[str] | None = None
    ) -> Iterator[CapturedStep]:
        """Steps of ``mode`` after ``after``, one chunk in memory at a time; raises on a corrupt chunk."""
        for chunk in self.chunks(mode, after=after):
            yield from chunk.read(layers, after=after)

    def read_step(self, mode: str, step: int, *, layers: Sequence[str] | None = None) -> CapturedStep:
        mode = check_mode(mode)
        for chunk in self.chunks(mode, after=step - 1):
            if step in chunk.steps:
                for captured in chunk.read(layers, after=step - 1):
                    if captured.step == step:
                        return captured
            break
        raise CaptureNotFoundError(f"No {mode} step {step} in the capture at {self.store.uri}.")

    def layers(self, mode: str) -> list[str]:
        """Layer names held by the latest chunk of ``mode``."""
        latest = None
        for latest in self.chunks(mode):
            pass
        if latest is None:
            raise CaptureNotFoundError(f"No {check_mode(mode)} steps were captured at {self.store.uri}.")
        return self._chunk_layers(latest)

    @abc.abstractmethod
    def _chunk_layers(self, chunk: Chunk) -> list[str]: ...

    def load(
        self,
        mode: str,
        layer: str,
        *,
        after: int | None = None,
        where: dict[str, Any] | None = None,
    ) -> torch.Tensor:
        """One layer of all steps of ``mode`` after ``after``, concatenated along dim 0.

        ``where`` keeps only steps whose ``meta`` has those items, e.g. ``{"epoch": 4}``
        for one validation pass of the reference.
        """
        parts = []
        for captured in self.iter_steps(mode, after=after, layers=[layer]):
            if where and any(captured.meta.get(k) != v for k, v in where.items()):
                continue
            parts.append(captured.tensors[layer])
        if not parts:
            raise CaptureNotFoundError(
                f"No {check_mode(mode)} steps{'' if after is None else f' after {after}'}"
                f"{'' if not where else f' with {where}'} were captured at {self.store.uri}."
            )
        import torch

        return torch.cat(parts)

    def last_pass(self, mode: str = "eval") -> dict[str, Any]:
        """The ``where`` filter for the last validation pass (the latest step's ``epoch``)."""
        latest = None
        for latest in self.chunks(mode):
            pass
        if latest is None:
            raise CaptureNotFoundError(f"No {check_mode(mode)} steps were captured at {self.store.uri}.")
        meta = latest.read(after=latest.steps[-1] - 1)[-1].meta
        return {"epoch": meta["epoch"]} if "epoch" in meta else {}


class NativeReader(CaptureReader):
    backend = "native"

    def chunks(self, mode: str, *, after: int | None = None) -> Iterator[Chunk]:
        from trustops.capture.native import list_chunks

        return list_chunks(self.store, check_mode(mode), after=after)

    def _chunk_layers(self, chunk: Chunk) -> list[str]:
        return list(chunk.manifest().get("layers", []))  # type: ignore[attr-defined]


@dataclass(frozen=True)
class SmdebugChunk:
    """One smdebug step (``steps`` is its mode step), read through ``smdebug``'s trial."""

    reader: SmdebugReader
    mode: str
    global_step: int
    mode_step: int
    key: str

    @property
    def steps(self) -> range:
        return range(self.mode_step, self.mode_step + 1)

    def read(self, layers: Sequence[str] | None = None, *, after: int | None = None) -> list[CapturedStep]:
        if after is not None and self.mode_step <= after:
            return []
        return [self.reader._read(self, layers)]


class SmdebugReader(CaptureReader):
    """Reads smdebug trials (ours or SageMaker's) with ``smdebug.trials.create_trial``.

    A local trial is read in place.  smdebug's own S3 reader cannot be pointed at an
    arbitrary endpoint by argument, and against SeaweedFS its listing call
    (``Prefix=<p>/index, StartAfter=<p>/index``) returns nothing; so an S3 trial is mirrored
    into ``cache_dir`` through our boto3 store, only the index files after the last one
    mirrored and their event files, and ``create_trial`` reads the mirror.
    """

    backend = "smdebug"

    def __init__(self, store: CaptureStore, *, cache_dir: str | os.PathLike | None = None) -> None:
        super().__init__(store)
        descriptor = read_descriptor(store) or {}
        self.aliases: dict[str, str] = dict(descriptor.get("aliases", {}))
        self._mirror_after: str | None = None
        if store.local_root is not None:
            self.path = store.local_root
        else:
            self.path = Path(cache_dir) if cache_dir is not None else Path(tempfile.mkdtemp(prefix="trustops-trial-"))
        self._trial = None
        self._sidecars: dict[int, dict[str, Any]] = {}

    # -- mirroring and the trial ---------------------------------------------------------
    def _mirror(self) -> None:
        if self.store.local_root is not None:
            return
        from trustops.capture.smdebug_backend import checksum_key, parse_index_key

        target = self.path
        collections = "collections/000000000/"
        if not (target / collections).is_dir():
            for key in self.store.list(collections):
                self._download(key)
        for key in self.store.list("index/", start_after=self._mirror_after):
            index = json.loads(self.store.get(key))
            event_file = index.get("meta", {}).get("event_file_name")
            if event_file:
                self._download(event_file)
            step = parse_index_key(key)
            if self.store.exists(checksum_key(step)):
                self._download(checksum_key(step))
            self._download(key)  # last: the index file commits the step in the mirror too
            self._mirror_after = key

    def _download(self, key: str) -> None:
        # A local mirror of the store: a crash may lose it (it is fetched again), never tear it.
        write_atomically(self.path.joinpath(*key.split("/")), self.store.get(key), durable=False)

    def trial(self):
        """The ``smdebug`` trial over the capture (refreshed on every listing)."""
        self._mirror()
        if self._trial is None:
            if not any(self.path.joinpath("collections").glob("*/*collections.json")):
                raise CaptureNotFoundError(
                    f"No smdebug trial at {self.store.uri}: it has no collections/ files (nothing captured yet, "
                    "or the URI names the wrong prefix)."
                )
            from smdebug.trials import create_trial

            self._trial = create_trial(str(self.path))
        return self._trial

    # -- the interface -------------------------------------------------------------------
    def chunks(self, mode: str, *, after: int | None = None) -> Iterator[Chunk]:
        from smdebug.core.modes import ModeKeys

        from trustops.capture.smdebug_backend import index_key

        mode = check_mode(mode)
        trial = self.trial()
        modekey = ModeKeys.EVAL if mode == "eval" else ModeKeys.PREDICT
        for mode_step in trial.steps(mode=modekey):
            if after is not None and mode_step <= after:
                continue
            global_step = trial.global_step(modekey, mode_step)
            yield SmdebugChunk(self, mode, global_step, mode_step, index_key(global_step))

    def _tensor_names(self, chunk: SmdebugChunk) -> list[str]:
        from smdebug.core.modes import ModeKeys

        modekey = ModeKeys.EVAL if chunk.mode == "eval" else ModeKeys.PREDICT
        return sorted(self.trial().tensor_names(step=chunk.mode_step, mode=modekey))

    def _logical_names(self, tensor_names: Sequence[str]) -> dict[str, str]:
        """Layer name -> smdebug tensor name (``penultimate`` -> ``penultimate_output_0``)."""
        names = {name: name for name in tensor_names}
        reverse_alias = {tensor: layer for layer, tensor in self.aliases.items()}
        for name in tensor_names:
            if name in reverse_alias:
                names[reverse_alias[name]] = name
            elif name.endswith("_output_0"):
                names.setdefault(name.removesuffix("_output_0"), name)
        return names

    def _chunk_layers(self, chunk: Chunk) -> list[str]:
        tensor_names = self._tensor_names(chunk)  # type: ignore[arg-type]
        reverse_alias = {tensor: layer for layer, tensor in self.aliases.items()}
        return sorted(
            reverse_alias.get(n, n.removesuffix("_output_0") if n.endswith("_output_0") else n) for n in tensor_names
        )

    def _corrupt(self, chunk: SmdebugChunk, why: str) -> CorruptChunkError:
        return CorruptChunkError(
            f"Captured {chunk.mode} step {chunk.mode_step} (smdebug step {chunk.global_step}) in {self.store.uri} is unreadable: {why}.",
            mode=chunk.mode, steps=chunk.steps, key=chunk.key,
        )  # fmt: skip

    def _verify(self, chunk: SmdebugChunk) -> dict[str, Any]:
        from trustops.capture.smdebug_backend import checksum_key, event_key

        sidecar_path = self.path.joinpath(*checksum_key(chunk.global_step).split("/"))
        if not sidecar_path.is_file():
            return {}  # a trial written by SageMaker: smdebug's own read errors are the check
        try:
            sidecar = json.loads(sidecar_path.read_bytes())
            event_path = self.path.joinpath(*sidecar["event_file"].split("/"))
        except (ValueError, KeyError):
            raise self._corrupt(chunk, "its checksum sidecar is not valid JSON") from None
        if not event_path.is_file():
            raise self._corrupt(chunk, f"its event file {event_key(chunk.global_step)} is missing")
        if hashlib.sha256(event_path.read_bytes()).hexdigest() != sidecar.get("sha256"):
            raise self._corrupt(chunk, "the SHA-256 of its event file does not match its checksum sidecar (truncated or corrupt)")
        return sidecar

    def _read(self, chunk: SmdebugChunk, layers: Sequence[str] | None) -> CapturedStep:
        from smdebug.core.modes import ModeKeys

        sidecar = self._verify(chunk)
        modekey = ModeKeys.EVAL if chunk.mode == "eval" else ModeKeys.PREDICT
        names = self._logical_names(self._tensor_names(chunk))
        wanted = list(layers) if layers is not None else self._chunk_layers(chunk)
        tensors = {}
        for layer in wanted:
            if layer not in names:
                raise LayerNotFoundError(layer, self._chunk_layers(chunk), f"{chunk.mode} step {chunk.mode_step} of {self.store.uri}")
            try:
                value = self.trial().tensor(names[layer]).value(chunk.mode_step, mode=modekey)
            except Exception as e:  # smdebug raises assorted errors on a truncated event file
                raise self._corrupt(chunk, f"smdebug failed to read {names[layer]} ({type(e).__name__}: {e})") from e
            import torch

            tensors[layer] = torch.from_numpy(value.copy())
        return CapturedStep(chunk.mode, chunk.mode_step, tensors, sidecar.get("meta", {}))


def detect_backend(store: CaptureStore) -> str:
    """``native`` or ``smdebug``, from the descriptor or (for SageMaker trials) the layout."""
    descriptor = read_descriptor(store)
    if descriptor is not None:
        return str(descriptor["backend"])
    if next(iter(store.list("collections/")), None) is not None or next(iter(store.list("index/")), None) is not None:
        return "smdebug"
    raise CaptureNotFoundError(
        f"Nothing was captured at {store.uri}: it holds neither a trustops capture (trustops-capture.json) "
        "nor an smdebug trial (collections/, index/). Check the URI (and the endpoint for s3://)."
    )


def open_capture(
    uri: str | os.PathLike | CaptureStore,
    *,
    backend: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    **store_options: Any,
) -> CaptureReader:
    """A reader for the capture at ``uri``; the backend is detected unless given.

    Parameters
    ----------
    uri
        Local folder, ``file:///path`` or ``s3://bucket/prefix`` (or a store).
    backend
        ``"native"`` or ``"smdebug"``; detected from the store when ``None``.
    cache_dir
        smdebug over S3 only: where the trial is mirrored (a temporary folder by default).
    store_options
        ``endpoint_url``, ``retries``, ... (see :func:`~trustops.capture.store.open_store`).
    """
    store = open_store(uri, **store_options)
    found = detect_backend(store)
    if backend is not None and backend != found:
        raise CaptureConfigError(f"{store.uri} holds a {found!r} capture, not {backend!r}.")
    if found == "native":
        return NativeReader(store)
    if found == "smdebug":
        return SmdebugReader(store, cache_dir=cache_dir)
    raise CaptureError(f"{store.uri} holds a capture of unknown backend {found!r}.")


__all__ = ["CaptureReader", "Chunk", "NativeReader", "SmdebugReader", "open_capture", "detect_backend", "MODES"]
