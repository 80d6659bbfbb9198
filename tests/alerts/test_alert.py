"""The Alert record: validation, JSON round-trip, condition keys, MLflow links."""

from __future__ import annotations

import doctest
import json
import math
import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

import trustops.alerts.alert
import trustops.alerts.manager
from trustops.alerts import Alert, AlertKind, InvalidAlertError, Limits, Severity, condition_key, mlflow_run_url

from .conftest import make_alert

optional_floats = st.none() | st.floats(allow_nan=True, allow_infinity=True)
optional_text = st.none() | st.text()
aware_times = st.builds(
    lambda moment, minutes: moment.replace(tzinfo=timezone(timedelta(minutes=minutes))),
    st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(min_value=-23 * 60, max_value=23 * 60),
)
alerts = st.builds(
    Alert,
    monitor=st.text(min_size=1),
    metric=st.text(min_size=1),
    rule=st.text(min_size=1),
    value=optional_floats,
    limits=st.builds(Limits, lower=optional_floats, upper=optional_floats),
    severity=st.sampled_from(Severity),
    kind=st.sampled_from(AlertKind),
    model_name=optional_text,
    model_version=optional_text,
    mlflow_run_id=optional_text,
    mlflow_run_url=optional_text,
    message=st.text(),
    time=aware_times,
    id=st.text(min_size=1),
)


@given(alerts)
def test_json_round_trip_is_exact(alert: Alert) -> None:
    text = alert.to_json()
    assert "\n" not in text
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    again = Alert.from_json(text)
    assert again.to_dict() == alert.to_dict()  # NaN-safe: a NaN is the string "NaN" here
    if not any(x is not None and math.isnan(x) for x in (alert.value, alert.limits.lower, alert.limits.upper)):
        assert again == alert  # NaN != NaN, so only NaN-free alerts compare equal


@given(alerts)
def test_summary_is_one_line_and_key_is_stable(alert: Alert) -> None:
    summary = alert.summary()
    assert len(summary.splitlines()) == 1
    assert alert.key == Alert.from_json(alert.to_json()).key


def test_time_is_stored_in_utc() -> None:
    local = datetime(2025, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    alert = make_alert(time=local)
    assert alert.time.utcoffset() == timedelta(0)
    assert alert.to_dict()["time"] == "2025-03-01T10:00:00.000000Z"


def test_numpy_style_scalars_and_strings_are_converted() -> None:
    class Scalar:  # what a numpy/torch 0-d value offers
        def __float__(self) -> float:
            return 0.25

    alert = make_alert(value=Scalar(), severity="warning", kind="adversarial", model_version=7, limits=(None, 1))
    assert (alert.value, alert.severity, alert.kind, alert.model_version) == (0.25, Severity.WARNING, AlertKind.ADVERSARIAL, "7")
    assert alert.limits == Limits(lower=None, upper=1.0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"monitor": ""}, "`monitor` must be a non-empty string. Got: ''"),
        ({"severity": "fatal"}, "`severity` must be one of info, warning, critical. Got: 'fatal'"),
        ({"kind": "oops"}, "`kind` must be one of out_of_control, recovered, adversarial"),
        ({"value": "high"}, "`value` must be a number or None. Got: 'high'"),
        ({"value": True}, "`value` must be a number or None. Got: True"),
        ({"limits": (1, 2, 3)}, "`limits` must be Limits"),
        ({"time": datetime(2025, 1, 1)}, "`time` must be a timezone-aware datetime"),
        ({"model_name": 3}, "`model_name` must be a string or None. Got: 3"),
    ],
)
def test_bad_fields_are_refused_clearly(overrides: dict, message: str) -> None:
    with pytest.raises(InvalidAlertError, match=re.escape(message)):
        make_alert(**overrides)
    assert issubclass(InvalidAlertError, ValueError)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "does not parse"),
        ("[1, 2]", "must be an object"),
        ('{"monitor": "m"}', "lacks ['metric', 'rule', 'value']"),
        ('{"monitor": "m", "metric": "x", "rule": "r", "value": 1, "time": "yesterday"}', "must be ISO-8601"),
    ],
)
def test_bad_json_is_refused_clearly(text: str, message: str) -> None:
    with pytest.raises(InvalidAlertError, match=re.escape(message)):
        Alert.from_json(text)


def test_unknown_keys_from_a_newer_writer_are_ignored() -> None:
    alert = make_alert()
    assert Alert.from_dict(alert.to_dict() | {"escalation_policy": "night"}) == alert


def test_condition_key_names_monitor_metric_rule_and_model_but_not_version() -> None:
    assert make_alert().key == "control_charts|accuracy|3-sigma|resnet18"
    assert make_alert(model_version="4", value=0.1).key == make_alert().key
    assert make_alert(metric="loss").key != make_alert().key
    # Escaping keeps different parts from colliding.
    assert condition_key("a|b", "c", "r", None) != condition_key("a", "b|c", "r", None)
    assert condition_key("a\\", "|c", "r", None) != condition_key("a\\|", "c", "r", None)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("http://mlflow:5000", "http://mlflow:5000/#/experiments/7/runs/abc"),
        ("https://user:pw@ml.example.com/mlflow/?token=x#frag", "https://ml.example.com/mlflow/#/experiments/7/runs/abc"),
        ("http://[::1]:5000", "http://[::1]:5000/#/experiments/7/runs/abc"),
        ("sqlite:///tmp/mlflow.db", None),
        ("file:///tmp/mlruns", None),
        ("databricks", None),
        (None, None),
    ],
)
def test_mlflow_run_url_only_for_http_and_without_credentials(uri: str | None, expected: str | None) -> None:
    assert mlflow_run_url(uri, "7", "abc") == expected


def test_summary_reads_well() -> None:
    alert = make_alert(mlflow_run_url="http://mlflow:5000/#/experiments/1/runs/0a1b2c", message="three points\nbelow")
    assert alert.summary() == (
        "[CRITICAL] out of control: control_charts/accuracy = 0.71; rule 3-sigma; limits [0.8, -]; "
        "model resnet18 v3; MLflow run 0a1b2c http://mlflow:5000/#/experiments/1/runs/0a1b2c; three points below"
    )


@pytest.mark.parametrize("module", [trustops.alerts.alert, trustops.alerts.manager])
def test_docstring_examples_run(module: object) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
