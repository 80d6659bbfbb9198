"""Forward hooks that capture a model's activations (the Lightning callback is in ``callback``).

Each call of the hooked model's ``forward`` is one step.  The step holds:

* ``penultimate`` (the module of that name; our classifiers expose it), every module named in
  ``layers`` and every module whose qualified name fully matches the ``include`` regex, under
  its module name (``features.5``: one tensor of that name, in the smdebug format too);
* in ``predict`` mode also ``inputs`` (the first positional argument) and ``outputs``
  (what ``forward`` returned).

The hooks copy each tensor (detached, on the CPU; ``copy=False`` keeps references instead)
and hand the step to a :class:`~trustops.capture.base.CaptureWriter`, which writes it from
a background thread: the forward pass never waits on disk or network unless the writer's
queue is full.

Examples
--------
>>> import tempfile, torch
>>> from trustops.models.networks import build_classifier
>>> from trustops.capture import ActivationCapture, open_capture
>>> model = build_classifier("mlp", (64,), 10).eval()
>>> folder = tempfile.mkdtemp()
>>> with ActivationCapture(model, folder, mode="predict") as capture, torch.inference_mode():
...     _ = model(torch.zeros(4, 64))
...     _ = model(torch.zeros(2, 64))
>>> reader = open_capture(folder)
>>> reader.steps("predict")
[0, 1]
>>> reader.read_step("predict", 1).tensors["penultimate"].shape
torch.Size([2, 32])
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from trustops.capture.base import CaptureWriter, check_mode
from trustops.capture.errors import CaptureConfigError
from trustops.capture.store import CaptureStore

BACKENDS = ("native", "smdebug")
# The attribute a model records its further captured layers under (``capture.layers``, module names;
# see trustops.training.trainer.set_capture_layers): pickled with it, so every capture of the model,
# the training reference and the served traffic alike, records the same layers.
CAPTURE_LAYERS_ATTR = "capture_layers"
DEFAULT_BACKEND = "native"


def make_writer(store: str | CaptureStore, *, backend: str = DEFAULT_BACKEND, **options: Any) -> CaptureWriter:
    """A writer of the given backend (``native`` or ``smdebug``) for a capture URI or store."""
    if backend == "native":
        from trustops.capture.native import NativeWriter

        return NativeWriter(store, **options)
    if backend == "smdebug":
        from trustops.capture.smdebug_backend import SmdebugWriter

        return SmdebugWriter(store, **options)
    raise CaptureConfigError(f"Unknown capture backend {backend!r}. Choose one of: {', '.join(BACKENDS)}.")


SLAB_BYTES = 1 << 20


def model_identity(model: nn.Module, name: str | None = None) -> dict[str, Any]:
    """What a capture store records of the model it belongs to: class, parameter count, a digest of layer shapes.

    Two models with the same parameter names and shapes (e.g. two trainings of one
    architecture) share a digest; a store refuses a writer whose digest, or registered
    ``name`` when both have one, differs from the store's.
    """
    import hashlib

    shapes = [(n, tuple(p.shape)) for n, p in model.named_parameters()]
    digest = hashlib.sha256(repr(shapes).encode()).hexdigest()[:12]
    identity: dict[str, Any] = {"class": model._get_name(), "parameters": sum(p.numel() for p in model.parameters()), "shapes": digest}
    if name:
        identity["name"] = name
    return identity


def _snapshot(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """A CPU copy detached from autograd; the straightforward copy (each tensor its own allocation)."""
    if tensor.is_cpu:
        return tensor.detach().clone() if tensor.requires_grad else tensor.clone()
    return tensor.detach().to("cpu")


def _reference(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """The tensor itself, detached (``copy=False``: the caller promises no in-place change)."""
    if tensor.is_cpu:
        return tensor.detach() if tensor.requires_grad else tensor
    return tensor.detach().to("cpu")


class _Slabs:
    """Copies each captured tensor into the next rows of a preallocated per-layer slab.

    The copy is the one :func:`_snapshot` makes, but consecutive steps of a layer land back
    to back in one block of memory, so the writer hands a run of them to the store as a
    single view of the slab instead of concatenating them (one copy of the data, not two).
    A slab is never reused: a full one is dropped and freed once its rows are written.
    """

    def __init__(self, slab_bytes: int = SLAB_BYTES) -> None:
        self.slab_bytes = slab_bytes
        self._slabs: dict[str, list[Any]] = {}  # name -> [slab, next free row, dtype, item shape]

    def __call__(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        if tensor.dim() == 0:
            return _snapshot(name, tensor)
        if tensor.requires_grad:
            tensor = tensor.detach()
        rows = tensor.shape[0]
        entry = self._slabs.get(name)
        if entry is None or entry[1] + rows > entry[0].shape[0] or entry[2] != tensor.dtype or entry[3] != tensor.shape[1:]:
            entry = self._new_slab(name, tensor)
        start = entry[1]
        view = entry[0][start : start + rows]
        view.copy_(tensor)
        entry[1] = start + rows
        return view

    def _new_slab(self, name: str, tensor: torch.Tensor) -> list[Any]:
        row_bytes = max(1, tensor[0].nbytes) if tensor.shape[0] else max(1, tensor.element_size())
        capacity = max(tensor.shape[0], self.slab_bytes // row_bytes)
        # A normal tensor even under inference_mode: an inference tensor could not be written
        # to by a later forward pass run outside inference mode.
        with torch.inference_mode(False):
            slab = torch.empty((capacity, *tensor.shape[1:]), dtype=tensor.dtype)
        entry = self._slabs[name] = [slab, 0, tensor.dtype, tensor.shape[1:]]
        return entry

    def clear(self) -> None:
        self._slabs.clear()


def _copy(value: Any, name: str, into: dict[str, torch.Tensor], take=_snapshot) -> None:
    if isinstance(value, torch.Tensor):
        into[name] = take(name, value)
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            if isinstance(item, torch.Tensor):
                into[f"{name}.{i}"] = take(f"{name}.{i}", item)


class ActivationCapture:
    """Capture a model's steps into a capture store while attached (a context manager).

    Parameters
    ----------
    model
        Any ``nn.Module``; each call of its ``forward`` is one step.
    store
        A capture URI (local folder or ``s3://bucket/prefix``), a store, or a writer.  A
        writer passed in stays open on exit (its owner closes it); one made here is closed.
    mode
        ``"predict"`` (inference) or ``"eval"`` (the validation-time reference).
    backend
        ``"native"`` (default, the faster) or ``"smdebug"``; ignored when given a writer.
    include
        A regex; modules whose qualified name (``features.1``) fully matches it are captured too.
    penultimate
        Name of the representation module (``None`` to skip it).
    layers
        Qualified names of further modules to capture (e.g. ``["features.5"]``, the layers the
        monitor combines); each must exist.  ``None``: those the model records under
        :data:`CAPTURE_LAYERS_ATTR` (none for a model trained without ``capture.layers``).
    save_inputs, save_outputs
        Capture the model's inputs/outputs; by default only in ``predict`` mode.
    copy
        Copy each captured tensor in the hook (default).  ``False`` keeps a reference
        instead, which saves a few microseconds per tensor but is only correct when nothing
        modifies the inputs, outputs or captured activations in place afterwards (e.g. a
        serving loop refilling its input buffer would corrupt the capture).
    writer_options
        Passed to the writer (``flush_interval``, ``endpoint_url``, ...).
    """

    def __init__(
        self,
        model: nn.Module,
        store: str | CaptureStore | CaptureWriter,
        *,
        mode: str = "predict",
        backend: str = DEFAULT_BACKEND,
        include: str | None = None,
        penultimate: str | None = "penultimate",
        layers: Sequence[str] | None = None,
        save_inputs: bool | None = None,
        save_outputs: bool | None = None,
        copy: bool = True,
        **writer_options: Any,
    ) -> None:
        self.model = model
        self._take = _Slabs() if copy else _reference
        self.mode = check_mode(mode)
        self._save_inputs = save_inputs
        self._save_outputs = save_outputs
        if layers is None:
            layers = getattr(model, CAPTURE_LAYERS_ATTR, None)
        self.modules = self._select_modules(model, include, penultimate, layers)
        if isinstance(store, CaptureWriter):
            self.writer, self._owns_writer = store, False
        else:
            if backend == "smdebug":
                writer_options.setdefault("root_name", model._get_name())
            writer_options.setdefault("model", model_identity(model))
            self.writer, self._owns_writer = make_writer(store, backend=backend, **writer_options), True
        self.meta: dict[str, Any] = {}
        self.last_step: int | None = None
        self._handles: list[Any] = []
        self._buffer: dict[str, torch.Tensor] = {}
        self._inputs, self._outputs = self.save_inputs, self.save_outputs

    @staticmethod
    def _select_modules(
        model: nn.Module, include: str | None, penultimate: str | None, layers: Sequence[str] | None = None
    ) -> dict[str, nn.Module]:
        named = dict(model.named_modules())
        selected: dict[str, nn.Module] = {}
        if penultimate is not None:
            if penultimate not in named or penultimate == "":
                raise CaptureConfigError(
                    f"The model has no module {penultimate!r} to capture as the penultimate layer. "
                    f"Its modules: {', '.join(n for n in named if n) or '(none)'}. Pass penultimate=<name> or None."
                )
            selected["penultimate"] = named[penultimate]
        if include is not None:
            try:
                pattern = re.compile(include)
            except re.error as e:
                raise CaptureConfigError(f"`include` is not a valid regex ({e}). Got: {include!r}") from None
            matched = {name: module for name, module in named.items() if name and pattern.fullmatch(name)}
            if not matched:
                raise CaptureConfigError(
                    f"`include`={include!r} matches no module name. The model's modules: {', '.join(n for n in named if n)}."
                )
            selected.update(matched)
        missing = [name for name in layers or () if not name or name not in named]
        if missing:
            raise CaptureConfigError(
                f"The model has no module(s) {missing} to capture as `layers`. Its modules: {', '.join(n for n in named if n)}."
            )
        selected.update({name: named[name] for name in layers or () if name != "penultimate" or penultimate is None})
        return selected

    @property
    def save_inputs(self) -> bool:
        return self.mode == "predict" if self._save_inputs is None else self._save_inputs

    @property
    def save_outputs(self) -> bool:
        return self.mode == "predict" if self._save_outputs is None else self._save_outputs

    def set_mode(self, mode: str) -> None:
        self.mode = check_mode(mode)
        self._inputs, self._outputs = self.save_inputs, self.save_outputs

    @property
    def layers(self) -> list[str]:
        """The layer names each step will hold."""
        names = list(self.modules)
        if self.save_inputs:
            names.insert(0, "inputs")
        if self.save_outputs:
            names.append("outputs")
        return names

    # -- hooks ---------------------------------------------------------------------------
    def _module_hook(self, name: str):
        buffer = self._buffer
        take = self._take

        def hook(module: nn.Module, args: Any, output: Any) -> None:
            if isinstance(output, torch.Tensor):
                buffer[name] = take(name, output)
            else:
                _copy(output, name, buffer, take)

        return hook

    def _root_hook(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        tensors = self._buffer.copy()
        self._buffer.clear()
        take = self._take
        if self._inputs and args:
            first = args[0]
            if isinstance(first, torch.Tensor):
                tensors["inputs"] = take("inputs", first)
            else:
                _copy(first, "inputs", tensors, take)
        if self._outputs:
            if isinstance(output, torch.Tensor):
                tensors["outputs"] = take("outputs", output)
            else:
                _copy(output, "outputs", tensors, take)
        self.last_step = self.writer.write_step(self.mode, tensors, self.meta)

    def attach(self) -> ActivationCapture:
        """Register the hooks (a no-op when attached)."""
        self._inputs, self._outputs = self.save_inputs, self.save_outputs
        if not self._handles:
            for name, module in self.modules.items():
                self._handles.append(module.register_forward_hook(self._module_hook(name)))
            self._handles.append(self.model.register_forward_hook(self._root_hook))
        return self

    def detach(self) -> None:
        """Remove the hooks; steps already queued are still written."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._buffer.clear()

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        """Detach, and flush (and close, when owned) the writer."""
        self.detach()
        if self._owns_writer:
            self.writer.close()
        else:
            self.writer.flush()

    def __enter__(self) -> ActivationCapture:
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ActivationCapture(mode={self.mode!r}, layers={self.layers}, writer={self.writer!r})"
