"""The monitor plugin interface.

A monitor is fitted once on reference data (``fit``) and then checks batches
(``check``), returning a :class:`MonitorResult`.  Monitors report; steps decide what
an alarm means for the pipeline.  State round-trips through ``state_dict`` /
``load_state_dict`` so a scheduled run can resume where the last one stopped.

Options are captured one way for every monitor, as river does: the constructor's keyword-only
parameters are the options, each kept as the attribute of the same name (validated by
``_validate_options`` where a monitor can be reconfigured from a state); :attr:`Monitor.config`
reads them back through the signature and the state format (:mod:`monitors._state`) stores them.
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np

from monitors import _state
from monitors.errors import MonitorConfigError


@dataclass(frozen=True)
class MonitorResult:
    """What one ``check`` found.

    Attributes
    ----------
    alarm
        Whether the batch is out of the monitor's acceptance region.
    score
        The monitored statistic; ``alarm`` is decided by comparing it with ``threshold``
        in the direction the monitor documents.
    threshold
        The critical value the score was compared against.
    details
        Further named metrics (for example a p-value), each a plain number or string.
    """

    alarm: bool
    score: float
    threshold: float
    details: Mapping[str, Any] = field(default_factory=dict)


class Monitor(abc.ABC):
    """Base class of every monitor plugin.

    Subclasses set ``name`` (the entry-point name, snake_case), implement ``check``
    and, when they learn from reference data, ``fit``.
    """

    name: ClassVar[str]
    # Layouts of ``state_dict`` written before the envelope of :mod:`monitors._state`: version -> keys.
    _legacy_state_keys: ClassVar[Mapping[int, frozenset[str]]] = {}

    def fit(self, reference: Any) -> Self:
        """Learn what normal looks like from ``reference``; returns ``self``."""
        return self

    @abc.abstractmethod
    def check(self, batch: Any) -> MonitorResult:
        """Test one batch against what was learned in ``fit``."""

    # -- options ----------------------------------------------------------------------------

    @classmethod
    def _option_names(cls) -> tuple[str, ...]:
        """The constructor's keyword-only parameters: the monitor's options (river's ``_get_params``)."""
        parameters = inspect.signature(cls.__init__).parameters.values()
        return tuple(parameter.name for parameter in parameters if parameter.kind is inspect.Parameter.KEYWORD_ONLY)

    @property
    def config(self) -> dict[str, Any]:
        """The constructor options as validated, in plain JSON types (lists, not tuples); ``cls(**config)`` rebuilds."""
        return {name: _plain(getattr(self, name)) for name in self._option_names()}

    def _configure(self, **options: Any) -> None:
        """Validate every option (``_validate_options``) and keep each as the attribute of its name."""
        names = self._option_names()
        if set(options) != set(names):
            raise MonitorConfigError(
                f"{type(self).__name__} takes the options {sorted(names)}. Got: {sorted(options)}"
            )
        for name, value in self._validate_options(dict(options)).items():
            setattr(self, name, value)

    def _validate_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """The options, checked and normalised; raises :class:`MonitorConfigError` naming a bad one."""
        return options

    # -- state ------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to restore this monitor: ``{"format", "version", "monitor", "config", "state"}``.

        ``state`` holds plain Python (and, for activation monitors, CPU tensors); see :mod:`monitors._state`.
        """
        return _state.pack(self, self._inner_state())

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned, or a state an earlier version wrote.

        Raises
        ------
        MonitorStateError
            If ``state`` belongs to another monitor or has an unknown version.
        """
        config, inner = _state.unpack(type(self), state)
        self._load_config(config)
        self._load_inner_state(inner)

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> Self:
        """A monitor built with the saved options and loaded with ``state``."""
        config, _ = _state.unpack(cls, state)
        monitor = cls(**config)
        monitor.load_state_dict(state)
        return monitor

    def _inner_state(self) -> dict[str, Any]:
        """What the monitor learned and where it stands (the envelope's ``state``)."""
        return {}

    def _load_config(self, config: dict[str, Any]) -> None:
        """Adopt the saved options (a monitor whose state depends on them may refuse others instead)."""
        self._configure(**config)

    def _load_inner_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`_inner_state`."""

    @classmethod
    def _migrate_legacy_config(cls, version: int, config: dict[str, Any]) -> dict[str, Any]:
        """The options of a layout listed in ``_legacy_state_keys``, updated to today's options."""
        return config

    def reseed(self, seed: int) -> None:
        """Restart the monitor's resampling (permutations, draws) from ``seed``.

        The monitor loop seeds each batch's test from the batch's capture step, so a batch's
        p-value does not depend on which batches were checked before it, nor in which process
        (``trustops.monitoring.parallel``).  A monitor without resampling has nothing to reseed.
        """
        generator = getattr(self, "_generator", None)
        if generator is None and not hasattr(self, "_generator"):
            return
        if hasattr(generator, "manual_seed"):  # torch.Generator
            generator.manual_seed(seed)
        else:
            self._generator = np.random.default_rng(seed)

    # Hooks for the contract suite that every registered monitor must pass (tests/monitors).
    @classmethod
    def _unit_test_params(cls) -> list[dict[str, Any]]:
        """Constructor keyword arguments giving small, quick, valid monitors."""
        return [{}]

    @classmethod
    def _unit_test_data(cls, generator: np.random.Generator) -> tuple[Any, Any]:
        """A reference to fit and a batch to check, for monitors built from ``_unit_test_params``."""
        return generator.normal(size=(60, 4)), generator.normal(size=(40, 4))


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively: the options as JSON would give them back."""
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value
