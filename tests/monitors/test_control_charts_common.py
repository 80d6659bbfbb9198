"""Seeded chart cases shared by the control-chart test modules (this module holds no tests).

Each case builds a fitted chart from a seeded Phase I reference and draws Phase II data with a
mean shift (in process sigmas; for the attribute charts, in standard deviations of one subgroup's
fraction) from a given generator.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from monitors.control_charts import CUSUMChart, EWMAChart, IndividualsChart, NPChart, PChart, XbarSChart
from monitors.control_charts.base import ChartPoint, ControlChart

MEAN, SIGMA, SUBGROUP, ITEMS, P = 5.0, 2.0, 4, 50, 0.2


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[], ControlChart]
    reference: Callable[[np.random.Generator], np.ndarray]
    draw: Callable[[np.random.Generator, int, float], np.ndarray]


def _normal(rng: np.random.Generator, size: int, shift: float) -> np.ndarray:
    return rng.normal(MEAN + shift * SIGMA, SIGMA, size=size)


def _subgroups(rng: np.random.Generator, size: int, shift: float) -> np.ndarray:
    return rng.normal(MEAN + shift * SIGMA, SIGMA, size=(size, SUBGROUP))


def _counts(rng: np.random.Generator, size: int, shift: float) -> np.ndarray:
    p = min(1.0, P + shift * math.sqrt(P * (1 - P) / ITEMS))
    return rng.binomial(ITEMS, p, size=size).astype(float)


CASES = (
    Case("individuals", lambda: IndividualsChart(rules=(1, 2, 3, 4)), lambda g: _normal(g, 60, 0.0), _normal),
    Case("xbar_s", lambda: XbarSChart(rules=(1, 2, 3, 4)), lambda g: _subgroups(g, 25, 0.0), _subgroups),
    Case("p_chart", lambda: PChart(n=ITEMS, rules=(1, 2, 3, 4)), lambda g: _counts(g, 30, 0.0), _counts),
    Case("np_chart", lambda: NPChart(n=ITEMS, rules=(1, 2, 3, 4)), lambda g: _counts(g, 30, 0.0), _counts),
    Case("ewma_exact", lambda: EWMAChart(lam=0.1, L=2.7), lambda g: _normal(g, 60, 0.0), _normal),
    Case(
        "ewma_asymptotic",
        lambda: EWMAChart(limits="asymptotic", sigma_method="std"),
        lambda g: _normal(g, 60, 0.0),
        _normal,
    ),
    Case("cusum", lambda: CUSUMChart(k=0.5, h=4.0), lambda g: _normal(g, 60, 0.0), _normal),
    Case(
        "cusum_fir_reset",
        lambda: CUSUMChart(k=0.25, h=3.0, headstart=1.5, reset_on_signal=True),
        lambda g: _normal(g, 60, 0.0),
        _normal,
    ),
)
CASE_IDS = [case.id for case in CASES]


def fitted(case: Case, seed: int) -> ControlChart:
    return case.build().fit(case.reference(np.random.default_rng(seed)))


def same_points(left: Sequence[ChartPoint], right: Sequence[ChartPoint]) -> bool:
    """Points equal field by field, floats bit for bit."""
    return [point.to_dict() for point in left] == [point.to_dict() for point in right]
