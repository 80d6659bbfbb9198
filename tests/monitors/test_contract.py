"""The contract every registered monitor keeps, built-in or third-party (river-style)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hydra_zen import builds, instantiate

from monitors import Monitor, MonitorResult, available_monitors, get_monitor

CASES = [
    pytest.param(name, index, id=f"{name}-{index}")
    for name in available_monitors()
    for index, _ in enumerate(get_monitor(name)._unit_test_params())
]


def build(name: str, index: int) -> tuple[type[Monitor], dict]:
    cls = get_monitor(name)
    return cls, cls._unit_test_params()[index]


def same(a: MonitorResult, b: MonitorResult) -> bool:
    close = lambda x, y: (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, rel=1e-9, abs=1e-12)
    return a.alarm == b.alarm and close(a.score, b.score) and close(a.threshold, b.threshold)


def test_the_built_in_monitors_are_registered_through_entry_points():
    assert {"mmd_adversarial", "individuals", "xbar_s", "p_chart", "np_chart", "ewma", "cusum"} <= set(available_monitors())


@pytest.mark.parametrize("name,index", CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_alarm_agrees_with_score_versus_threshold(name, index, seed):
    cls, params = build(name, index)
    reference, batch = cls._unit_test_data(np.random.default_rng(seed))
    result = cls(**params).fit(reference).check(batch)
    assert isinstance(result, MonitorResult)
    assert result.alarm == (result.score > result.threshold)


@pytest.mark.parametrize("name,index", CASES)
def test_state_dict_round_trip_gives_the_same_result(name, index):
    cls, params = build(name, index)
    reference, batch = cls._unit_test_data(np.random.default_rng(7))
    original = cls(**params).fit(reference)
    restored = cls(**params)
    restored.load_state_dict(original.state_dict())
    assert same(original.check(batch), restored.check(batch))


@pytest.mark.parametrize("name,index", CASES)
def test_hydra_zen_config_instantiates(name, index):
    cls, params = build(name, index)
    config = builds(cls, populate_full_signature=True, **params)
    assert isinstance(instantiate(config), cls)
