"""Each chart is a monitor plugin: a snake_case name, registrable, and the alarm/score/threshold contract."""

from __future__ import annotations

import re

import numpy as np
import pytest

from monitors import Monitor, MonitorResult, get_monitor, register_monitor
from monitors.control_charts import CHARTS, ControlChart

EXPECTED_NAMES = {"individuals", "xbar_s", "p_chart", "np_chart", "ewma", "cusum"}


def test_names_are_the_documented_snake_case_plugin_names() -> None:
    assert {cls.name for cls in CHARTS} == EXPECTED_NAMES
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", cls.name) for cls in CHARTS)


@pytest.mark.parametrize("cls", CHARTS, ids=lambda cls: cls.name)
def test_registers_and_resolves_by_name(cls) -> None:
    assert issubclass(cls, Monitor)
    register_monitor(cls)
    assert get_monitor(cls.name) is cls


@pytest.mark.parametrize("cls", CHARTS, ids=lambda cls: cls.name)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unit_test_hooks_give_working_monitors(cls: type[ControlChart], seed: int) -> None:
    """Seeds 0-2: the hooks a registry-wide contract suite can use, and the alarm contract on them."""
    rng = np.random.default_rng(seed)
    for params in cls._unit_test_params():
        reference, batch = cls._unit_test_data(rng)
        monitor = cls(**params)
        assert monitor.fit(reference) is monitor
        result = monitor.check(batch)
        assert isinstance(result, MonitorResult)
        assert result.alarm == (result.score > result.threshold)
        assert result.threshold == monitor.threshold
        assert all(isinstance(value, int | float | str | bool) for value in result.details.values())
        clone = cls(**params)
        clone.load_state_dict(monitor.state_dict())
        assert clone.check(batch) == monitor.check(batch)
