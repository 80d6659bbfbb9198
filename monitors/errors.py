"""Errors raised by monitors; they subclass the trustops hierarchy and the matching built-in."""

from trustops.errors import TrustopsError


class MonitorError(TrustopsError):
    """Base class of monitor errors."""


class MonitorConfigError(MonitorError, ValueError):
    """A monitor was constructed with an invalid option."""


class MonitorInputError(MonitorError, ValueError):
    """A reference or batch handed to a monitor has the wrong shape or values."""


class MonitorStateError(MonitorInputError, MonitorConfigError):
    """A saved state is not one this monitor can load (another monitor's, an unknown version, foreign keys)."""


class MonitorNotFittedError(MonitorError, RuntimeError):
    """``check`` was called before ``fit``."""


class UnknownMonitorError(MonitorError, KeyError):
    """No monitor is registered under the requested name."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class MonitorDependencyError(MonitorError, ImportError):
    """A monitor option needs an optional package that is not installed; the message says how to install it."""
