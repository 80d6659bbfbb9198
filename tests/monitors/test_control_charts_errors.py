"""Bad settings and bad data: each gets its clear error, with what was given and what is allowed."""

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
    average_run_length,
    c4,
    plot_chart,
)
from monitors.errors import MonitorConfigError, MonitorError, MonitorInputError, MonitorNotFittedError

CONFIG_ERRORS = [
    (lambda: EWMAChart(lam=1.5), r"`lam` must satisfy 0 < lam <= 1\. Got: 1\.5"),
    (lambda: EWMAChart(lam=0.0), r"`lam` must satisfy 0 < lam <= 1\. Got: 0\.0"),
    (lambda: EWMAChart(lam=math.nan), r"`lam` must be a finite real number\. Got: nan"),
    (lambda: EWMAChart(L=0), r"`L` must satisfy L > 0\. Got: 0"),
    (lambda: EWMAChart(limits="steady"), r"`limits` must be one of 'exact', 'asymptotic'\. Got: 'steady'"),
    (lambda: IndividualsChart(L=-3.0), r"`L` must satisfy L > 0\. Got: -3\.0"),
    (lambda: IndividualsChart(sigma=0.0), r"`sigma` must satisfy sigma > 0\. Got: 0\.0"),
    (lambda: IndividualsChart(sigma_method="iqr"), r"`sigma_method` must be one of 'moving_range', 'std'"),
    (lambda: IndividualsChart(rules=(1, 5)), r"`rules` must be a non-empty subset of \(1, 2, 3, 4\)\. Got: \(1, 5\)"),
    (lambda: IndividualsChart(rules=()), r"`rules` must be a non-empty subset"),
    (lambda: IndividualsChart(rules=(2, 2)), r"`rules` must not repeat a rule"),
    (lambda: IndividualsChart(min_baseline=1), r"`min_baseline` must be an integer >= 2\. Got: 1"),
    (lambda: IndividualsChart(history_size=0), r"`history_size` must be an integer >= 1\. Got: 0"),
    (lambda: CUSUMChart(k=-0.1), r"`k` must satisfy k >= 0\. Got: -0\.1"),
    (lambda: CUSUMChart(h=0.0), r"`h` must satisfy h > 0\. Got: 0\.0"),
    (lambda: CUSUMChart(h=4.0, headstart=4.0), r"`headstart` must satisfy 0 <= headstart < h = 4\.0\. Got: 4\.0"),
    (lambda: CUSUMChart(reset_on_signal="yes"), r"`reset_on_signal` must be a bool"),
    (lambda: XbarSChart(n=1), r"`n` must satisfy n >= 2 \(the s chart needs two observations per subgroup\)\. Got: 1"),
    (lambda: XbarSChart(mean=0.0, sigma=1.0), r"`n` is needed when both `mean` and `sigma` are given"),
    (lambda: PChart(n=0), r"`n` must be an integer >= 1\. Got: 0"),
    (lambda: PChart(n=10, p0=1.5), r"`p0` must satisfy 0 < p0 < 1\. Got: 1\.5"),
    (lambda: NPChart(n=10, p0=-0.2), r"`p0` must satisfy 0 < p0 < 1\. Got: -0\.2"),
    (lambda: PChart(n=10, kind="percent"), r"`kind` must be one of 'count', 'proportion'"),
    (lambda: c4(1), r"`n` must be an integer >= 2\. Got: 1"),
]


@pytest.mark.parametrize(("build", "message"), CONFIG_ERRORS, ids=[m for _, m in CONFIG_ERRORS])
def test_bad_settings_raise_config_errors(build, message: str) -> None:
    with pytest.raises(MonitorConfigError, match=message) as caught:
        build()
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, MonitorError)


rng = np.random.default_rng(3)
GOOD = rng.normal(size=40)

INPUT_ERRORS = [
    (
        lambda: IndividualsChart().fit([1.0, 2.0, math.nan] + [0.0] * 30),
        r"`reference` must contain only finite numbers\. Got: nan at position 2",
    ),
    (
        lambda: IndividualsChart().fit(GOOD[:5]),
        r"`reference` has 5 observations; Phase I needs at least min_baseline = 20",
    ),
    (lambda: EWMAChart().fit(np.ones(30)), r"estimate of sigma is 0"),
    (lambda: CUSUMChart().fit(GOOD.reshape(4, 10)), r"`reference` must be 1-D\. Got: shape \(4, 10\)"),
    (lambda: CUSUMChart().fit([]), r"`reference` must be 1-D|is empty"),
    (lambda: CUSUMChart().fit(["a", "b"]), r"`reference` must be an array of numbers"),
    (
        lambda: EWMAChart(mean=0.0, sigma=1.0).check([0.1, math.inf]),
        r"`batch` must contain only finite numbers\. Got: inf at position 1",
    ),
    (lambda: EWMAChart(mean=0.0, sigma=1.0).update(math.nan), r"`x` must contain only finite numbers\. Got: nan"),
    (lambda: EWMAChart(mean=0.0, sigma=1.0).update([1.0, 2.0]), r"`x` must be 0-D"),
    (lambda: EWMAChart(mean=0.0, sigma=1.0).check([]), r"`batch` is empty"),
    (lambda: XbarSChart().fit(GOOD.reshape(40, 1)), r"Subgroup size n must be >= 2 for the s chart"),
    (
        lambda: XbarSChart().fit(GOOD.reshape(10, 4)),
        r"`reference` has 10 subgroups; Phase I needs at least min_baseline = 20",
    ),
    (lambda: XbarSChart(n=5).fit(GOOD.reshape(20, 2)), r"`reference` subgroups must have n = 5 observations\. Got: 2"),
    (
        lambda: XbarSChart(n=4, mean=0.0, sigma=1.0).update([1.0, 2.0, 3.0]),
        r"`subgroup` subgroups must have n = 4 observations",
    ),
    (lambda: XbarSChart(n=4, mean=0.0, sigma=1.0).check(np.zeros((3, 4, 1))), r"`batch` must be 1-D or 2-D"),
    (
        lambda: XbarSChart(n=2, mean=0.0, sigma=1.0).update([1.0, math.nan]),
        r"`subgroup` must contain only finite numbers",
    ),
    (
        lambda: PChart(n=10, p0=0.1).update(11),
        r"counts must be whole numbers with 0 <= count <= n = 10\. Got: 11\.0 at position 0",
    ),
    (lambda: PChart(n=10, p0=0.1).check([1, 2, 2.5]), r"counts must be whole numbers .* Got: 2\.5 at position 2"),
    (lambda: NPChart(n=10, p0=0.1).check([1, -1]), r"Got: -1\.0 at position 1"),
    (
        lambda: PChart(n=10, p0=0.1, kind="proportion").check([0.1, 1.2]),
        r"`batch` proportions must lie in \[0, 1\]\. Got: 1\.2 at position 1",
    ),
    (lambda: PChart(n=10).fit(np.zeros(25)), r"fraction nonconforming is 0\.0; limits need 0 < p < 1"),
    (lambda: PChart(n=10).fit(np.full(25, 11)), r"counts must be whole numbers with 0 <= count <= n = 10"),
    (lambda: plot_chart(IndividualsChart(mean=0.0, sigma=1.0), "unused.png"), r"has no points to plot yet"),
]


@pytest.mark.parametrize(("action", "message"), INPUT_ERRORS, ids=[m for _, m in INPUT_ERRORS])
def test_bad_data_raise_input_errors(action, message: str) -> None:
    with pytest.raises(MonitorInputError, match=message) as caught:
        action()
    assert isinstance(caught.value, ValueError)


UNFITTED = [IndividualsChart(), XbarSChart(), PChart(n=5), NPChart(n=5), EWMAChart(), CUSUMChart()]


@pytest.mark.parametrize("chart", UNFITTED, ids=lambda chart: chart.name)
def test_check_update_and_simulation_before_fit_are_refused(chart) -> None:
    for action in (lambda: chart.check([1.0]), lambda: chart.update(1.0), lambda: chart.params):
        with pytest.raises(MonitorNotFittedError, match=r"no control limits yet: call fit\(reference\)"):
            action()
    with pytest.raises(MonitorNotFittedError):
        average_run_length(chart, generator=np.random.default_rng(0))


def test_a_rejected_batch_leaves_the_chart_unchanged() -> None:
    chart = CUSUMChart(mean=0.0, sigma=1.0)
    chart.check([0.5, 0.7])
    before = chart.state_dict()
    with pytest.raises(MonitorInputError):
        chart.check([0.5, math.nan])
    assert chart.state_dict() == before


def test_simulation_arguments_are_checked() -> None:
    chart = CUSUMChart(mean=0.0, sigma=1.0)
    with pytest.raises(MonitorConfigError, match="`generator` must be a numpy.random.Generator. Got: int"):
        average_run_length(chart, generator=42)  # type: ignore[arg-type]
    with pytest.raises(MonitorConfigError, match=r"`replications` must be an integer >= 1\. Got: 0"):
        average_run_length(chart, replications=0, generator=np.random.default_rng(0))
    with pytest.raises(MonitorConfigError, match="p_chart' has no sampler"):
        average_run_length(PChart(n=10, p0=0.1), generator=np.random.default_rng(0))
