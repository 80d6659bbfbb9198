"""Find monitors by name.

Built-in and third-party monitors are discovered the same way: through the
``trustops.monitors`` entry-point group declared in a package's ``pyproject.toml``.
A plugin that fails to import gives a warning naming it instead of breaking discovery,
as MLflow does for its ``mlflow.model_evaluator`` plugins.
"""

from __future__ import annotations

import warnings
from importlib.metadata import entry_points

from monitors.base import Monitor
from monitors.errors import MonitorConfigError, UnknownMonitorError

ENTRY_POINT_GROUP = "trustops.monitors"

_registry: dict[str, type[Monitor]] = {}
_entry_points_loaded = False


def register_monitor(cls: type[Monitor], *, force: bool = False) -> type[Monitor]:
    """Register ``cls`` under ``cls.name``; usable as a class decorator.

    Raises
    ------
    MonitorConfigError
        If the name is taken by another class and ``force`` is false.
    """
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise MonitorConfigError(f"A monitor class needs a non-empty `name`. Got: {name!r} on {cls.__qualname__}")
    existing = _registry.get(name)
    if existing is not None and existing is not cls and not force:
        raise MonitorConfigError(
            f"A monitor named {name!r} is already registered ({existing.__module__}.{existing.__qualname__}); "
            "pick another name or pass force=True to replace it."
        )
    _registry[name] = cls
    return cls


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = entry_point.load()
        except Exception as error:  # a broken plugin must not take the others down
            warnings.warn(
                f"Monitor plugin {entry_point.name!r} ({entry_point.value}) failed to load and is skipped: {error}",
                stacklevel=2,
            )
            continue
        if cls.name != entry_point.name:
            warnings.warn(
                f"Monitor plugin entry point {entry_point.name!r} points at a class named {cls.name!r}; "
                "it is registered under the class's name.",
                stacklevel=2,
            )
        register_monitor(cls, force=_registry.get(cls.name) is cls)


def available_monitors() -> list[str]:
    """The names of every registered monitor, sorted."""
    _load_entry_points()
    return sorted(_registry)


def get_monitor(name: str) -> type[Monitor]:
    """The monitor class registered as ``name``.

    Raises
    ------
    UnknownMonitorError
        Listing the registered names.
    """
    _load_entry_points()
    try:
        return _registry[name]
    except KeyError:
        known = ", ".join(sorted(_registry)) or "(none)"
        raise UnknownMonitorError(f"Unknown monitor {name!r}. Registered monitors: {known}.") from None
