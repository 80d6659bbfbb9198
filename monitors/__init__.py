"""Monitor plugins: statistics that watch a model's inputs, activations and outputs.

Nothing here imports ZenML or MLflow, so every monitor can be used and tested on its own;
``steps/`` wraps monitors into pipeline steps.
"""

from monitors.base import Monitor, MonitorResult
from monitors.errors import (
    MonitorConfigError,
    MonitorDependencyError,
    MonitorError,
    MonitorInputError,
    MonitorNotFittedError,
    MonitorStateError,
    UnknownMonitorError,
)
from monitors.registry import available_monitors, get_monitor, register_monitor

__all__ = [
    "Monitor",
    "MonitorResult",
    "MonitorError",
    "MonitorConfigError",
    "MonitorInputError",
    "MonitorDependencyError",
    "MonitorNotFittedError",
    "MonitorStateError",
    "UnknownMonitorError",
    "available_monitors",
    "get_monitor",
    "register_monitor",
]
