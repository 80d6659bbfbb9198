"""The pieces every control chart shares: :class:`ChartPoint`, :class:`ChartState` and :class:`ControlChart`.

A chart is a :class:`~monitors.base.Monitor` whose ``fit`` is Phase I (estimate the centre line
and limits, or take them as given) and whose ``check``/``update`` are Phase II (judge new
observations against those fixed limits).

Every chart keeps its running state (an EWMA value, the CUSUM sums, the last few points the run
rules look at) as arrays whose first axis is the stream.  The product runs one stream; the
run-length simulation in :mod:`monitors.control_charts.run_length` runs thousands through the
same :meth:`ControlChart._advance`, so the simulated run lengths are those of the shipped code.
"""

from __future__ import annotations

import abc
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, TypedDict

import numpy as np

from monitors.base import Monitor, MonitorResult
from monitors import _inputs
from monitors.errors import MonitorConfigError, MonitorNotFittedError

Stream = dict[str, np.ndarray]
"""Running state of R streams: every array has the stream on its first axis."""


@dataclass(frozen=True)
class ChartPoint:
    """One plotted point of a chart and the verdict on it.

    Attributes
    ----------
    index
        Position in the Phase II stream, counting from 0 at ``fit`` or ``reset``.
    value
        The plotted statistic (a subgroup mean, a proportion, the EWMA, the signed CUSUM).
    centre, lcl, ucl
        Centre line and control limits at this point, in the units of ``value``.
    score
        The point's score in the chart's convention; ``signal`` is ``score > chart.threshold``.
    signal
        Whether any enabled rule fired at this point.
    rules
        Names of the rules that fired, empty when ``signal`` is false.
    details
        Chart-specific numbers (the raw observation of an EWMA, the two CUSUM sums, ...).
    companion
        The second panel of a two-panel chart (the s point of an x-bar/s chart), else ``None``.
    """

    index: int
    value: float
    centre: float
    lcl: float
    ucl: float
    score: float
    signal: bool
    rules: tuple[str, ...] = ()
    details: Mapping[str, float] = field(default_factory=dict)
    companion: ChartPoint | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable form; :meth:`from_dict` inverts it exactly."""
        return {
            "index": self.index,
            "value": self.value,
            "centre": self.centre,
            "lcl": self.lcl,
            "ucl": self.ucl,
            "score": self.score,
            "signal": self.signal,
            "rules": list(self.rules),
            "details": dict(self.details),
            "companion": None if self.companion is None else self.companion.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChartPoint:
        companion = data.get("companion")
        return cls(
            index=int(data["index"]),
            value=float(data["value"]),
            centre=float(data["centre"]),
            lcl=float(data["lcl"]),
            ucl=float(data["ucl"]),
            score=float(data["score"]),
            signal=bool(data["signal"]),
            rules=tuple(data.get("rules", ())),
            details={str(k): float(v) for k, v in data.get("details", {}).items()},
            companion=None if companion is None else cls.from_dict(companion),
        )


class ChartState(TypedDict):
    """The ``state`` of :meth:`ControlChart.state_dict`'s envelope (:mod:`monitors._state`): plain JSON.

    The envelope's ``config`` holds the constructor arguments, which must match the chart it is loaded into.
    """

    params: dict[str, Any] | None  # Phase I result (centre lines, standard deviations); None before fit
    stream: dict[str, Any] | None  # running statistics of the one product stream
    count: int  # observations since fit/reset
    n_signals: int  # signalling points since fit/reset
    history: list[dict[str, Any]]  # the retained points, oldest first (ChartPoint.to_dict)


class ControlChart(Monitor):
    """Base class of the control charts.

    Subclasses implement Phase I (``_estimate``), the limits (``_set_params``), the running
    statistics (``_initial_stream`` / ``_advance``) and the points (``_points``).

    Parameters
    ----------
    min_baseline
        Fewest subgroups (or individual observations) ``fit`` accepts for estimating limits.
        Montgomery recommends 20 to 25 subgroups for trial limits.
    history_size
        How many recent points ``history`` keeps (and ``state_dict`` saves); ``None`` keeps all.
        The chart's decisions never depend on it.
    """

    name: ClassVar[str]

    def __init__(self, *, min_baseline: int = 20, history_size: int | None = 1_000) -> None:
        self.min_baseline = _inputs.integer(min_baseline, "min_baseline", minimum=2)
        self.history_size = None if history_size is None else _inputs.integer(history_size, "history_size", minimum=1)
        self._params: dict[str, Any] | None = None
        self._stream: Stream = {}
        self._history: deque[ChartPoint] = deque(maxlen=self.history_size)
        self._count = 0
        self._n_signals = 0

    # ------------------------------------------------------------------ read-only state
    @property
    def fitted(self) -> bool:
        """Whether limits exist (from ``fit`` or from reference values given to the constructor)."""
        return self._params is not None

    @property
    @abc.abstractmethod
    def threshold(self) -> float:
        """The critical value: a point signals when its ``score`` is strictly greater."""

    @property
    def in_control(self) -> bool:
        """False when the latest point signalled; true before any point."""
        return not self._history or not self._history[-1].signal

    @property
    def history(self) -> tuple[ChartPoint, ...]:
        """The retained points, oldest first (at most ``history_size``)."""
        return tuple(self._history)

    @property
    def signals(self) -> tuple[int, ...]:
        """Indices of the retained points that signalled."""
        return tuple(point.index for point in self._history if point.signal)

    @property
    def n_observations(self) -> int:
        """Points judged since ``fit`` or ``reset``."""
        return self._count

    @property
    def n_signals(self) -> int:
        """Signalling points since ``fit`` or ``reset`` (not limited by ``history_size``)."""
        return self._n_signals

    @property
    def params(self) -> dict[str, Any]:
        """The Phase I result (a copy): centre lines and standard deviations of the plotted statistics."""
        self._require_fitted()
        return dict(self._params or {})

    # ------------------------------------------------------------------ Phase I / II
    def fit(self, reference: Any) -> Self:
        """Phase I: estimate what the constructor did not give from ``reference``, then start Phase II.

        Clears any Phase II history.  Returns ``self``.
        """
        self._set_params(self._estimate(reference))
        self.reset()
        return self

    def reset(self) -> None:
        """Restart Phase II with the same limits (after an assignable cause was removed)."""
        self._stream = self._initial_stream(1) if self.fitted else {}
        self._history.clear()
        self._count = 0
        self._n_signals = 0

    def update(self, x: Any) -> ChartPoint:
        """Judge one observation (one subgroup for an x-bar/s chart) and return its point."""
        self._require_fitted()
        return self._process(self._observations(x, single=True))[0]

    def check(self, batch: Any) -> MonitorResult:
        """Judge every observation in ``batch`` in order, appending them to the chart.

        Returns
        -------
        MonitorResult
            ``score`` is the largest point score in the batch and ``threshold`` the chart's
            critical value; ``alarm`` is ``score > threshold``, i.e. some point in the batch
            signalled.  ``details``: ``n_points``, ``n_signals``, ``first_signal`` (stream index of
            the batch's first signalling point, -1 if none), ``rules`` (comma-separated names that
            fired), the latest point's ``value``, ``centre``, ``lcl``, ``ucl`` and ``in_control``,
            plus that point's chart-specific details.
        """
        self._require_fitted()
        points = self._process(self._observations(batch, single=False))
        best = max(points, key=lambda point: point.score)
        signalled = [point for point in points if point.signal]
        last = points[-1]
        details: dict[str, Any] = {
            "n_points": len(points),
            "n_signals": len(signalled),
            "first_signal": signalled[0].index if signalled else -1,
            "rules": ",".join(sorted({rule for point in signalled for rule in point.rules})),
            "value": last.value,
            "centre": last.centre,
            "lcl": last.lcl,
            "ucl": last.ucl,
            "in_control": not last.signal,
            **last.details,
        }
        return MonitorResult(
            alarm=bool(best.score > self.threshold), score=best.score, threshold=self.threshold, details=details
        )

    def _process(self, observations: np.ndarray) -> list[ChartPoint]:
        score, parts, stream = self._advance(self._stream, observations[np.newaxis])
        signal = score > self.threshold
        points = self._points(score[0], signal[0], {key: value[0] for key, value in parts.items()}, self._count)
        self._stream = stream
        self._count += len(points)
        self._n_signals += int(signal.sum())
        self._history.extend(points)
        return points

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise MonitorNotFittedError(
                f"{type(self).__name__} has no control limits yet: call fit(reference) with Phase I data "
                "or pass the reference values to the constructor."
            )

    # ------------------------------------------------------------------ state
    _legacy_state_keys = {1: frozenset({"chart", "config", "params", "stream", "count", "n_signals", "history"})}

    def _inner_state(self) -> ChartState:  # type: ignore[override]
        """Everything needed to continue exactly where this chart stopped, as plain JSON types."""
        stream = None
        if self.fitted:
            stream = {key: _to_json(value[0]) for key, value in self._stream.items()}
        return ChartState(
            params=None if self._params is None else dict(self._params),
            stream=stream,
            count=self._count,
            n_signals=self._n_signals,
            history=[point.to_dict() for point in self._history],
        )

    def _load_config(self, config: dict[str, Any]) -> None:
        """A chart's state is only meaningful with its settings: a state saved with others is refused.

        Raises
        ------
        MonitorConfigError
            If the state was saved by a chart with different constructor arguments (use
            :meth:`from_state_dict` to rebuild one).
        """
        mine = self.config
        if config != mine:
            changed = sorted(key for key in mine.keys() | config.keys() if mine.get(key) != config.get(key))
            diffs = "; ".join(f"{key}: saved {config.get(key)!r}, here {mine.get(key)!r}" for key in changed)
            raise MonitorConfigError(
                f"The state was saved by a {self.name} chart with other settings ({diffs}). "
                f"Build the chart with the saved settings, e.g. {type(self).__name__}.from_state_dict(state)."
            )

    def _load_inner_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`_inner_state`; a malformed state raises :class:`MonitorConfigError` and changes nothing."""
        previous = self._params
        try:
            params = state["params"]
            if params is None:
                self._params = None
                self.reset()
                return
            stream = {key: _from_json(value)[np.newaxis] for key, value in state["stream"].items()}
            history = [ChartPoint.from_dict(point) for point in state["history"]]
            count, n_signals = int(state["count"]), int(state["n_signals"])
            self._set_params(dict(params))
            expected = {key: value.shape for key, value in self._initial_stream(1).items()}
            if {key: value.shape for key, value in stream.items()} != expected:
                raise ValueError(f"running statistics {sorted(stream)} do not have the shapes {expected}")
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            if previous is None:  # leave the chart as it was
                self._params = None
            else:
                self._set_params(previous)
            raise MonitorConfigError(f"The {self.name} state is malformed ({type(error).__name__}: {error}).") from None
        self._stream = stream
        self._count = count
        self._n_signals = n_signals
        self._history.clear()
        self._history.extend(history)

    # ------------------------------------------------------------------ subclass hooks
    @abc.abstractmethod
    def _estimate(self, reference: Any) -> dict[str, Any]:
        """Phase I: validate ``reference`` and return the parameters ``_set_params`` takes."""

    @abc.abstractmethod
    def _set_params(self, params: dict[str, Any]) -> None:
        """Adopt Phase I parameters (plain floats) and build the limits from them."""

    @abc.abstractmethod
    def _initial_stream(self, replications: int) -> Stream:
        """The running state of ``replications`` fresh streams."""

    @abc.abstractmethod
    def _observations(self, data: Any, *, single: bool) -> np.ndarray:
        """Validated observations, shape-(T, ...) (T = 1 when ``single``)."""

    @abc.abstractmethod
    def _advance(self, stream: Stream, observations: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray], Stream]:
        """Advance R streams by T observations each.

        Parameters
        ----------
        stream
            Running state, each array shape-(R, ...); not modified.
        observations
            Shape-(R, T, ...).

        Returns
        -------
        score
            Shape-(R, T) point scores; a point signals when its score exceeds ``threshold``.
        parts
            Shape-(R, T, ...) arrays ``_points`` needs (values, limits, which rules fired).
        stream
            The new running state.
        """

    @abc.abstractmethod
    def _points(
        self, score: np.ndarray, signal: np.ndarray, parts: dict[str, np.ndarray], start: int
    ) -> list[ChartPoint]:
        """The points of one stream from shape-(T, ...) arrays; ``start`` is the first index."""

    def _sample(self, generator: np.random.Generator, shape: tuple[int, int], shift: float) -> np.ndarray:
        """Shape-(R, T, ...) in-model observations whose mean is shifted by ``shift`` process sigmas."""
        raise MonitorConfigError(
            f"Run-length simulation is implemented for charts of normal observations; {self.name!r} has no sampler."
        )

    # Hooks for a contract suite parametrised over the registered monitors (river's _unit_test_params).
    @classmethod
    def _unit_test_params(cls) -> list[dict[str, Any]]:
        """Constructor arguments giving small, valid charts."""
        return [{}]

    @classmethod
    def _unit_test_data(cls, generator: np.random.Generator) -> tuple[Any, Any]:
        """A Phase I reference and a Phase II batch suitable for charts built from ``_unit_test_params``."""
        return generator.normal(0.0, 1.0, size=50), generator.normal(0.0, 1.0, size=20)


def _to_json(value: np.ndarray) -> Any:
    """A float or a list of floats (the running state is always finite)."""
    return value.tolist()


def _from_json(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=float)
