"""Chart state survives a save/restore between runs and continues exactly where it stopped."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monitors.control_charts import CHARTS, CUSUMChart, EWMAChart, IndividualsChart, XbarSChart
from monitors.errors import MonitorConfigError, MonitorNotFittedError
from tests.monitors.test_control_charts_common import CASE_IDS, CASES, fitted, same_points

SEED = 7


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_split_run_with_save_and_restore_gives_the_same_signals_as_one_pass(case, tmp_path) -> None:
    """Seed 7: 150 points, in control then shifted by 1.5 (so several signals and run-rule patterns)."""
    rng = np.random.default_rng(SEED)
    stream = np.concatenate([case.draw(rng, 75, 0.0), case.draw(rng, 75, 1.5)])

    one_pass = fitted(case, SEED)
    one_pass.check(stream)

    first_run = fitted(case, SEED)
    first_run.check(stream[:80])
    saved = tmp_path / "chart.json"
    saved.write_text(json.dumps(first_run.state_dict(), allow_nan=False))

    second_run = case.build()  # a new process: same settings, nothing fitted
    second_run.load_state_dict(json.loads(saved.read_text()))
    second_run.check(stream[80:])

    assert one_pass.n_signals > 0
    assert same_points(second_run.history, one_pass.history)
    assert second_run.signals == one_pass.signals
    assert second_run.state_dict() == json.loads(json.dumps(one_pass.state_dict()))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_state_dict_is_plain_json(case) -> None:
    chart = fitted(case, SEED)
    chart.check(case.draw(np.random.default_rng(SEED), 12, 0.0))
    state = chart.state_dict()

    def plain(value) -> bool:
        if isinstance(value, dict):
            return all(isinstance(key, str) and plain(item) for key, item in value.items())
        if isinstance(value, list):
            return all(plain(item) for item in value)
        return value is None or type(value) in (bool, int, float, str)

    assert plain(state)
    assert set(state) == {"format", "version", "monitor", "config", "state"}
    assert set(state["state"]) == {"params", "stream", "count", "n_signals", "history"}
    assert state["monitor"] == chart.name and state["state"]["count"] == 12


def test_unfitted_state_round_trips_to_an_unfitted_chart() -> None:
    state = json.loads(json.dumps(EWMAChart(lam=0.3).state_dict()))
    chart = EWMAChart.from_state_dict(state)
    assert not chart.fitted and chart.lam == 0.3
    with pytest.raises(MonitorNotFittedError):
        chart.update(1.0)


def test_standards_given_state_round_trips_without_fit() -> None:
    chart = XbarSChart(n=3, mean=1.0, sigma=0.5, rules=[1, 4])
    chart.check(np.random.default_rng(SEED).normal(1.2, 0.5, size=(10, 3)))
    restored = XbarSChart.from_state_dict(json.loads(json.dumps(chart.state_dict())))
    assert same_points(restored.history, chart.history)
    assert restored.rules == (1, 4)


def test_loading_into_a_chart_with_other_settings_is_refused() -> None:
    chart = CUSUMChart(k=0.5, h=5.0, mean=0.0, sigma=1.0)
    chart.update(0.3)
    with pytest.raises(MonitorConfigError, match=r"h: saved 5\.0, here 4\.0.*from_state_dict"):
        CUSUMChart(k=0.5, h=4.0, mean=0.0, sigma=1.0).load_state_dict(chart.state_dict())


def test_loading_another_charts_state_is_refused() -> None:
    state = IndividualsChart(mean=0.0, sigma=1.0).state_dict()
    with pytest.raises(MonitorConfigError, match="'individuals'.*EWMAChart loads 'ewma'"):
        EWMAChart(mean=0.0, sigma=1.0).load_state_dict(state)


def test_every_chart_class_is_covered_by_the_state_cases() -> None:
    assert {type(case.build()) for case in CASES} == set(CHARTS)


@pytest.mark.parametrize(
    "damage",
    [
        lambda state: state["state"].pop("stream"),
        lambda state: state["state"]["stream"].update(tail=[0.0, 1.0]),  # run-rule memory of the wrong length
        lambda state: state["state"]["history"].append({"index": 1}),
        lambda state: state["state"].update(params="oops"),
    ],
    ids=["missing stream", "wrong tail length", "truncated point", "params not a dict"],
)
def test_a_malformed_state_is_refused_with_a_config_error(damage) -> None:
    chart = IndividualsChart(mean=0.0, sigma=1.0, rules=(1, 2, 3, 4))
    chart.check([0.1, 0.2, 3.5])
    state = json.loads(json.dumps(chart.state_dict()))
    damage(state)
    with pytest.raises(MonitorConfigError, match="individuals state"):
        IndividualsChart(mean=0.0, sigma=1.0, rules=(1, 2, 3, 4)).load_state_dict(state)


def test_run_rules_without_rule_1_have_finite_scores_from_the_first_point() -> None:
    """Before 8 points exist rule 4 cannot fire; the fresh chart acts as if preceded by centre-line points."""
    chart = IndividualsChart(mean=0.0, sigma=1.0, rules=(4,))
    points = [chart.update(x) for x in [5.0, 0.5, 0.4, 0.3, 0.2, 0.1, 0.2, 0.3, 0.4]]
    assert [point.signal for point in points] == [False] * 7 + [True, True]
    assert points[7].rules == ("western_electric_4",)
    assert all(np.isfinite(point.score) for point in points)
    json.dumps(chart.state_dict(), allow_nan=False)


def test_a_refused_state_leaves_the_chart_as_it_was() -> None:
    chart = IndividualsChart(mean=0.0, sigma=1.0, rules=(1, 2))
    chart.check([0.3, 2.5])
    before = chart.state_dict()
    state = json.loads(json.dumps(before))
    state["state"]["params"] = {"mean": 100.0, "sigma": 9.0}
    state["state"]["stream"]["tail"] = [1.0, 2.0, 3.0]  # rule 2 keeps two points, not three
    with pytest.raises(MonitorConfigError, match="malformed"):
        chart.load_state_dict(state)
    assert chart.state_dict() == before
