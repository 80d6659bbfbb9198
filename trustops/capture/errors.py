"""Errors raised by activation capture; each also subclasses the matching built-in."""

from __future__ import annotations

from collections.abc import Sequence

from trustops.errors import ConfigError, ServiceError, TrustopsError


class CaptureError(TrustopsError):
    """Base class of activation-capture errors."""


class CaptureConfigError(CaptureError, ConfigError):
    """A capture option or URI is invalid."""


class CaptureNotFoundError(CaptureError, FileNotFoundError):
    """Nothing was captured at the URI, or a requested step does not exist."""

    def __str__(self) -> str:  # FileNotFoundError would format (errno, strerror)
        return str(self.args[0]) if self.args else ""


class LayerNotFoundError(CaptureError, KeyError):
    """A requested layer was not captured; the message lists the layers that were."""

    def __init__(self, layer: str, available: Sequence[str], where: str) -> None:
        self.layer = layer
        self.available = tuple(available)
        listed = ", ".join(self.available) if self.available else "(none)"
        super().__init__(f"Layer {layer!r} was not captured in {where}. Captured layers: {listed}.")

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class CorruptChunkError(CaptureError, ValueError):
    """A stored chunk is truncated or does not match its checksum.

    Attributes
    ----------
    mode
        ``"eval"`` or ``"predict"``.
    steps
        The steps the chunk holds (all of them are unreadable).
    key
        The chunk's key inside the capture store.
    """

    def __init__(self, message: str, *, mode: str, steps: Sequence[int], key: str) -> None:
        self.mode = mode
        self.steps = tuple(steps)
        self.key = key
        super().__init__(message)


class CaptureStoreUnavailableError(CaptureError, ServiceError):
    """The capture store (an S3 endpoint) could not be reached or refused the request."""
