"""Phase I: textbook constants and the limits each chart computes from a baseline or given values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monitors.control_charts import (
    CUSUMChart,
    EWMAChart,
    IndividualsChart,
    NPChart,
    PChart,
    XbarSChart,
    a3,
    b3,
    b4,
    b5,
    b6,
    c4,
)

# Montgomery, Introduction to Statistical Quality Control, Appendix VI (printed to 4 / 3 decimals).
MONTGOMERY_TABLE = {
    # n: (c4, A3, B3, B4, B5, B6)
    2: (0.7979, 2.659, 0.000, 3.267, 0.000, 2.606),
    3: (0.8862, 1.954, 0.000, 2.568, 0.000, 2.276),
    4: (0.9213, 1.628, 0.000, 2.266, 0.000, 2.088),
    5: (0.9400, 1.427, 0.000, 2.089, 0.000, 1.964),
    6: (0.9515, 1.287, 0.030, 1.970, 0.029, 1.874),
    7: (0.9594, 1.182, 0.118, 1.882, 0.113, 1.806),
    8: (0.9650, 1.099, 0.185, 1.815, 0.179, 1.751),
    9: (0.9693, 1.032, 0.239, 1.761, 0.232, 1.707),
    10: (0.9727, 0.975, 0.284, 1.716, 0.276, 1.669),
    15: (0.9823, 0.789, 0.428, 1.572, 0.421, 1.544),
    20: (0.9869, 0.680, 0.510, 1.490, 0.504, 1.470),
    25: (0.9896, 0.606, 0.565, 1.435, 0.559, 1.420),
}


@pytest.mark.parametrize("n", sorted(MONTGOMERY_TABLE))
def test_constants_match_montgomery_table(n: int) -> None:
    c, a, lower, upper, lower_given, upper_given = MONTGOMERY_TABLE[n]
    assert c4(n) == pytest.approx(c, abs=5e-5)  # tolerance: half a unit in the last printed digit
    computed = (a3(n), b3(n), b4(n), b5(n), b6(n))
    assert computed == pytest.approx((a, lower, upper, lower_given, upper_given), abs=5e-4)


def test_c4_tends_to_one_for_large_subgroups() -> None:
    # c4(n) ~ 1 - 1 / (4 n) for large n (Montgomery, Appendix VI footnote); no overflow from lgamma.
    assert c4(10_000) == pytest.approx(1 - 1 / 40_000, abs=1e-8)


def test_xbar_s_phase1_limits_are_textbook_formulas() -> None:
    rng = np.random.default_rng(11)
    reference = rng.normal(50.0, 3.0, size=(25, 5))
    chart = XbarSChart().fit(reference)
    xbarbar = reference.mean(axis=1).mean()
    sbar = reference.std(axis=1, ddof=1).mean()
    xbar_panel, s_panel = chart.panels
    assert xbar_panel.centre == pytest.approx(xbarbar, rel=1e-12)
    half_width = a3(5) * sbar
    assert (xbar_panel.lcl, xbar_panel.ucl) == pytest.approx((xbarbar - half_width, xbarbar + half_width), rel=1e-12)
    assert s_panel.centre == pytest.approx(sbar, rel=1e-12)
    assert s_panel.lcl == 0.0  # B3 = 0 for n = 5
    assert s_panel.ucl == pytest.approx(b4(5) * sbar, rel=1e-12)
    assert chart.params["sigma"] == pytest.approx(sbar / c4(5), rel=1e-12)


def test_xbar_s_limits_with_standards_given() -> None:
    chart = XbarSChart(n=9, mean=10.0, sigma=2.0, L=3.0)
    xbar_panel, s_panel = chart.panels
    assert (xbar_panel.lcl, xbar_panel.centre, xbar_panel.ucl) == pytest.approx((8.0, 10.0, 12.0), rel=1e-12)
    assert (s_panel.lcl, s_panel.centre, s_panel.ucl) == pytest.approx((b5(9) * 2, c4(9) * 2, b6(9) * 2), rel=1e-12)


def test_xbar_s_other_limit_width_scales_the_constants() -> None:
    chart = XbarSChart(n=10, mean=0.0, sigma=1.0, L=2.0)
    _, s_panel = chart.panels
    assert s_panel.ucl == pytest.approx(b6(10, L=2.0), rel=1e-12)
    assert s_panel.lcl == pytest.approx(b5(10, L=2.0), rel=1e-12)


def test_p_and_np_chart_limits() -> None:
    rng = np.random.default_rng(12)
    counts = rng.binomial(80, 0.1, size=30)
    p_bar = counts.sum() / (30 * 80)
    half_width = 3 * math.sqrt(p_bar * (1 - p_bar) / 80)
    p_chart = PChart(n=80).fit(counts)
    assert p_chart.panel.centre == pytest.approx(p_bar, rel=1e-12)
    assert p_chart.panel.ucl == pytest.approx(p_bar + half_width, rel=1e-12)
    assert p_chart.panel.lcl == pytest.approx(max(0.0, p_bar - half_width), abs=1e-15)
    np_chart = NPChart(n=80).fit(counts)
    assert np_chart.panel.centre == pytest.approx(80 * p_bar, rel=1e-12)
    assert np_chart.panel.ucl == pytest.approx(80 * (p_bar + half_width), rel=1e-12)
    assert np_chart.panel.lcl == pytest.approx(max(0.0, 80 * (p_bar - half_width)), abs=1e-12)


def test_p_chart_proportion_input_matches_count_input() -> None:
    rng = np.random.default_rng(13)
    counts = rng.binomial(40, 0.3, size=25)
    from_counts = PChart(n=40).fit(counts)
    from_fractions = PChart(n=40, kind="proportion").fit(counts / 40)
    assert from_fractions.panel.centre == pytest.approx(from_counts.panel.centre, rel=1e-12)
    later = rng.binomial(40, 0.3, size=15)
    assert [p.signal for p in (from_counts.update(c) for c in later)] == [
        p.signal for p in (from_fractions.update(c / 40) for c in later)
    ]


def test_p_chart_limits_are_clipped_to_the_unit_interval() -> None:
    chart = PChart(n=5, p0=0.02)
    assert chart.panel.lcl == 0.0
    chart = PChart(n=3, p0=0.9, L=3.0)
    assert chart.panel.ucl == 1.0


@pytest.mark.parametrize("chart_class", [IndividualsChart, EWMAChart, CUSUMChart])
def test_individual_sigma_estimates(chart_class) -> None:
    rng = np.random.default_rng(14)
    reference = rng.normal(3.0, 1.5, size=200)
    moving_range = chart_class().fit(reference)
    assert moving_range.params["mean"] == pytest.approx(reference.mean(), rel=1e-12)
    # d2 for ranges of two is 1.128 to the printed precision
    assert moving_range.params["sigma"] == pytest.approx(np.abs(np.diff(reference)).mean() / 1.128, rel=1e-3)
    std = chart_class(sigma_method="std").fit(reference)
    assert std.params["sigma"] == pytest.approx(reference.std(ddof=1) / c4(200), rel=1e-12)


def test_given_values_are_kept_and_the_rest_estimated() -> None:
    rng = np.random.default_rng(15)
    reference = rng.normal(3.0, 1.5, size=40)
    chart = EWMAChart(mean=0.0).fit(reference)
    assert chart.params["mean"] == 0.0
    assert chart.params["sigma"] != 1.5
    chart = CUSUMChart(sigma=1.5).fit(reference)
    assert chart.params == {"mean": pytest.approx(reference.mean(), rel=1e-12), "sigma": 1.5}


def test_ewma_exact_limits_start_at_lam_sigma_and_widen_to_asymptotic() -> None:
    lam, L = 0.25, 3.0
    exact = EWMAChart(lam=lam, L=L, mean=0.0, sigma=2.0)
    points = [exact.update(0.0) for _ in range(200)]
    assert points[0].ucl == pytest.approx(L * 2.0 * lam, rel=1e-12)  # sigma_1 = sigma lam
    widths = [point.ucl for point in points]
    assert all(a < b for a, b in zip(widths[:40], widths[1:41]))
    asymptotic = L * 2.0 * math.sqrt(lam / (2 - lam))
    assert widths[-1] == pytest.approx(asymptotic, rel=1e-12)
    flat = EWMAChart(lam=lam, L=L, mean=0.0, sigma=2.0, limits="asymptotic")
    assert flat.update(0.0).ucl == pytest.approx(asymptotic, rel=1e-12)
