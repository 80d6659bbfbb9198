"""The Alert record: validation, JSON round-trip (old outbox lines included), titles, condition keys, MLflow links."""

from __future__ import annotations

import copy
import dataclasses
import doctest
import json
import math
import pickle
import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

import trustops.alerts.alert
import trustops.alerts.digest
import trustops.alerts.manager
from trustops.alerts import Alert, AlertKind, InvalidAlertError, Limits, Severity, condition_key, mlflow_run_url
from trustops.alerts.outbox import Outbox

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
    headline=st.text(),
    step=st.none() | st.integers(),
    first_step=st.none() | st.integers(),
    captured_at=st.none() | aware_times,
    details=st.dictionaries(
        st.text(min_size=1),
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(),
        max_size=4,
    ),
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
        ({"headline": None}, "`headline` must be a string. Got: None"),
        ({"step": True}, "`step` must be an integer or None. Got: True"),
        ({"first_step": 4.5}, "`first_step` must be an integer or None. Got: 4.5"),
        ({"captured_at": datetime(2026, 12, 1)}, "`captured_at` must be a timezone-aware datetime"),
        ({"details": [("p", 0.1)]}, "`details` must be a mapping of text to str, float, int, bool or None"),
        ({"details": {1: "x"}}, "`details` keys must be non-empty strings. Got: 1"),
        ({"details": {"rules": ["1", "2"]}}, "`details['rules']` must be a str, float, int, bool or None. Got: ['1', '2']"),
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
        # A local store has no UI of its own: the link goes to what `trustops ui` serves.
        ("sqlite:///tmp/mlflow.db", "http://127.0.0.1:5000/#/experiments/7/runs/abc"),
        ("file:///tmp/mlruns", "http://127.0.0.1:5000/#/experiments/7/runs/abc"),
        ("/srv/project/mlruns", "http://127.0.0.1:5000/#/experiments/7/runs/abc"),
        ("mlruns", "http://127.0.0.1:5000/#/experiments/7/runs/abc"),
        ("C:\\project\\mlruns", "http://127.0.0.1:5000/#/experiments/7/runs/abc"),
        # A remote store with no http UI known: no link rather than a wrong one.
        ("databricks", None),
        ("databricks://profile", None),
        ("postgresql://user:pw@db/mlflow", None),
        (None, None),
    ],
)
def test_mlflow_run_url_for_http_and_local_stores_without_credentials(
    uri: str | None, expected: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRUSTOPS_MLFLOW_UI_URL", raising=False)
    assert mlflow_run_url(uri, "7", "abc") == expected
    assert mlflow_run_url(uri, "7", None) is None and mlflow_run_url(uri, None, "abc") is None


def test_mlflow_run_url_for_a_local_store_follows_the_configured_ui(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTOPS_MLFLOW_UI_URL", "https://ops:s3cret@mlflow.internal:8443/ui/?token=t0k#x")
    assert mlflow_run_url("sqlite:///tmp/mlflow.db", "7", "abc") == "https://mlflow.internal:8443/ui/#/experiments/7/runs/abc"
    # The argument wins over the environment; an http(s) tracking URI wins over both.
    assert mlflow_run_url("file:///tmp/mlruns", "7", "abc", ui_url="http://ui:5001/") == "http://ui:5001/#/experiments/7/runs/abc"
    assert mlflow_run_url("http://mlflow:5000", "7", "abc", ui_url="http://ui:5001") == "http://mlflow:5000/#/experiments/7/runs/abc"
    # A remote non-http store links once its UI is named.
    assert mlflow_run_url("postgresql://u:p@db/mlflow", "7", "abc") == "https://mlflow.internal:8443/ui/#/experiments/7/runs/abc"


def test_a_ui_url_that_is_not_http_gives_no_link_and_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TRUSTOPS_MLFLOW_UI_URL", "ftp://user:hunter2@files")
    assert mlflow_run_url("sqlite:///tmp/mlflow.db", "7", "abc") is None
    assert "$TRUSTOPS_MLFLOW_UI_URL is not an http(s) URL" in caplog.text and "hunter2" not in caplog.text


def test_summary_reads_well() -> None:
    alert = make_alert(mlflow_run_url="http://mlflow:5000/#/experiments/1/runs/0a1b2c", message="three points\nbelow")
    assert alert.summary() == (
        "[CRITICAL] out of control: control_charts/accuracy = 0.71; rule 3-sigma; limits [0.8, -]; "
        "model resnet18 v3; MLflow run 0a1b2c http://mlflow:5000/#/experiments/1/runs/0a1b2c; three points below"
    )


@pytest.mark.parametrize("module", [trustops.alerts.alert, trustops.alerts.digest, trustops.alerts.manager])
def test_docstring_examples_run(module: object) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


# Lines written by the Alert.to_json of the release before headline/step/details existed.
OLD_OUTBOX_ALERTS = [
    '{"monitor":"control_charts","metric":"individuals","rule":"western_electric_1","value":7.2,'
    '"limits":{"lower":null,"upper":3.1},"severity":"warning","kind":"out_of_control","model_name":"trustops-digits",'
    '"model_version":"3","mlflow_run_id":"0a1b2c","mlflow_run_url":null,'
    '"message":"mmd_adversarial out of control on capture step 41 (rule 1)","time":"2026-12-01T03:04:05.000000Z","id":"old1"}',
    '{"monitor":"mmd_adversarial","metric":"score","rule":"mmd_adversarial>threshold","value":"Infinity",'
    '"limits":{"lower":null,"upper":null},"severity":"critical","kind":"adversarial","model_name":null,"model_version":null,'
    '"mlflow_run_id":null,"mlflow_run_url":null,"message":"","time":"2026-12-01T03:04:06.000000Z","id":"old2"}',
]


def test_old_outbox_lines_still_load_with_the_new_fields_defaulted(tmp_path) -> None:
    (tmp_path / "outbox.jsonl").write_text("".join(f'{{"v":1,"alert":{a},"channels":["webhook"]}}\n' for a in OLD_OUTBOX_ALERTS))
    records = Outbox(tmp_path).records()
    assert [r.alert.id for r in records] == ["old1", "old2"] and records[0].channels == ("webhook",)
    old = records[0].alert
    assert (old.headline, old.step, old.first_step, old.captured_at, dict(old.details)) == ("", None, None, None, {})
    assert old.time == datetime(2026, 12, 1, 3, 4, 5, tzinfo=timezone.utc) and records[1].alert.value == math.inf
    # Today's summary for them is unchanged; their title is a sentence without the rule.
    assert old.summary().startswith("[WARNING] out of control: control_charts/individuals = 7.2; rule western_electric_1")
    assert old.title == "Out of control on trustops-digits v3: control_charts individuals = 7.2, above its upper limit 3.1."
    assert Alert.from_json(old.to_json()) == old


def test_new_fields_round_trip_and_are_normalised() -> None:
    class NumpyLike:  # what numpy/torch 0-d values offer
        def __init__(self, value: object) -> None:
            self.value = value

        def item(self) -> object:
            return self.value

    served = datetime(2026, 12, 1, 5, 4, tzinfo=timezone(timedelta(hours=2)))
    alert = make_alert(
        kind="distribution_shift", step=41, first_step=39, captured_at=served,
        details={"p_value": 2e-06, "alpha": 1 / 3000, "chart": "individuals", "rules": "1", "alarm": NumpyLike(True),
                 "n": NumpyLike(150), "z": math.nan, "skipped": None},
    )
    assert alert.kind == AlertKind.DISTRIBUTION_SHIFT and AlertKind("suspected_adversarial").label == "Suspected adversarial input"
    assert alert.captured_at == datetime(2026, 12, 1, 3, 4, tzinfo=timezone.utc)
    assert dict(alert.details) == {"p_value": 2e-06, "alpha": 1 / 3000, "chart": "individuals", "rules": "1",
                                   "alarm": True, "n": 150, "z": "NaN", "skipped": None}
    with pytest.raises(TypeError):  # read-only: an alert is a value
        alert.details["p_value"] = 1.0  # type: ignore[index]
    data = alert.to_dict()
    assert data["captured_at"] == "2026-12-01T03:04:00.000000Z" and data["step"] == 41 and data["details"]["z"] == "NaN"
    assert Alert.from_json(alert.to_json()) == alert
    assert hash(alert) == hash(Alert.from_json(alert.to_json()))  # still usable in sets
    assert pickle.loads(pickle.dumps(alert)) == alert and copy.deepcopy(alert) == alert  # ZenML artifacts, processes


HEADLINE = (
    "Distribution shift on trustops-digits v3: input drift p = 2e-06, 150x below its 1/3000 limit, "
    "since capture step 41 (served 2026-12-01 03:04 UTC)."
)


def test_the_headline_is_the_title_and_the_summary_and_rules_stay_in_the_details() -> None:
    alert = make_alert(rule="western_electric_1", headline=HEADLINE + "\n", kind="distribution_shift", step=41,
                       details={"chart": "individuals", "alpha": 1 / 3000})
    assert alert.title == HEADLINE
    assert alert.summary() == "[CRITICAL] " + HEADLINE
    details = alert.detail_items()
    assert details["rule"] == "western_electric_1" and details["chart"] == "individuals" and details["alpha"] == "0.000333333"
    assert details["limits"] == "[0.8, -]" and details["step"] == "41" and details["alert_id"] == alert.id
    assert list(details)[:5] == ["condition", "rule", "severity", "kind", "value"]


@given(alerts, st.text(min_size=1))
def test_a_title_is_one_line_and_never_names_the_rule(alert: Alert, rule: str) -> None:
    def unmarked(text: str | None) -> str | None:
        return None if text is None else text.replace("§", "x")

    # "§" marks the rule and appears in no other field, so any "§" in the title came from the rule.
    alert = dataclasses.replace(
        alert, rule=f"§{rule}", headline=unmarked(alert.headline), monitor=unmarked(alert.monitor),
        metric=unmarked(alert.metric), model_name=unmarked(alert.model_name), model_version=unmarked(alert.model_version),
    )
    assert "§" not in alert.title
    assert len(alert.title.splitlines()) <= 1 and alert.title == alert.title.strip()
    assert alert.detail_items()["rule"] == " ".join(f"§{rule}".split())


def test_a_title_without_a_headline_reads_as_a_sentence() -> None:
    alert = make_alert(step=44, first_step=41, captured_at=datetime(2026, 12, 1, 3, 4, tzinfo=timezone.utc))
    assert alert.title == (
        "Out of control on resnet18 v3: control_charts accuracy = 0.71, below its lower limit 0.8, "
        "since capture step 41, at capture step 44 (served 2026-12-01 03:04 UTC)."
    )
    assert make_alert(value=None, kind="monitor_failure", model_name=None).title == (
        "Monitor failure on an unnamed model: control_charts accuracy."
    )
