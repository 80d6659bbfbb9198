"""A Lightning callback that captures the reference during validation.

Kept apart from ``hooks`` so that capturing at inference does not import Lightning (which
pulls in torchmetrics and, through it, transformers: seconds of start-up).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightning.pytorch.callbacks import Callback
from torch import nn

from trustops.capture.base import CaptureWriter
from trustops.capture.errors import CaptureConfigError
from trustops.capture.hooks import BACKENDS, DEFAULT_BACKEND, ActivationCapture, make_writer, model_identity
from trustops.capture.store import CaptureStore


def find_classifier(module: nn.Module, penultimate: str = "penultimate") -> nn.Module:
    """``module`` itself when it has a ``penultimate`` child, else its first submodule that does."""
    for _, candidate in module.named_modules():
        if penultimate in dict(candidate.named_children()):
            return candidate
    raise CaptureConfigError(
        f"{type(module).__name__} holds no module with a {penultimate!r} child to capture. "
        "Pass model_attr=<attribute of the LightningModule holding the classifier>."
    )


class ActivationCaptureCallback(Callback):
    """Capture the reference (``eval`` mode) during every validation pass of a Lightning fit.

    The sanity-check pass is skipped.  Each step's ``meta`` holds ``epoch``,
    ``global_step``, ``batch_idx`` and ``dataloader_idx``, so a reader can keep only the
    last validation pass.  Only the global-zero process writes.

    Parameters
    ----------
    store
        A capture URI or store.
    backend, include, penultimate, layers, writer_options
        As for :class:`ActivationCapture`.
    model_attr
        Attribute of the LightningModule holding the classifier; by default the first
        submodule with a ``penultimate`` child.
    """

    def __init__(
        self,
        store: str | CaptureStore,
        *,
        backend: str = DEFAULT_BACKEND,
        include: str | None = None,
        penultimate: str = "penultimate",
        layers: Sequence[str] | None = None,
        model_attr: str | None = None,
        **writer_options: Any,
    ) -> None:
        if backend not in BACKENDS:
            raise CaptureConfigError(f"Unknown capture backend {backend!r}. Choose one of: {', '.join(BACKENDS)}.")
        self.store = store
        self.backend = backend
        self.include = include
        self.penultimate = penultimate
        self.layers = None if layers is None else list(layers)
        self.model_attr = model_attr
        self.writer_options = writer_options
        self.writer: CaptureWriter | None = None
        self.capture: ActivationCapture | None = None

    def _model(self, pl_module: nn.Module) -> nn.Module:
        if self.model_attr is not None:
            return pl_module.get_submodule(self.model_attr)
        return find_classifier(pl_module, self.penultimate)

    def on_validation_start(self, trainer: Any, pl_module: nn.Module) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        model = self._model(pl_module)
        if self.writer is None:
            options = dict(self.writer_options)
            if self.backend == "smdebug":
                options.setdefault("root_name", model._get_name())
            options.setdefault("model", model_identity(model))
            self.writer = make_writer(self.store, backend=self.backend, **options)
        self.capture = ActivationCapture(
            model, self.writer, mode="eval", include=self.include, penultimate=self.penultimate,
            layers=self.layers,
        ).attach()

    def on_validation_batch_start(
        self, trainer: Any, pl_module: nn.Module, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if self.capture is not None:
            self.capture.meta = {
                "epoch": trainer.current_epoch,
                "global_step": trainer.global_step,
                "batch_idx": batch_idx,
                "dataloader_idx": dataloader_idx,
            }

    def on_validation_end(self, trainer: Any, pl_module: nn.Module) -> None:
        if self.capture is not None:
            self.capture.close()  # detaches and flushes; the writer stays open for the next pass
            self.capture = None

    def teardown(self, trainer: Any, pl_module: nn.Module, stage: str) -> None:
        if self.capture is not None:
            self.capture.detach()
            self.capture = None
        if self.writer is not None:
            self.writer.close()
            self.writer = None
