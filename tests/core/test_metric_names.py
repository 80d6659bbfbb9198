"""One name per quantity: the canonical name is read first, an older run's spelling still found."""

from __future__ import annotations

from types import SimpleNamespace

from trustops import metric_names
from trustops.dvc_reports import metrics_of
from trustops.metric_names import TEST_ACCURACY, read_metric


def test_the_canonical_name_wins_and_an_old_runs_name_is_still_read():
    assert read_metric({TEST_ACCURACY: 0.9, "accuracy": 0.1}, TEST_ACCURACY) == 0.9
    assert read_metric({"accuracy": 0.8}, TEST_ACCURACY) == 0.8  # a run logged before one name per quantity
    assert read_metric({}, TEST_ACCURACY) is None


def test_an_old_training_run_fills_the_dvc_metrics_under_todays_name():
    old_run = SimpleNamespace(metrics={"accuracy": 0.87, "test_ece": 0.04}, training={"dp_epsilon": 3.0},
                              mlflow_run_id="r0", registration={})
    assert metrics_of(old_run) == {TEST_ACCURACY: 0.87, "test_ece": 0.04, "dp_epsilon": 3.0, "mlflow_run_id": "r0"}


def test_every_name_is_defined_once():
    names = [value for key, value in vars(metric_names).items() if key.isupper() and isinstance(value, str)]
    assert len(names) == len(set(names)), sorted(names)
