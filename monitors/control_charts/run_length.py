"""Run-length simulation: how long a chart takes to signal, in control and after a mean shift.

Replications are simulated side by side with a seeded :class:`numpy.random.Generator`: every
chart's :meth:`~monitors.control_charts.base.ControlChart._advance` takes the running state of R
streams at once, so the simulation calls exactly the code that ``update``/``check`` call with R = 1.
Streams that have signalled are dropped; the others continue in blocks of observations.

The run length is the index (from 1) of the first signalling point, with the shift present from
the first observation (zero-state ARL, as in the published tables).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from monitors import _inputs
from monitors.control_charts.base import ControlChart
from monitors.control_charts.cusum import CUSUMChart
from monitors.control_charts.ewma import EWMAChart
from monitors.control_charts.individuals import IndividualsChart
from monitors.errors import MonitorConfigError


@dataclass(frozen=True)
class RunLengthEstimate:
    """Summary of simulated run lengths.

    Attributes
    ----------
    shift
        Mean shift in process sigmas.
    replications
        Number of simulated streams.
    arl, std_error
        Average run length and its standard error (standard deviation / sqrt(replications)).
    sdrl, median
        Standard deviation and median of the run length.
    censored
        Streams that had not signalled after ``max_length`` observations (counted at ``max_length``).
    """

    shift: float
    replications: int
    arl: float
    std_error: float
    sdrl: float
    median: float
    censored: int


def run_lengths(
    chart: ControlChart,
    *,
    shift: float = 0.0,
    replications: int = 2000,
    generator: np.random.Generator,
    block: int = 128,
    max_length: int = 1_000_000,
) -> np.ndarray:
    """Simulated run lengths of ``chart``'s limits and rules, shape-(replications,) int64.

    Parameters
    ----------
    chart
        A fitted chart of normal observations (individuals, xbar_s, ewma, cusum); its Phase II
        state is neither used nor changed: every stream starts as after ``reset``.
    shift
        Mean shift in process sigmas, present from the first observation.
    replications
        Number of independent streams.
    generator
        Source of randomness; the result is a function of its state, ``block`` and the arguments.
    block
        Observations drawn per active stream per step (memory is about ``replications * block``).
    max_length
        Streams still silent after this many observations are stopped and counted at ``max_length``
        (with a :class:`RuntimeWarning`).
    """
    lengths, censored = _simulate(chart, shift, replications, generator, block, max_length)
    if censored:
        warnings.warn(
            f"{censored} of {replications} streams did not signal within max_length = {max_length}; "
            "they are counted at max_length, so the mean underestimates the ARL.",
            RuntimeWarning,
            stacklevel=2,
        )
    return lengths


def average_run_length(
    chart: ControlChart,
    *,
    shift: float = 0.0,
    replications: int = 2000,
    generator: np.random.Generator,
    block: int = 128,
    max_length: int = 1_000_000,
) -> RunLengthEstimate:
    """ARL with its standard error; arguments as :func:`run_lengths` (no warning: see ``censored``)."""
    lengths, censored = _simulate(chart, shift, replications, generator, block, max_length)
    sdrl = float(np.std(lengths, ddof=1)) if replications > 1 else math.nan
    return RunLengthEstimate(
        shift=float(shift),
        replications=replications,
        arl=float(np.mean(lengths)),
        std_error=sdrl / math.sqrt(replications),
        sdrl=sdrl,
        median=float(np.median(lengths)),
        censored=censored,
    )


def first_signals(chart: ControlChart, observations: np.ndarray) -> np.ndarray:
    """Index (from 0) of the first signal in each of R given streams, or -1; through the simulation path.

    ``observations`` is shape-(R, T) (shape-(R, T, n) for an x-bar/s chart).  The tests use this
    to check that the batched path agrees with ``update`` called point by point.
    """
    chart._require_fitted()
    observations = _inputs.finite_array(observations, "observations", ndims=(2, 3))
    score, _, _ = chart._advance(chart._initial_stream(observations.shape[0]), observations)
    signal = score > chart.threshold
    return np.where(signal.any(axis=1), signal.argmax(axis=1), -1)


def _simulate(
    chart: ControlChart, shift: float, replications: int, generator: np.random.Generator, block: int, max_length: int
) -> tuple[np.ndarray, int]:
    chart._require_fitted()
    if not isinstance(generator, np.random.Generator):
        raise MonitorConfigError(f"`generator` must be a numpy.random.Generator. Got: {type(generator).__name__}")
    shift = _inputs.real(shift, "shift")
    replications = _inputs.integer(replications, "replications", minimum=1)
    block = _inputs.integer(block, "block", minimum=1)
    max_length = _inputs.integer(max_length, "max_length", minimum=1)
    stream = chart._initial_stream(replications)
    lengths = np.full(replications, max_length, dtype=np.int64)
    active = np.arange(replications)
    done = 0
    while active.size and done < max_length:
        steps = min(block, max_length - done)
        score, _, stream = chart._advance(stream, chart._sample(generator, (active.size, steps), shift))
        signal = score > chart.threshold
        hit = signal.any(axis=1)
        lengths[active[hit]] = done + signal[hit].argmax(axis=1) + 1
        active = active[~hit]
        stream = {key: value[~hit] for key, value in stream.items()}
        done += steps
    return lengths, int(active.size)


@dataclass(frozen=True)
class TextbookCase:
    """A chart design with published zero-state ARLs for normal individual observations, known sigma."""

    label: str
    build: Callable[[], ControlChart]
    arl: Mapping[float, float]  # shift in sigmas -> published ARL
    source: str


TEXTBOOK_CASES: tuple[TextbookCase, ...] = (
    TextbookCase(
        "Shewhart individuals, L=3",
        lambda: IndividualsChart(L=3.0, mean=0.0, sigma=1.0),
        {0.0: 370.4, 1.0: 43.9},
        "Montgomery, ISQC ch. 6 and 9: ARL = 1 / P(point beyond 3 sigma)",
    ),
    TextbookCase(
        "EWMA lam=0.2, L=2.962, asymptotic limits",
        lambda: EWMAChart(lam=0.2, L=2.962, mean=0.0, sigma=1.0, limits="asymptotic"),
        {0.0: 500.0, 1.0: 10.5},
        "Montgomery, ISQC ch. 9 EWMA ARL table (Lucas and Saccucci, 1990)",
    ),
    TextbookCase(
        "CUSUM k=0.5, h=5",
        lambda: CUSUMChart(k=0.5, h=5.0, mean=0.0, sigma=1.0),
        {0.0: 465.0, 1.0: 10.4},
        "Montgomery, ISQC ch. 9 tabular CUSUM ARL table",
    ),
    TextbookCase(
        "Shewhart individuals, L=3, Western Electric rules 1-4",
        lambda: IndividualsChart(L=3.0, rules=(1, 2, 3, 4), mean=0.0, sigma=1.0),
        {0.0: 91.75},
        "Champ and Woodall (1987), Technometrics 29(4)",
    ),
)
