"""The webhook channel against a real HTTP server on 127.0.0.1: payloads (slack, json), digests, retries, outages, secrecy."""

from __future__ import annotations

import logging
import re
import time
import traceback
from pathlib import Path

import pytest

from trustops.alerts import (
    Alert,
    AlertManager,
    ConsoleChannel,
    DeliveryError,
    Digest,
    RetryPolicy,
    WebhookChannel,
    json_payload,
    slack_payload,
    webhook_format,
)
from trustops.errors import ConfigError

from .conftest import FAST_RETRY, SECRET_MARKERS, SECRET_PATH, WebhookReceiver, make_alert


LINK = "http://127.0.0.1:5000/#/experiments/1/runs/0a1b2c"
MARKUP = "input drift p < 1/3000 & rising > 150x"  # what Slack must see escaped and a JSON receiver raw


def three_alerts() -> list[Alert]:
    """Three conditions on one model, made least severe first."""
    return [
        make_alert("loss", severity="warning", headline=f"Distribution shift on resnet18 v3: {MARKUP}, since capture step 41.",
                   rule="western_electric_1", details={"chart": "individuals", "alpha": 1 / 3000}),
        make_alert(rule="mmd_p_value<alpha", mlflow_run_url=LINK, message="a & b",
                   headline="Suspected adversarial input on resnet18 v3: p = 1e-09, at capture step 42."),
        make_alert("ece", severity="info", kind="recovered", headline="Recovered: calibration on resnet18 v3."),
    ]


def test_slack_payload_of_a_digest() -> None:
    digest = Digest.of(three_alerts())
    payload = slack_payload(digest)

    assert set(payload) == {"text", "blocks"}
    assert payload["text"] == "[CRITICAL] Suspected adversarial input on resnet18 v3: p = 1e-09, at capture step 42. (and 2 more conditions)"
    first, rest, link, *details = payload["blocks"]
    assert first == {"type": "section", "text": {"type": "mrkdwn", "text": ":rotating_light: " + payload["text"].removeprefix("[CRITICAL] ")}}
    assert rest["text"]["text"] == (
        ":warning: Distribution shift on resnet18 v3: input drift p &lt; 1/3000 &amp; rising &gt; 150x, since capture step 41.\n"
        ":large_green_circle: Recovered: calibration on resnet18 v3."
    )
    assert link["text"]["text"] == f"<{LINK}|Open the MLflow run>"
    # The rules, limits and p-values are in one context block per alert, most severe first, escaped.
    assert [d["type"] for d in details] == ["context"] * 3
    texts = [d["elements"][0]["text"] for d in details]
    assert "*rule* `mmd_p_value&lt;alpha`" in texts[0] and "*note* `a &amp; b`" in texts[0] and "*limits* `[0.8, -]`" in texts[0]
    assert "*rule* `western_electric_1`" in texts[1] and "*chart* `individuals`" in texts[1]
    assert all(alert.id in text for alert, text in zip(digest.alerts, texts, strict=True))
    # Titles stay free of rule names.
    assert "western_electric" not in first["text"]["text"] + rest["text"]["text"] and "alpha" not in payload["text"]


def test_json_payload_of_a_digest_is_raw_and_reloads() -> None:
    alerts = three_alerts()
    payload = json_payload(Digest.of(alerts))
    assert payload["text"] == "[CRITICAL] Suspected adversarial input on resnet18 v3: p = 1e-09, at capture step 42. (and 2 more conditions)"
    assert payload["severity"] == "critical" and payload["model_name"] == "resnet18" and payload["model_version"] == "3"
    assert payload["mlflow_run_url"] == LINK
    assert [Alert.from_dict(data) for data in payload["alerts"]] == [alerts[1], alerts[0], alerts[2]]
    assert MARKUP in payload["body"] and "&gt;" not in payload["body"] and "&amp;" not in payload["body"]


def test_a_digest_of_many_alerts_keeps_to_slacks_limits() -> None:
    alerts = [make_alert(f"metric{i}", headline=f"Metric {i} on resnet18 v3 is out " + "of bounds " * 40) for i in range(80)]
    payload = slack_payload(Digest.of(alerts))
    assert len(payload["blocks"]) <= 50 and "(and 79 more conditions)" in payload["text"]
    texts = [b["text"]["text"] if "text" in b else b["elements"][0]["text"] for b in payload["blocks"]]
    assert all(len(text) <= 3000 for text in texts)
    assert texts[1].endswith("more") and texts[-1].startswith("…and the details of")


@pytest.mark.parametrize(("mode", "shown"), [("json", MARKUP), ("slack", "input drift p &lt; 1/3000 &amp; rising &gt; 150x")])
def test_one_flush_posts_one_request_per_model_escaped_for_the_format(
    webhook_env: WebhookReceiver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: str, shown: str
) -> None:
    monkeypatch.setenv("TRUSTOPS_ALERT_WEBHOOK_FORMAT", mode)
    manager = AlertManager.from_config(tmp_path, {"webhook": {"retry": FAST_RETRY}})
    alerts = three_alerts()
    for alert in alerts:
        manager.raise_or_clear(alert.key, True, lambda alert=alert: alert)
    assert webhook_env.receipts == []  # recorded, not yet sent

    summary = manager.flush()
    assert summary.ok and summary.messages == {"webhook": 1} and set(summary.sent) == {a.id for a in alerts}
    [body] = webhook_env.accepted()  # three alerts, one HTTP request
    assert webhook_env.receipts[0].path == f"{SECRET_PATH}?auth=querySecret9191"
    if mode == "json":
        assert body["text"].endswith("(and 2 more conditions)") and ">" in body["body"]
        drift = next(a for a in body["alerts"] if a["metric"] == "loss")
        assert shown in drift["headline"] and drift["details"] == {"chart": "individuals", "alpha": 1 / 3000}
        assert [a["id"] for a in body["alerts"]] == [alerts[1].id, alerts[0].id, alerts[2].id]
    else:
        assert body["text"].endswith("(and 2 more conditions)") and set(body) == {"text", "blocks"}
        assert shown in body["blocks"][1]["text"]["text"] and MARKUP not in str(body)
    assert manager.flush().messages == {} and len(webhook_env.receipts) == 1


def test_delivers_one_alert_as_a_digest_of_one(webhook_env: WebhookReceiver) -> None:
    alert = make_alert()
    channel = WebhookChannel(retry=FAST_RETRY)
    channel.deliver(alert)
    assert channel.format == "json"  # 127.0.0.1 is not Slack
    assert webhook_env.accepted() == [json_payload(alert)]
    assert webhook_env.receipts[0].path == f"{SECRET_PATH}?auth=querySecret9191"


@pytest.mark.parametrize(
    ("url", "option", "env", "expected"),
    [
        ("https://hooks.slack.com/services/T0SECRETTEAM/B0SECRETHOOK/xoxSecretToken4242", None, None, "slack"),
        ("https://HOOKS.SLACK.COM/services/T0SECRETTEAM", None, None, "slack"),
        ("https://chat.example.com/hooks/T0SECRETTEAM", None, None, "json"),
        ("https://hooks.slack.com.example.com/T0SECRETTEAM", None, None, "json"),
        ("https://hooks.slack.com/services/T0SECRETTEAM", None, "json", "json"),
        ("https://chat.example.com/hooks/T0SECRETTEAM", None, " Slack ", "slack"),
        ("https://chat.example.com/hooks/T0SECRETTEAM", "json", "slack", "json"),  # the option wins
    ],
)
def test_the_format_follows_the_option_then_the_environment_then_the_host(
    monkeypatch: pytest.MonkeyPatch, url: str, option: str | None, env: str | None, expected: str
) -> None:
    if env is None:
        monkeypatch.delenv("TRUSTOPS_ALERT_WEBHOOK_FORMAT", raising=False)
    else:
        monkeypatch.setenv("TRUSTOPS_ALERT_WEBHOOK_FORMAT", env)
    assert webhook_format(url, option) == expected
    monkeypatch.setenv("TRUSTOPS_ALERT_WEBHOOK_URL", url)
    channel = WebhookChannel(format=option)  # built, never sent: no network here
    assert channel.format == expected and f"format={expected!r}" in repr(channel)
    assert not any(marker in repr(channel) for marker in SECRET_MARKERS)


@pytest.mark.parametrize(
    ("option", "env", "message"),
    [
        ("html", None, "The alert webhook format from the `format` option must be one of slack, json. Got: 'html'"),
        (None, "teams", "The alert webhook format from $TRUSTOPS_ALERT_WEBHOOK_FORMAT must be one of slack, json. Got: 'teams'"),
    ],
)
def test_an_unknown_format_is_a_config_error(
    webhook_env: WebhookReceiver, monkeypatch: pytest.MonkeyPatch, option: str | None, env: str | None, message: str
) -> None:
    if env is not None:
        monkeypatch.setenv("TRUSTOPS_ALERT_WEBHOOK_FORMAT", env)
    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        AlertManager.from_config("unused", {"webhook": {"format": option}})
    assert not any(marker in str(raised.value) for marker in SECRET_MARKERS)


def test_transient_errors_are_retried_until_accepted(webhook_env: WebhookReceiver) -> None:
    webhook_env.fail_next = [503, 429, 500]
    WebhookChannel(retry={**FAST_RETRY, "max_retries": 3}).deliver(make_alert())
    assert [r.status for r in webhook_env.receipts] == [503, 429, 500, 200]


def test_a_client_error_is_not_retried(webhook_env: WebhookReceiver) -> None:
    webhook_env.fail_next = [404]
    with pytest.raises(DeliveryError, match=r"refused after 1 attempt\(s\) .*HTTP 404"):
        WebhookChannel(retry=FAST_RETRY).deliver(make_alert())
    assert len(webhook_env.receipts) == 1


def test_a_server_that_does_not_answer_in_time_is_a_retryable_failure(webhook_env: WebhookReceiver) -> None:
    webhook_env.answer_after = 0.3
    policy = RetryPolicy(max_retries=1, initial_delay=0.01, timeout=0.1, max_total=1.0)
    with pytest.raises(DeliveryError, match=r"gave up after 2 attempt\(s\) .*: TimeoutError"):
        WebhookChannel(retry=policy).deliver(make_alert())


def test_retries_are_bounded_in_number(webhook_env: WebhookReceiver) -> None:
    webhook_env.fail_next = [503] * 10
    with pytest.raises(DeliveryError, match=r"gave up after 3 attempt\(s\)"):
        WebhookChannel(retry=FAST_RETRY).deliver(make_alert())
    assert len(webhook_env.receipts) == 3


def test_retries_are_bounded_in_total_time(webhook_env: WebhookReceiver) -> None:
    webhook_env.fail_next = [503] * 100
    policy = RetryPolicy(max_retries=100, initial_delay=0.05, multiplier=2.0, max_total=0.3, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="gave up"):
        WebhookChannel(retry=policy).deliver(make_alert())
    assert time.monotonic() - started < 0.3 + 0.2
    assert 2 <= len(webhook_env.receipts) <= 4  # waits of 0.05, 0.1 fit in 0.3 s; 0.2 more would not


@pytest.mark.parametrize(("header", "max_delay", "least", "most"), [("1", 5.0, 1.0, 3.0), ("3600", 0.1, 0.1, 1.0)])
def test_a_retry_after_header_lengthens_the_wait_up_to_max_delay(
    webhook_env: WebhookReceiver, header: str, max_delay: float, least: float, most: float
) -> None:
    webhook_env.fail_next, webhook_env.retry_after = [429], header
    policy = RetryPolicy(max_retries=1, initial_delay=0.01, max_delay=max_delay, max_total=10.0, timeout=2.0)
    started = time.monotonic()
    WebhookChannel(retry=policy).deliver(make_alert())
    assert least <= time.monotonic() - started < most
    assert [r.status for r in webhook_env.receipts] == [429, 200]


def test_backoff_grows_exponentially_up_to_its_cap() -> None:
    policy = RetryPolicy(initial_delay=0.5, multiplier=2.0, max_delay=3.0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_a_down_server_leaves_the_alert_pending_and_the_next_run_delivers_it_once(
    receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRUSTOPS_ALERT_WEBHOOK_URL", receiver.url)
    receiver.stop()  # the port is closed: connection refused
    config = {"console": {}, "webhook": {"retry": FAST_RETRY}}

    run1 = AlertManager.from_config(tmp_path, config)
    # deliver=True: try at once, as a one-off caller would.
    first = run1.raise_or_clear(make_alert().key, True, make_alert, deliver=True)
    second = run1.raise_or_clear(make_alert("loss").key, True, lambda: make_alert("loss"), deliver=True)

    assert first.exit_code == 1 and not first.ok
    assert first.pending == (first.raised[0].id,)
    assert re.fullmatch(
        r"webhook 'webhook' \(URL from \$TRUSTOPS_ALERT_WEBHOOK_URL\) gave up after 3 attempt\(s\) in \d+\.\d s: "
        r"ConnectionRefusedError: Connection refused",
        first.failed_channels["webhook"].removeprefix("DeliveryError: "),
    )
    assert "1 pending" in str(first) and "retried by the next flush()" in str(first)
    # The second alert in the same run does not pay the whole backoff again, and keeps its place in line.
    assert "not retried until flush()" in second.failed_channels["webhook"]
    assert second.pending == (first.raised[0].id, second.raised[0].id)
    assert "console" not in first.failed_channels  # the console still got both alerts
    # The run's flush tries again, for both alerts at once, and fails again.
    assert run1.flush().pending == (first.raised[0].id, second.raised[0].id)

    receiver.start()  # same port: the service is back
    run2 = AlertManager.from_config(tmp_path, config)
    delivered = run2.flush()
    assert delivered.ok and delivered.sent == (first.raised[0].id, second.raised[0].id)
    [body] = receiver.accepted()  # both alerts of the model in one message
    assert [a["id"] for a in body["alerts"]] == [first.raised[0].id, second.raised[0].id]
    # Nothing is sent twice: not by another flush, not by a third run.
    assert run2.flush().sent == ()
    assert AlertManager.from_config(tmp_path, config).flush().ok
    assert len(receiver.receipts) == 1


def test_flush_retries_a_channel_that_failed_earlier_in_the_run(
    webhook_env: WebhookReceiver, tmp_path: Path
) -> None:
    webhook_env.fail_next = [503] * 3
    manager = AlertManager.from_config(tmp_path, {"webhook": {"retry": FAST_RETRY}})
    assert manager.send(make_alert(), deliver=True).failed_channels
    assert manager.flush().ok
    assert len(webhook_env.accepted()) == 1


def test_the_url_never_leaks(
    receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, every level
    monkeypatch.setenv("TRUSTOPS_ALERT_WEBHOOK_URL", receiver.url)
    receiver.fail_next = [500, 404]
    manager = AlertManager(tmp_path, [ConsoleChannel(), WebhookChannel(retry=FAST_RETRY)])
    refused = manager.send(make_alert(), deliver=True)
    receiver.stop()
    down = manager.flush()
    with pytest.raises(DeliveryError) as raised:
        WebhookChannel(retry={**FAST_RETRY, "max_retries": 0}).deliver(make_alert())

    assert raised.value.__context__ is None and raised.value.__cause__ is None  # no chained error holding the URL
    seen = [
        caplog.text,
        *capsys.readouterr(),
        str(raised.value),
        repr(raised.value),
        "".join(traceback.format_exception(raised.value)),
        repr(manager),
        repr(manager.channels[1]),
        str(refused),
        repr(refused),
        str(down),
        *(path.read_text() for path in tmp_path.iterdir() if path.is_file()),
    ]
    assert "HTTP 404" in str(refused) and "Connection refused" in str(down)  # the failures were reported...
    for text in seen:
        for marker in SECRET_MARKERS:
            assert marker not in text  # ...without the URL's secret parts
    assert "url=<secret from $TRUSTOPS_ALERT_WEBHOOK_URL>" in repr(manager.channels[1])


def test_url_from_a_secret_file(receiver: WebhookReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRUSTOPS_ALERT_WEBHOOK_URL", raising=False)
    secret = tmp_path / "webhook-url"
    secret.write_text(receiver.url + "\n")
    WebhookChannel(url_file=secret, retry=FAST_RETRY).deliver(make_alert())
    monkeypatch.setenv("TRUSTOPS_ALERT_WEBHOOK_URL_FILE", str(secret))
    channel = WebhookChannel(retry=FAST_RETRY)
    channel.deliver(make_alert())
    assert len(receiver.accepted()) == 2
    assert f"url=<secret from file {secret}>" in repr(channel)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://files.example.com/services/T0SECRETTEAM/xoxSecretToken4242", "has scheme 'ftp'; it must start with http:// or https://"),
        ("file:///etc/T0SECRETTEAM", "has scheme 'file'"),
        ("hooks.slack.com/services/T0SECRETTEAM/B0SECRETHOOK", "does not start with a scheme"),
        ("xoxSecretToken4242:querySecret9191", "does not start with a scheme"),
        ("https:///services/T0SECRETTEAM", "is not a valid http(s) URL with a host"),
        ("https://hooks.slack.com/services/T0SECRETTEAM\nX-Injected: querySecret9191", "is not a valid http(s) URL"),
        ("https://hooks.slack.com/services/T0SECRETTEAM\x7fB0SECRETHOOK", "is not a valid http(s) URL"),
        ("   ", "needs its URL in $TRUSTOPS_ALERT_WEBHOOK_URL"),
    ],
)
def test_a_bad_url_is_a_config_error_that_does_not_repeat_it(monkeypatch: pytest.MonkeyPatch, url: str, message: str) -> None:
    monkeypatch.setenv("TRUSTOPS_ALERT_WEBHOOK_URL", url)
    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        WebhookChannel()
    assert "$TRUSTOPS_ALERT_WEBHOOK_URL" in str(raised.value)
    assert not any(marker in str(raised.value) for marker in SECRET_MARKERS)
    assert isinstance(raised.value, ValueError)


def test_missing_url_names_the_variable_and_the_file_convention(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TRUSTOPS_ALERT_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("TRUSTOPS_ALERT_WEBHOOK_URL_FILE", raising=False)
    with pytest.raises(ConfigError, match=re.escape("needs its URL in $TRUSTOPS_ALERT_WEBHOOK_URL (or a file named by $TRUSTOPS_ALERT_WEBHOOK_URL_FILE)")):
        WebhookChannel()
    with pytest.raises(ConfigError, match="Cannot read the alert webhook URL from file .*missing: FileNotFoundError"):
        WebhookChannel(url_file=tmp_path / "missing")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_retries": -1}, "`max_retries` must be an integer >= 0. Got: -1"),
        ({"max_retries": 2.5}, "`max_retries` must be an integer >= 0. Got: 2.5"),
        ({"initial_delay": -0.1}, "`initial_delay` must be a number of seconds >= 0. Got: -0.1"),
        ({"multiplier": 0.5}, "`multiplier` must be a number >= 1. Got: 0.5"),
        ({"max_total": 0}, "`max_total` must be a number of seconds > 0. Got: 0"),
        ({"timeout": -1}, "`timeout` must be a number of seconds > 0. Got: -1"),
    ],
)
def test_bad_retry_policies_are_config_errors(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        RetryPolicy(**options)
