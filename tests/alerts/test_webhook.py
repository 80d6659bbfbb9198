"""The webhook channel against a real HTTP server on 127.0.0.1: payload, retries, outages, secrecy."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pytest

from trustops.alerts import AlertManager, ConsoleChannel, DeliveryError, RetryPolicy, WebhookChannel, slack_payload
from trustops.errors import ConfigError

from .conftest import FAST_RETRY, SECRET_MARKERS, SECRET_PATH, WebhookReceiver, make_alert


def test_slack_payload_shape() -> None:
    alert = make_alert(rule="mmd_p_value<alpha", mlflow_run_url="http://mlflow:5000/#/experiments/1/runs/0a1b2c", message="a & b")
    payload = slack_payload(alert)

    assert set(payload) == {"text", "blocks"}
    assert payload["text"].startswith("[CRITICAL] out of control: control_charts/accuracy = 0.71; rule mmd_p_value&lt;alpha")
    header, facts, message, context = payload["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": ":rotating_light: out of control: control_charts/accuracy", "emoji": True}}
    assert facts["type"] == "section" and all(f["type"] == "mrkdwn" for f in facts["fields"])
    shown = {f["text"].split("\n", 1)[0]: f["text"].split("\n", 1)[1] for f in facts["fields"]}
    assert shown["*Rule*"] == "mmd_p_value&lt;alpha" and shown["*Value*"] == "0.71" and shown["*Limits*"] == "[0.8, -]"
    assert shown["*Model*"] == "resnet18 v3"
    assert shown["*MLflow run*"] == "<http://mlflow:5000/#/experiments/1/runs/0a1b2c|0a1b2c>"
    assert len(facts["fields"]) <= 10  # Slack's limit for a section
    assert message == {"type": "section", "text": {"type": "mrkdwn", "text": "a &amp; b"}}
    assert context["type"] == "context" and alert.id in context["elements"][0]["text"]


def test_delivers_the_payload_to_the_server(webhook_env: WebhookReceiver) -> None:
    alert = make_alert()
    WebhookChannel(retry=FAST_RETRY).deliver(alert)
    assert webhook_env.accepted() == [slack_payload(alert)]
    assert webhook_env.receipts[0].path == f"{SECRET_PATH}?auth=querySecret9191"


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
    first = run1.raise_or_clear(make_alert().key, True, make_alert)
    second = run1.raise_or_clear(make_alert("loss").key, True, lambda: make_alert("loss"))

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

    receiver.start()  # same port: the service is back
    run2 = AlertManager.from_config(tmp_path, config)
    delivered = run2.flush()
    assert delivered.ok and delivered.sent == (first.raised[0].id, second.raised[0].id)
    assert [body["blocks"][-1]["elements"][0]["text"] for body in receiver.accepted()] == [
        slack_payload(a)["blocks"][-1]["elements"][0]["text"] for a in (*first.raised, *second.raised)
    ]
    # Nothing is sent twice: not by another flush, not by a third run.
    assert run2.flush().sent == ()
    assert AlertManager.from_config(tmp_path, config).flush().ok
    assert len(receiver.receipts) == 2


def test_flush_retries_a_channel_that_failed_earlier_in_the_run(
    webhook_env: WebhookReceiver, tmp_path: Path
) -> None:
    webhook_env.fail_next = [503] * 3
    manager = AlertManager.from_config(tmp_path, {"webhook": {"retry": FAST_RETRY}})
    assert manager.send(make_alert()).failed_channels
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
    refused = manager.send(make_alert())
    receiver.stop()
    down = manager.flush()
    with pytest.raises(DeliveryError) as raised:
        WebhookChannel(retry={**FAST_RETRY, "max_retries": 0}).deliver(make_alert())

    seen = [
        caplog.text,
        *capsys.readouterr(),
        str(raised.value),
        repr(raised.value),
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
