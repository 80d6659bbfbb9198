"""Run lengths: the simulation path equals the product path, and simulated ARLs match the literature."""

from __future__ import annotations

import numpy as np
import pytest

from monitors.control_charts import (
    TEXTBOOK_CASES,
    CUSUMChart,
    IndividualsChart,
    XbarSChart,
    average_run_length,
    first_signals,
    run_lengths,
)
from tests.monitors.test_control_charts_common import CASE_IDS, CASES, fitted


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_batched_simulation_path_equals_point_by_point_updates(case) -> None:
    """Seed 99: 64 streams of 80 points with a 0.75 shift; first signal via the R-stream path vs ``update``."""
    chart = fitted(case, 99)
    rng = np.random.default_rng(99)
    streams = np.stack([case.draw(rng, 80, 0.75) for _ in range(64)])
    batched = first_signals(chart, streams)
    by_update = []
    for stream in streams:
        chart.reset()
        signals = [chart.update(x).signal for x in stream]
        by_update.append(signals.index(True) if any(signals) else -1)
    assert batched.tolist() == by_update
    assert (batched >= 0).sum() >= 10  # the comparison covers many signals


def test_run_lengths_are_reproducible_and_positive() -> None:
    chart = XbarSChart(n=3, mean=0.0, sigma=1.0, rules=(1, 2))
    first = run_lengths(chart, shift=0.5, replications=300, generator=np.random.default_rng(5))
    again = run_lengths(chart, shift=0.5, replications=300, generator=np.random.default_rng(5))
    assert first.dtype == np.int64 and first.shape == (300,)
    assert (first >= 1).all() and np.array_equal(first, again)


def test_simulation_leaves_the_charts_own_stream_alone() -> None:
    chart = CUSUMChart(mean=0.0, sigma=1.0)
    chart.check([1.0, 2.0])
    before = chart.state_dict()
    run_lengths(chart, replications=50, generator=np.random.default_rng(1))
    assert chart.state_dict() == before


def test_censored_streams_are_reported() -> None:
    chart = IndividualsChart(mean=0.0, sigma=1.0, L=6.0)  # ARL0 about 5e8
    with pytest.warns(RuntimeWarning, match="did not signal within max_length = 50"):
        lengths = run_lengths(chart, replications=20, generator=np.random.default_rng(2), max_length=50)
    assert (lengths == 50).all()
    estimate = average_run_length(chart, replications=20, generator=np.random.default_rng(2), max_length=50)
    assert estimate.censored == 20


REPLICATIONS = 10_000
TOLERANCE = 0.15
SEED = 2_024


@pytest.mark.slow
def test_simulated_arls_match_the_textbook_values() -> None:
    """In-control and 1-sigma-shift ARLs within 15 % of the published values.

    10,000 replications per ARL, seed 2024 (one generator per case and shift).  The standard error
    is about ARL / sqrt(10,000) = 1 % of the ARL, so 15 % is a generous band: a correct chart
    fails it with negligible probability, while a wrong constant (e.g. L = 2.9 instead of 3, or
    k = 0.4 instead of 0.5) moves the ARLs by more.  Takes about 3 s on one idle core (vectorised
    over replications); no wall-clock assertion, so a loaded CI machine cannot make it flaky.
    """
    report = []
    for case in TEXTBOOK_CASES:
        for shift, published in case.arl.items():
            estimate = average_run_length(
                case.build(), shift=shift, replications=REPLICATIONS, generator=np.random.default_rng(SEED)
            )
            report.append((case.label, shift, published, estimate.arl, estimate.std_error))
            assert estimate.censored == 0
            assert estimate.arl == pytest.approx(published, rel=TOLERANCE), report[-1]
