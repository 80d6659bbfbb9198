"""One state format for every monitor: the envelope, its refusals, and the layouts written before it.

Each older layout is built here by hand, key for key as the release before the envelope wrote it
(``version`` 1 or 2 beside ``config`` and the monitor's own keys), so a state a user has on disk
keeps loading.  The bulky parts (a reference table, tensors, chart points) come from a fitted
monitor: their content did not change, only where they sit.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from monitors import MonitorInputError, MonitorStateError, available_monitors, get_monitor
from monitors._state import FORMAT, STATE_VERSION
from monitors.accuracy import AccuracyMonitor
from monitors.confidence import ConfidenceMonitor
from monitors.control_charts import CUSUMChart, EWMAChart
from monitors.data_drift import EvidentlyDriftMonitor
from monitors.errors import MonitorConfigError
from monitors.feature_squeezing import FeatureSqueezingMonitor
from monitors.input_expectations import InputExpectationsMonitor
from monitors.mmd_adversarial import MMDAdversarialMonitor
from monitors.prediction_shift import PredictionShiftMonitor

CASES = [
    pytest.param(name, index, id=f"{name}-{index}")
    for name in available_monitors()
    for index, _ in enumerate(get_monitor(name)._unit_test_params())
]


def fitted_case(name: str, index: int):
    cls = get_monitor(name)
    params = cls._unit_test_params()[index]
    reference, batch = cls._unit_test_data(np.random.default_rng(5))
    return cls, params, cls(**params).fit(reference), batch


# -- the envelope ---------------------------------------------------------------------------


@pytest.mark.parametrize("name,index", CASES)
def test_every_monitor_writes_the_one_envelope(name, index):
    cls, params, monitor, _ = fitted_case(name, index)
    state = monitor.state_dict()
    assert set(state) == {"format", "version", "monitor", "config", "state"}
    assert (state["format"], state["version"], state["monitor"]) == (FORMAT, STATE_VERSION, name)
    assert state["config"] == monitor.config
    assert set(state["config"]) == set(cls._option_names())


@pytest.mark.parametrize("name,index", CASES)
def test_options_are_captured_once_and_rebuild_the_monitor(name, index):
    """``config`` is read back through the constructor's signature: it rebuilds an equal monitor."""
    cls, params, monitor, batch = fitted_case(name, index)
    assert cls(**monitor.config).config == monitor.config
    assert {key: monitor.config[key] for key in params} == json.loads(json.dumps(params))  # what was asked, as JSON
    restored = cls.from_state_dict(monitor.state_dict())
    assert restored.config == monitor.config
    assert restored.check(batch).alarm == monitor.check(batch).alarm


REFUSED = [
    ("another monitor", lambda s: {**s, "monitor": "mean_confidence"}, "monitor 'mean_confidence'"),
    ("unknown version", lambda s: {**s, "version": 99}, "version 99"),
    ("unknown format", lambda s: {**s, "format": "alibi_detect"}, "format 'alibi_detect'"),
    ("no state", lambda s: {k: v for k, v in s.items() if k != "state"}, "keys ['config', 'format', 'monitor', 'version']"),
    ("unknown option", lambda s: {**s, "config": {**s["config"], "colour": "red"}}, "options ['alpha', 'colour', 'min_drop']"),
    ("old layout, unknown version", lambda s: {"version": 7, "config": s["config"], "fitted": None}, "version 7"),
    ("not a mapping", lambda s: [s], "got a list"),
]


@pytest.mark.parametrize(("case", "damage", "given"), REFUSED, ids=[case[0] for case in REFUSED])
def test_a_state_of_another_monitor_or_version_is_refused_naming_both(case, damage, given):
    state = AccuracyMonitor().fit(0.9).state_dict()
    with pytest.raises(MonitorStateError) as raised:
        AccuracyMonitor().load_state_dict(damage(state))
    message = str(raised.value)
    assert message.startswith("AccuracyMonitor cannot load this state: got ") and given in message
    assert "loads 'accuracy' states of format 'trustops.monitor' version 3, or its older layouts (versions 1)" in message
    assert isinstance(raised.value, MonitorInputError) and isinstance(raised.value, MonitorConfigError)


# -- layouts written before the envelope ------------------------------------------------------


def test_fitted_dict_layout_version_1_loads():
    """accuracy, mean_confidence, feature_squeezing and input_expectations wrote {version: 1, config, fitted}."""
    old = {"version": 1, "config": {"alpha": 0.001, "min_drop": 0.02}, "fitted": {"accuracy": 0.9, "n": 1000, "correct": 900}}
    monitor = AccuracyMonitor()
    monitor.load_state_dict(json.loads(json.dumps(old)))
    assert monitor.config == {"alpha": 0.001, "min_drop": 0.02} and monitor.reference_accuracy == 0.9

    g = np.random.default_rng(1)
    scores = g.exponential(0.05, size=200)
    old = {"version": 1, "config": {"alpha": 0.01, "tail_quantile": 0.8}, "fitted": {"scores": scores.tolist()}}
    restored, fresh = FeatureSqueezingMonitor(), FeatureSqueezingMonitor().fit(scores)
    restored.load_state_dict(old)
    batch = g.exponential(0.05, size=50) + 0.05
    assert restored.check(batch) == fresh.check(batch)

    probabilities = g.dirichlet(np.ones(3), size=100)
    top = probabilities.max(axis=1)
    old = {
        "version": 1,
        "config": {"alpha": 0.01, "max_draws": 99, "stop_after": 10, "seed": 0, "min_confidence": None},
        "fitted": {"mean": float(top.mean()), "top": top.tolist(), "n_classes": 3},
    }
    restored, fresh = ConfidenceMonitor(alpha=0.5), ConfidenceMonitor().fit(probabilities)
    restored.load_state_dict(old)
    assert restored.config == fresh.config and restored.check(probabilities[:40]) == fresh.check(probabilities[:40])

    frame = pd.DataFrame(g.normal(size=(50, 2)), columns=["a", "b"])
    fitted = InputExpectationsMonitor(range_margin=1.0).fit(frame).state_dict()["state"]["fitted"]
    old = {
        "version": 1,
        "config": {"label_column": None, "feature_columns": None, "range_margin": 1.0, "value_range": None,
                   "min_rows": 1, "max_class_kl": 0.05},
        "fitted": fitted,
    }
    restored = InputExpectationsMonitor()
    restored.load_state_dict(old)
    assert restored.config["range_margin"] == 1.0 and not restored.check(frame).alarm


def test_prediction_shift_layout_version_2_loads():
    old = {
        "version": 2,
        "config": {"alpha": 0.05, "n_classes": 3, "method": "g_test", "max_draws": 19, "stop_after": 10, "seed": 4},
        "reference_counts": [500, 300, 200],
    }
    monitor = PredictionShiftMonitor()
    monitor.load_state_dict(old)
    assert monitor.reference_counts == (500, 300, 200) and monitor.config == old["config"]
    fresh = PredictionShiftMonitor(**old["config"]).fit(np.repeat([0, 1, 2], [500, 300, 200]))
    batch = np.random.default_rng(0).choice(3, size=100)
    assert monitor.check(batch) == fresh.check(batch)


def test_data_drift_layout_version_2_loads():
    g = np.random.default_rng(3)
    reference = pd.DataFrame(g.normal(size=(60, 3)), columns=["a", "b", "c"])
    original = EvidentlyDriftMonitor(drift_share=0.3, alpha=0.01, seed=7).fit(reference)
    inner = json.loads(json.dumps(original.state_dict()["state"]))
    old = {
        "version": 2,
        "config": {"drift_share": 0.3, "method": None, "column_threshold": None, "alpha": 0.01, "max_draws": None, "seed": 7},
        "reference": inner["reference"],
        "generator": inner["generator"],
    }
    restored = EvidentlyDriftMonitor()
    restored.load_state_dict(old)
    batch = pd.DataFrame(g.normal(size=(30, 3)) + 0.3, columns=["a", "b", "c"])
    assert restored.config == original.config and restored.check(batch) == original.check(batch)


def mmd_layout_version_2(monitor: MMDAdversarialMonitor, backend: str) -> dict:
    inner = monitor.state_dict()["state"]
    config = {
        "alpha": 0.05, "n_permutations": 99, "method": "permutation", "class_matching": False, "backend": backend,
        "seed": 0, "dtype": "float32", "device": "cpu", "tile_size": 1024, "reference_cache_rows": 4096,
        "bandwidth_rows": 1000, "standardize": "pooled", "stop_after": None,
    }
    return {"version": 2, "config": config, "generator_state": inner["generator_state"], "fitted": inner["fitted"]}


def test_mmd_layout_version_2_loads_and_drops_the_backend_option():
    reference, batch = torch.randn(120, 4, generator=torch.Generator().manual_seed(0)), torch.randn(40, 4) + 0.2
    original = MMDAdversarialMonitor(class_matching=False, n_permutations=99, seed=0).fit(reference)
    old = mmd_layout_version_2(original, "trustops")
    restored = MMDAdversarialMonitor()
    restored.load_state_dict(old)
    assert restored.config == original.config and "backend" not in restored.config
    assert restored.check(batch) == original.check(batch)


def test_mmd_layout_version_2_of_the_alibi_backend_goes_to_its_class():
    from monitors.mmd.alibi_backend import AlibiDetectMMDMonitor

    reference = torch.randn(60, 3, generator=torch.Generator().manual_seed(1))
    old = mmd_layout_version_2(MMDAdversarialMonitor(class_matching=False, seed=0).fit(reference), "alibi_detect")
    with pytest.raises(MonitorStateError, match=r"saved with backend='alibi_detect'.*AlibiDetectMMDMonitor \(monitors.mmd.alibi_backend\)"):
        MMDAdversarialMonitor().load_state_dict(old)
    monitor = AlibiDetectMMDMonitor(class_matching=False)
    monitor.load_state_dict(old)
    assert monitor.layers == ("activations",) and monitor.state_dict()["monitor"] == "mmd_adversarial_alibi_detect"
    with pytest.raises(MonitorStateError, match="saved with backend='trustops'"):
        monitor.load_state_dict(mmd_layout_version_2(monitor, "trustops"))


def test_chart_layout_version_1_loads():
    g = np.random.default_rng(2)
    original = EWMAChart(lam=0.3).fit(g.normal(size=40))
    original.check(g.normal(size=15) + 0.5)
    inner = json.loads(json.dumps(original.state_dict()["state"]))
    old = {
        "chart": "ewma",
        "version": 1,
        "config": {"min_baseline": 20, "history_size": 1000, "lam": 0.3, "L": original.L, "limits": "exact",
                   "mean": None, "sigma": None, "sigma_method": "moving_range"},
        "params": inner["params"],
        "stream": inner["stream"],
        "count": inner["count"],
        "n_signals": inner["n_signals"],
        "history": inner["history"],
    }
    restored = EWMAChart.from_state_dict(old)
    assert restored.n_observations == 15 and restored.history == original.history
    more = g.normal(size=10)
    assert restored.check(more) == original.check(more)
    with pytest.raises(MonitorStateError, match=r"CUSUMChart cannot load this state: got monitor 'ewma', version 1"):
        CUSUMChart().load_state_dict(old)


def test_mmd_layout_version_2_with_reference_standardization_loads_with_a_warning():
    """``standardize="reference"`` is gone; such a state keeps its reference and checks with the exact, pooled test."""
    reference, batch = torch.randn(80, 3, generator=torch.Generator().manual_seed(2)), torch.randn(30, 3) + 0.5
    original = MMDAdversarialMonitor(class_matching=False, n_permutations=99, seed=0).fit(reference)
    old = mmd_layout_version_2(original, "trustops")
    old["config"].update(standardize="reference", reference_cache_rows=0)
    restored = MMDAdversarialMonitor()
    with pytest.warns(UserWarning, match="standardize='reference', which is no longer offered"):
        restored.load_state_dict(old)
    assert restored.config == original.config and restored.check(batch) == original.check(batch)
