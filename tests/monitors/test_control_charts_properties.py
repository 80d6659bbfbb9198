"""Hypothesis properties of the chart math and of the monitor contract."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from monitors.control_charts import CUSUMChart, EWMAChart, IndividualsChart, ShewhartPanel, XbarSChart
from tests.monitors.test_control_charts_common import CASE_IDS, CASES, fitted, same_points

centres = st.floats(-1e6, 1e6, allow_nan=False)
sigmas = st.floats(1e-3, 1e3, allow_nan=False)
widths = st.floats(0.5, 6.0)
lams = st.floats(0.01, 1.0)
observations = st.floats(-1e4, 1e4, allow_nan=False)


# ---------------------------------------------------------------- Shewhart limits and rule 1
@given(mean=centres, sigma=sigmas, L=widths)
def test_individuals_limits_are_symmetric_about_the_centre(mean: float, sigma: float, L: float) -> None:
    panel = IndividualsChart(mean=mean, sigma=sigma, L=L).panel
    assert panel.ucl - panel.centre == pytest.approx(panel.centre - panel.lcl, rel=1e-9, abs=1e-9 * abs(mean))


@given(mean=centres, sigma=sigmas, n=st.integers(2, 30), L=widths)
def test_xbar_limits_are_symmetric_about_the_centre(mean: float, sigma: float, n: int, L: float) -> None:
    xbar_panel, s_panel = XbarSChart(n=n, mean=mean, sigma=sigma, L=L).panels
    assert xbar_panel.ucl - xbar_panel.centre == pytest.approx(
        xbar_panel.centre - xbar_panel.lcl, rel=1e-9, abs=1e-9 * abs(mean)
    )
    # s is skewed: its lower limit is floored at 0, the upper one never is
    assert s_panel.lcl == max(0.0, s_panel.centre - L * s_panel.sigma)
    assert s_panel.ucl == s_panel.centre + L * s_panel.sigma


@given(data=st.data(), centre=centres, sigma=sigmas, L=widths)
def test_a_point_inside_the_limits_never_signals_under_rule_1(data, centre: float, sigma: float, L: float) -> None:
    chart = IndividualsChart(mean=centre, sigma=sigma, L=L)
    lcl, ucl = chart.panel.lcl, chart.panel.ucl
    # exact bounds included: a point on a limit is not beyond it
    x = data.draw(st.floats(lcl, ucl, allow_nan=False))
    point = chart.update(x)
    assert not point.signal and point.rules == () and point.score <= 0.0


@given(data=st.data(), centre=centres, sigma=sigmas, L=widths)
def test_a_point_beyond_the_limits_always_signals(data, centre: float, sigma: float, L: float) -> None:
    chart = IndividualsChart(mean=centre, sigma=sigma, L=L)
    above = data.draw(st.booleans())
    if above:
        x = data.draw(st.floats(min_value=chart.panel.ucl, max_value=1e12, exclude_min=True))
    else:
        x = data.draw(st.floats(min_value=-1e12, max_value=chart.panel.lcl, exclude_max=True))
    point = chart.update(x)
    assert point.signal and point.rules == ("western_electric_1",) and point.score > 0.0


@given(
    data=st.data(),
    centre=st.floats(0.0, 1.0),
    sigma=st.floats(1e-3, 0.5),
    rules=st.sets(st.integers(1, 4), min_size=1).map(sorted).map(tuple),
)
def test_clipped_panel_run_rules_agree_with_a_direct_count(data, centre: float, sigma: float, rules) -> None:
    """The vectorised rules against a plain count over each window (values of a proportion in [0, 1])."""
    panel = ShewhartPanel(centre, sigma, 3.0, rules, lower_bound=0.0, upper_bound=1.0)
    values = np.array(data.draw(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30)))
    margins, _ = panel.evaluate(values[np.newaxis], panel.initial_tail(1))
    fired = margins[0] > 0
    for t in range(values.size):
        for j, rule in enumerate(rules):
            assert fired[t, j] == _rule_fires_by_counting(panel, values[: t + 1], rule), (t, rule)


def _rule_fires_by_counting(panel: ShewhartPanel, history: np.ndarray, rule: int) -> bool:
    if rule == 1:
        return bool(history[-1] > panel.ucl or history[-1] < panel.lcl)
    count, window, sigmas = {2: (2, 3, 2.0), 3: (4, 5, 1.0), 4: (8, 8, 0.0)}[rule]
    recent = history[-window:]
    upper, lower = panel.centre + sigmas * panel.sigma, panel.centre - sigmas * panel.sigma
    return bool(
        (recent[-1] > upper and np.sum(recent > upper) >= count)
        or (recent[-1] < lower and np.sum(recent < lower) >= count)
    )


# ---------------------------------------------------------------- EWMA
@given(constant=observations, lam=lams, sigma=sigmas, length=st.integers(1, 60))
def test_ewma_of_a_constant_stream_is_that_constant(constant: float, lam: float, sigma: float, length: int) -> None:
    chart = EWMAChart(lam=lam, mean=constant, sigma=sigma)
    points = [chart.update(constant) for _ in range(length)]
    assert all(point.value == constant and point.score == 0.0 and not point.signal for point in points)


@given(start=observations, constant=observations, lam=st.floats(0.05, 1.0), length=st.integers(1, 40))
def test_ewma_forgets_its_start_geometrically(start: float, constant: float, lam: float, length: int) -> None:
    chart = EWMAChart(lam=lam, mean=start, sigma=1.0)
    for i in range(1, length + 1):
        value = chart.update(constant).value
        expected_gap = (1 - lam) ** i * abs(start - constant)
        rounding = 1e-9 * (abs(start) + abs(constant) + 1)
        assert abs(value - constant) == pytest.approx(expected_gap, rel=1e-6, abs=rounding)


@given(mean=centres, sigma=sigmas, lam=lams, xs=st.lists(observations, min_size=1, max_size=30))
def test_ewma_limits_are_symmetric_and_signal_agrees_with_score(mean, sigma, lam, xs) -> None:
    chart = EWMAChart(lam=lam, L=3.0, mean=mean, sigma=sigma)
    for x in xs:
        point = chart.update(x)
        assert point.ucl - point.centre == pytest.approx(point.centre - point.lcl, rel=1e-9, abs=1e-9 * abs(mean))
        assert point.signal == (point.score > 3.0)


# ---------------------------------------------------------------- CUSUM
@given(
    k=st.floats(0.0, 2.0),
    h=st.floats(0.5, 10.0),
    reset=st.booleans(),
    headstart_fraction=st.floats(0.0, 0.99),
    zs=st.lists(st.floats(-6.0, 6.0), min_size=1, max_size=60),
)
def test_cusum_sums_are_never_negative_and_follow_the_tabular_recursion(k, h, reset, headstart_fraction, zs) -> None:
    headstart = headstart_fraction * h
    chart = CUSUMChart(k=k, h=h, mean=0.0, sigma=1.0, headstart=headstart, reset_on_signal=reset)
    c_plus = c_minus = headstart
    for z in zs:
        point = chart.update(z)
        d = point.details
        assert d["c_plus"] >= 0.0 and d["c_minus"] >= 0.0
        assert d["c_plus"] == max(0.0, c_plus + z - k)
        assert d["c_minus"] == max(0.0, c_minus - z - k)
        assert (d["n_plus"] == 0) == (d["c_plus"] == 0) and (d["n_minus"] == 0) == (d["c_minus"] == 0)
        assert point.score == max(d["c_plus"], d["c_minus"])
        assert point.signal == (point.score > h) == (abs(point.value) > h)
        c_plus, c_minus = d["c_plus"], d["c_minus"]
        if reset and point.signal:  # restarts at the headstart after a signal
            c_plus = c_minus = headstart


# ---------------------------------------------------------------- contract, for every chart
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@given(seed=st.integers(0, 2**32 - 1), shift=st.floats(-3.0, 3.0), cuts=st.lists(st.integers(1, 39), max_size=4))
def test_batches_update_and_restored_state_agree(case, seed: int, shift: float, cuts: list[int]) -> None:
    """One stream, judged point by point, in batches split anywhere, and across a JSON save/restore."""
    stream = case.draw(np.random.default_rng(seed), 40, shift)
    one_by_one = fitted(case, seed)
    expected = [one_by_one.update(x) for x in stream]

    batched = fitted(case, seed)
    bounds = [0, *sorted(set(cuts)), len(stream)]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        result = batched.check(stream[lo:hi])
        part = batched.history[lo:hi]
        assert result.alarm == (result.score > result.threshold) == any(point.signal for point in part)
        assert result.score == max(point.score for point in part)
        state = json.loads(json.dumps(batched.state_dict(), allow_nan=False))
        batched = type(batched).from_state_dict(state)
    assert same_points(batched.history, expected)
    assert batched.signals == one_by_one.signals
    assert batched.in_control == one_by_one.in_control
    assert batched.n_signals == sum(point.signal for point in expected)
    assert all(point.signal == (point.score > batched.threshold) for point in expected)
    assert all(bool(point.rules) == point.signal for point in expected)


@given(seed=st.integers(0, 2**32 - 1), size=st.integers(1, 50))
def test_history_size_bounds_memory_but_not_decisions(seed: int, size: int) -> None:
    rng = np.random.default_rng(seed)
    stream = rng.normal(0.5, 1.0, size=120)
    short = IndividualsChart(mean=0.0, sigma=1.0, rules=(1, 2, 3, 4), history_size=size)
    full = IndividualsChart(mean=0.0, sigma=1.0, rules=(1, 2, 3, 4), history_size=None)
    short.check(stream)
    full.check(stream)
    assert len(short.history) == min(size, 120)
    assert same_points(short.history, full.history[-size:])
    assert short.n_signals == full.n_signals
    assert math.isfinite(short.history[-1].score)


@given(seed=st.integers(0, 2**32 - 1))
def test_fit_and_reset_start_phase_two_afresh(seed: int) -> None:
    rng = np.random.default_rng(seed)
    chart = CUSUMChart(k=0.5, h=4.0).fit(rng.normal(size=50))
    stream = rng.normal(1.0, 1.0, size=30)
    first = [chart.update(x) for x in stream]
    chart.reset()
    assert chart.n_observations == 0 and chart.history == () and chart.in_control
    assume(first)
    assert same_points([chart.update(x) for x in stream], first)
