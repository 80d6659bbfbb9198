"""The HTTP webhook channel: Slack-compatible JSON, retried with exponential backoff.

The URL is a secret (a Slack webhook URL *is* the credential), so it is read from an
environment variable or a file, held privately, and never appears in a log line, an
exception message or a ``repr``.  Requests go through :mod:`urllib.request` rather than
``requests`` because urllib3 logs every request path at DEBUG level, which would put the
secret in the logs of any run with debug logging on.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from trustops.alerts.alert import Alert, utc_isoformat
from trustops.alerts.base import Channel
from trustops.alerts.errors import DeliveryError
from trustops.errors import ConfigError

DEFAULT_URL_ENV = "TRUSTOPS_ALERT_WEBHOOK_URL"
# Transient answers worth another try; any other 4xx means the request itself is wrong.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before an alert is left pending for the next ``flush``.

    Attempt ``n`` (from 1) waits ``min(initial_delay * multiplier**(n-1), max_delay)``
    seconds before the next; no wait or request may end after ``max_total`` seconds.

    Attributes
    ----------
    max_retries
        Tries after the first one (``0``: a single attempt).
    initial_delay, multiplier, max_delay
        The backoff schedule, in seconds.
    max_total
        Bound on the whole delivery of one alert, waits included, in seconds.
    timeout
        Bound on one HTTP request, in seconds.
    """

    max_retries: int = 4
    initial_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 30.0
    max_total: float = 60.0
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigError(f"`max_retries` must be an integer >= 0. Got: {self.max_retries!r}")
        for name in ("initial_delay", "max_delay"):
            if not _is_number(getattr(self, name)) or getattr(self, name) < 0:
                raise ConfigError(f"`{name}` must be a number of seconds >= 0. Got: {getattr(self, name)!r}")
        if not _is_number(self.multiplier) or self.multiplier < 1:
            raise ConfigError(f"`multiplier` must be a number >= 1. Got: {self.multiplier!r}")
        for name in ("max_total", "timeout"):
            if not _is_number(getattr(self, name)) or getattr(self, name) <= 0:
                raise ConfigError(f"`{name}` must be a number of seconds > 0. Got: {getattr(self, name)!r}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (from 1)."""
        return min(self.initial_delay * self.multiplier ** (attempt - 1), self.max_delay)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def slack_payload(alert: Alert) -> dict[str, Any]:
    """The Slack incoming-webhook body for ``alert``: ``{"text": ..., "blocks": [...]}``.

    ``text`` is the one-line summary (what notifications show); the blocks lay out the
    same facts.  Slack's ``&``, ``<`` and ``>`` are escaped, so a rule such as
    ``mmd_p_value<alpha`` shows as written.
    """
    title = f"{_SEVERITY_ICON[alert.severity]} {alert.kind.replace('_', ' ')}: {alert.monitor}/{alert.metric}"
    facts = {
        "Value": _number(alert.value),
        "Rule": alert.rule,
        "Limits": f"[{_number(alert.limits.lower)}, {_number(alert.limits.upper)}]",
        "Severity": alert.severity.value,
        "Model": " v".join(part for part in (alert.model_name, alert.model_version) if part) or "-",
        "Time": utc_isoformat(alert.time),
    }
    if alert.mlflow_run_url:
        facts["MLflow run"] = f"<{alert.mlflow_run_url}|{_escape(alert.mlflow_run_id or 'run')}>"
    elif alert.mlflow_run_id:
        facts["MLflow run"] = _escape(alert.mlflow_run_id)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150], "emoji": True}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{name}*\n{value if name == 'MLflow run' else _escape(value)}"[:2000]}
                for name, value in facts.items()
            ],
        },
    ]
    if alert.message:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _escape(alert.message)[:3000]}})
    footer = f"alert id `{_escape(alert.id)}` · key `{_escape(alert.key)}`"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]})
    return {"text": _escape(alert.summary()), "blocks": blocks}


_SEVERITY_ICON = {"info": ":large_green_circle:", "warning": ":warning:", "critical": ":rotating_light:"}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirected POST would be replayed as a GET, and a redirect could carry the secret elsewhere.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class WebhookChannel(Channel):
    """POST each alert as Slack-compatible JSON to a webhook URL kept secret.

    Parameters
    ----------
    url_env
        Environment variable holding the URL.  When it is unset, ``<url_env>_FILE`` may name
        a file holding it (the Docker/Kubernetes secrets convention).
    url_file
        A file holding the URL; when given it wins over the environment.
    retry
        The retry schedule; a mapping is turned into a :class:`RetryPolicy`.
    name
        The channel's name in the outbox.

    Raises
    ------
    ConfigError
        When no URL is found, or it is not an ``http(s)://`` URL with a host.  The message
        names where the URL came from and never repeats it.
    """

    def __init__(
        self,
        *,
        url_env: str = DEFAULT_URL_ENV,
        url_file: str | os.PathLike[str] | None = None,
        retry: RetryPolicy | Mapping[str, Any] | None = None,
        name: str = "webhook",
    ) -> None:
        self.name = name
        self.retry = _as_retry_policy(retry)
        self._source, self._url = _read_url(url_env, url_file)
        self._redactions = _secret_parts(self._url)
        self._opener = urllib.request.build_opener(_NoRedirects)

    def __repr__(self) -> str:
        return f"WebhookChannel(name={self.name!r}, url=<secret from {self._source}>, retry={self.retry!r})"

    def deliver(self, alert: Alert) -> None:
        """POST ``alert``, retrying transient failures; raises :class:`DeliveryError` when out of tries."""
        body = json.dumps(slack_payload(alert), allow_nan=False).encode("utf-8")
        policy = self.retry
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            remaining = policy.max_total - (time.monotonic() - started)
            retryable, reason, retry_after = self._post(body, timeout=max(min(policy.timeout, remaining), 0.001))
            if reason is None:
                return
            elapsed = time.monotonic() - started
            wait = max(policy.delay(attempt), min(retry_after or 0.0, policy.max_delay))
            if not retryable or attempt > policy.max_retries or elapsed + wait >= policy.max_total:
                verdict = "refused" if not retryable else "gave up"
                raise DeliveryError(
                    f"webhook {self.name!r} (URL from {self._source}) {verdict} after {attempt} attempt(s) "
                    f"in {elapsed:.1f} s: {reason}"
                )
            logger.info("webhook %r attempt %d failed (%s); retrying in %.2f s", self.name, attempt, reason, wait)
            time.sleep(wait)

    def _post(self, body: bytes, *, timeout: float) -> tuple[bool, str | None, float | None]:
        """One POST: ``(retryable, failure reason or None on success, Retry-After seconds)``."""
        headers = {"Content-Type": "application/json"}
        request = urllib.request.Request(self._url, data=body, method="POST", headers=headers)
        try:
            with self._opener.open(request, timeout=timeout) as response:
                response.read()
            return False, None, None
        except urllib.error.HTTPError as error:
            error.close()
            status = error.code
            retry_after = _retry_after(error.headers.get("Retry-After") if error.headers else None)
            return status in RETRY_STATUSES, self._redact(f"HTTP {status} {error.reason}"), retry_after
        except urllib.error.URLError as error:
            return True, self._redact(_describe(error.reason)), None
        except (OSError, http.client.HTTPException) as error:  # timeouts, resets, bad status lines
            return True, self._redact(_describe(error)), None
        except ValueError as error:  # http.client's URL checks quote the URL: never pass their text on
            return False, f"the URL was rejected ({type(error).__name__})", None

    def _redact(self, text: str) -> str:
        # Exception texts are built from class names and OS messages, but a proxy or TLS library
        # may echo the address; scrub every secret part in case one does.
        for part in self._redactions:
            text = text.replace(part, "<redacted>")
        return text


def _describe(error: object) -> str:
    if isinstance(error, OSError) and error.strerror:
        return f"{type(error).__name__}: {error.strerror}"
    if isinstance(error, BaseException):
        return type(error).__name__
    return str(error)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:  # an HTTP date; the backoff schedule is good enough then
        return None


def _as_retry_policy(retry: RetryPolicy | Mapping[str, Any] | None) -> RetryPolicy:
    if retry is None:
        return RetryPolicy()
    if isinstance(retry, RetryPolicy):
        return retry
    if isinstance(retry, Mapping):  # a dict, or an OmegaConf DictConfig from a Hydra config
        unknown = set(retry) - set(RetryPolicy.__dataclass_fields__)
        if unknown:
            allowed = sorted(RetryPolicy.__dataclass_fields__)
            raise ConfigError(f"Unknown retry option(s) {sorted(unknown)}; allowed: {allowed}")
        return RetryPolicy(**retry)
    raise ConfigError(f"`retry` must be a RetryPolicy or a mapping of its options. Got: {type(retry).__name__}")


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,15})://")


def _read_url(url_env: str, url_file: str | os.PathLike[str] | None) -> tuple[str, str]:
    """``(where it came from, URL)``; the first part is safe to show, the second is not."""
    if url_file is None and not os.environ.get(url_env) and os.environ.get(f"{url_env}_FILE"):
        url_file = os.environ[f"{url_env}_FILE"]
    if url_file is not None:
        source = f"file {os.fspath(url_file)}"
        try:
            url = Path(url_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"Cannot read the alert webhook URL from {source}: {type(error).__name__}") from None
    else:
        source = f"${url_env}"
        url = os.environ.get(url_env, "").strip()
        if not url:
            raise ConfigError(
                f"The webhook alert channel needs its URL in ${url_env} (or a file named by ${url_env}_FILE); "
                "it is not set. Set it, or leave 'webhook' out of the alert channels."
            )
    if not url:
        raise ConfigError(f"The alert webhook URL from {source} is empty.")
    scheme = _SCHEME.match(url)
    if scheme is None or scheme.group(1).lower() not in ("http", "https"):
        shown = f"has scheme {scheme.group(1)!r}" if scheme else "does not start with a scheme"
        raise ConfigError(f"The alert webhook URL from {source} {shown}; it must start with http:// or https://.")
    try:
        host = urlsplit(url).hostname
    except ValueError:
        host = None
    if not host or any(ord(c) <= 32 or ord(c) == 127 for c in url):
        raise ConfigError(f"The alert webhook URL from {source} is not a valid http(s) URL with a host.")
    return source, url


def _secret_parts(url: str) -> tuple[str, ...]:
    parts = urlsplit(url)
    candidates = [url, parts.path, parts.query, parts.netloc]
    candidates += [segment for segment in parts.path.split("/") if len(segment) >= 6]
    # Longest first, so a part is never half-replaced by a shorter one inside it.
    return tuple(sorted({c for c in candidates if c and c != "/"}, key=len, reverse=True))
