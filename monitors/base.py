"""The monitor plugin interface.

A monitor is fitted once on reference data (``fit``) and then checks batches
(``check``), returning a :class:`MonitorResult`.  Monitors report; steps decide what
an alarm means for the pipeline.  State round-trips through ``state_dict`` /
``load_state_dict`` so a scheduled run can resume where the last one stopped.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np


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

    def fit(self, reference: Any) -> Self:
        """Learn what normal looks like from ``reference``; returns ``self``."""
        return self

    @abc.abstractmethod
    def check(self, batch: Any) -> MonitorResult:
        """Test one batch against what was learned in ``fit``."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to restore this monitor, as plain Python and tensors."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

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
