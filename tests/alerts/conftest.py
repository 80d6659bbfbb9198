"""Fixtures for the alert tests: a real HTTP webhook receiver on 127.0.0.1 and alert builders."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from trustops.alerts import Alert, Limits

# The parts of the webhook URL that must never show up anywhere but in the HTTP request itself.
SECRET_PATH = "/services/T0SECRETTEAM/B0SECRETHOOK/xoxSecretToken4242"
SECRET_QUERY = "auth=querySecret9191"
SECRET_MARKERS = ("T0SECRETTEAM", "B0SECRETHOOK", "xoxSecretToken4242", "querySecret9191")


@dataclass(frozen=True)
class Receipt:
    path: str
    status: int
    body: dict


class WebhookReceiver:
    """A Slack-like incoming webhook: answers 200 "ok" unless told to fail the next requests.

    ``stop()`` closes the port (a real "connection refused"); ``start()`` binds the same port again.
    """

    def __init__(self) -> None:
        self.receipts: list[Receipt] = []
        self.fail_next: list[int] = []  # statuses to answer, in order, before answering 200 again
        self.answer_after = 0.0  # seconds to stall before answering, to provoke client timeouts
        self.retry_after: str | None = None  # a Retry-After header for the failed answers
        self.port = 0
        self._server: http.server.HTTPServer | None = None
        self._lock = threading.Lock()

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(receiver.answer_after)
                with receiver._lock:
                    status = receiver.fail_next.pop(0) if receiver.fail_next else 200
                    receiver.receipts.append(Receipt(self.path, status, body))
                self.send_response(status)
                if status != 200 and receiver.retry_after is not None:
                    self.send_header("Retry-After", receiver.retry_after)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"error")

            def log_message(self, format: str, *args: object) -> None:  # quiet, and it would print the path
                pass

        self._server = http.server.HTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{SECRET_PATH}?{SECRET_QUERY}"

    def accepted(self) -> list[dict]:
        """Bodies of the requests answered with 200, in arrival order."""
        return [r.body for r in self.receipts if r.status == 200]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def webhook_env(receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> WebhookReceiver:
    """The receiver, with its (secret) URL in $TRUSTOPS_ALERT_WEBHOOK_URL."""
    monkeypatch.setenv("TRUSTOPS_ALERT_WEBHOOK_URL", receiver.url)
    return receiver


FAST_RETRY = {"max_retries": 2, "initial_delay": 0.01, "multiplier": 2.0, "max_total": 2.0, "timeout": 2.0}


def make_alert(metric: str = "accuracy", **overrides: object) -> Alert:
    fields = dict(
        monitor="control_charts",
        metric=metric,
        rule="3-sigma",
        value=0.71,
        limits=Limits(lower=0.8, upper=None),
        severity="critical",
        model_name="resnet18",
        model_version="3",
        mlflow_run_id="0a1b2c",
    )
    fields.update(overrides)
    return Alert(**fields)
