"""Activation capture: hook a model, store its steps by URI, read them back.

Two backends share one interface: ``native`` (the default; raw tensors plus a JSON
manifest per chunk) and ``smdebug`` (SageMaker Debugger's trial layout).  See
``hooks`` (capture), ``reader`` (read), ``store`` (local folder or S3).
"""

from trustops.capture.base import MODES, CapturedStep, CaptureWriter
from trustops.capture.errors import (
    CaptureConfigError,
    CaptureError,
    CaptureNotFoundError,
    CaptureStoreUnavailableError,
    CorruptChunkError,
    LayerNotFoundError,
)
from trustops.capture.reader import CaptureReader, open_capture
from trustops.capture.store import CaptureStore, LocalStore, S3Store, open_store

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "MODES",
    "ActivationCapture",
    "ActivationCaptureCallback",
    "CaptureConfigError",
    "CaptureError",
    "CaptureNotFoundError",
    "CaptureReader",
    "CaptureStore",
    "CaptureStoreUnavailableError",
    "CaptureWriter",
    "CapturedStep",
    "CorruptChunkError",
    "LayerNotFoundError",
    "LocalStore",
    "S3Store",
    "make_writer",
    "open_capture",
    "open_store",
]


_HOOKS = ("BACKENDS", "DEFAULT_BACKEND", "ActivationCapture", "make_writer")


def __getattr__(name: str):
    # Capturing imports torch (and the callback Lightning): only load them when asked for, so
    # reading a capture's listing (a monitor pass with nothing new) stays free of torch.
    if name in _HOOKS:
        from trustops.capture import hooks

        return getattr(hooks, name)
    if name == "ActivationCaptureCallback":
        from trustops.capture.callback import ActivationCaptureCallback

        return ActivationCaptureCallback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
