"""The HTTP webhook channel: one JSON POST per model per delivery, retried with exponential backoff.

Two payload formats, each escaped for the receiver that reads it
(``TRUSTOPS_ALERT_WEBHOOK_FORMAT``, or the channel's ``format`` option, which wins):

``slack``
    Slack's incoming-webhook body (:func:`slack_payload`): ``text`` and ``blocks`` in mrkdwn,
    with ``&``, ``<`` and ``>`` escaped as Slack requires and the link as ``<url|text>``.
    The default when the URL's host is ``hooks.slack.com``.
``json``
    A plain JSON object (:func:`json_payload`): the raw text and every alert's dict, no
    HTML escaping.  The default for any other host.

The URL is a secret (a Slack webhook URL *is* the credential), so it is read from an
environment variable or a file, held privately, and never appears in a log line, an
exception message or a ``repr``.  Requests go through :mod:`urllib.request` rather than
``requests`` because urllib3 logs every request path at DEBUG level, which would put the
secret in the logs of any run with debug logging on.  The retries are tenacity's:
``urllib3.util.Retry`` drives only urllib3's own requests and has no bound on the total time;
urllib3 only parses the ``Retry-After`` header here.
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

import tenacity
from urllib3.exceptions import InvalidHeader
from urllib3.util import Retry

from trustops.alerts.alert import Alert
from trustops.alerts.base import Channel
from trustops.alerts.digest import Digest
from trustops.alerts.errors import DeliveryError
from trustops.errors import ConfigError

DEFAULT_URL_ENV = "TRUSTOPS_ALERT_WEBHOOK_URL"
FORMAT_ENV = "TRUSTOPS_ALERT_WEBHOOK_FORMAT"
FORMATS = ("slack", "json")
SLACK_HOST = "hooks.slack.com"
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


def slack_payload(alerts: Digest | Alert) -> dict[str, Any]:
    """The Slack incoming-webhook body for a digest (or one alert): ``{"text": ..., "blocks": [...]}``.

    ``text`` (what notifications show) is ``[SEVERITY] <first line>``.  The blocks: the first
    line; one line per further condition; the MLflow link as ``<url|Open the MLflow run>``;
    then one context block of details per alert (rule, limits, p-values, alert id...), each
    value in a code span.
    Every text is escaped for mrkdwn (``&``, ``<``, ``>``), so ``p<alpha`` shows as written;
    Slack's size limits (50 blocks, 3000 characters a text) are kept by cutting the lists.
    """
    digest = _as_digest(alerts)
    first = f"[{digest.severity.upper()}] {digest.first_line}"
    blocks: list[dict[str, Any]] = [_mrkdwn_section(f"{_SEVERITY_ICON[digest.severity]} {_escape(digest.first_line)}")]
    if digest.rest:
        lines = [f"{_SEVERITY_ICON[a.severity]} {_escape(a.title)}" for a in digest.rest]
        blocks.append(_mrkdwn_section(_fit_lines(lines, _SLACK_TEXT_LIMIT)))
    if digest.link:
        url = _escape(digest.link).replace("|", "%7C")
        blocks.append(_mrkdwn_section(f"<{url}|Open the MLflow run>"))
    room = _SLACK_MAX_BLOCKS - len(blocks) - 1
    for alert in digest.alerts[:room]:
        text = " · ".join(f"*{_escape(name)}* {_code(value)}" for name, value in alert.detail_items().items())
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(text, _SLACK_TEXT_LIMIT)}]})
    if len(digest.alerts) > room:
        left = len(digest.alerts) - room
        note = f"…and the details of {left} more alert{'s' if left > 1 else ''}, kept in the outbox"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
    return {"text": _cut(_escape(first), _SLACK_TEXT_LIMIT), "blocks": blocks}


def json_payload(alerts: Digest | Alert) -> dict[str, Any]:
    """The plain JSON body for a digest (or one alert); texts are raw, nothing HTML-escaped.

    Keys: ``text`` (``[SEVERITY] <first line>``), ``body`` (the whole digest as plain text,
    see :meth:`Digest.text`), ``severity`` (the most severe), ``model_name``,
    ``model_version`` (of the most severe alert), ``mlflow_run_url`` (or ``null``) and
    ``alerts`` (each :meth:`Alert.to_dict`, most severe first: ``Alert.from_dict`` reads them back).
    """
    digest = _as_digest(alerts)
    return {
        "text": f"[{digest.severity.upper()}] {digest.first_line}",
        "body": digest.text(),
        "severity": digest.severity.value,
        "model_name": digest.model_name,
        "model_version": digest.lead.model_version,
        "mlflow_run_url": digest.link,
        "alerts": [alert.to_dict() for alert in digest.alerts],
    }


PAYLOADS = {"slack": slack_payload, "json": json_payload}
_SEVERITY_ICON = {"info": ":large_green_circle:", "warning": ":warning:", "critical": ":rotating_light:"}
_SLACK_TEXT_LIMIT = 3000
_SLACK_MAX_BLOCKS = 50


def _as_digest(alerts: Digest | Alert) -> Digest:
    return alerts if isinstance(alerts, Digest) else Digest.of([alerts])


def _mrkdwn_section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, _SLACK_TEXT_LIMIT)}}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str) -> str:
    # A code span keeps mrkdwn from reading the underscores of `western_electric_1` as italics.
    return f"`{_escape(text)}`" if "`" not in text else _escape(text)


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&")  # never leave half an escape such as "&gt"
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def _fit_lines(lines: list[str], limit: int) -> str:
    """As many whole lines as fit in ``limit`` characters, then a line saying how many were left out."""
    kept: list[str] = []
    for index, line in enumerate(lines):
        note = f"…and {len(lines) - index} more"
        if len("\n".join([*kept, line])) + (len(note) + 1 if index < len(lines) - 1 else 0) > limit:
            return "\n".join([*kept, note]) if kept else _cut(line, limit)
        kept.append(line)
    return "\n".join(kept)


def webhook_format(url: str, format: str | None = None) -> str:
    """The payload format for ``url``: ``format``, else ``$TRUSTOPS_ALERT_WEBHOOK_FORMAT``, else by host.

    By host: ``slack`` for ``hooks.slack.com``, ``json`` for any other.

    Raises
    ------
    ConfigError
        For a format other than ``slack`` or ``json`` (the message names where it came from).
    """
    source = "the `format` option"
    if format is None:
        format = os.environ.get(FORMAT_ENV, "").strip() or None
        source = f"${FORMAT_ENV}"
    if format is None:
        try:
            host = (urlsplit(url).hostname or "").lower()
        except ValueError:
            host = ""
        return "slack" if host == SLACK_HOST else "json"
    chosen = str(format).strip().lower()
    if chosen not in FORMATS:
        raise ConfigError(f"The alert webhook format from {source} must be one of {', '.join(FORMATS)}. Got: {format!r}")
    return chosen


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirected POST would be replayed as a GET, and a redirect could carry the secret elsewhere.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class WebhookChannel(Channel):
    """POST one JSON message per digest (one per model per delivery) to a webhook URL kept secret.

    Parameters
    ----------
    url_env
        Environment variable holding the URL.  When it is unset, ``<url_env>_FILE`` may name
        a file holding it (the Docker/Kubernetes secrets convention).
    url_file
        A file holding the URL; when given it wins over the environment.
    retry
        The retry schedule; a mapping is turned into a :class:`RetryPolicy`.
    format
        ``"slack"`` or ``"json"``; ``None`` reads ``$TRUSTOPS_ALERT_WEBHOOK_FORMAT``, else
        chooses by host (see :func:`webhook_format`).
    name
        The channel's name in the outbox.

    Raises
    ------
    ConfigError
        When no URL is found, or it is not an ``http(s)://`` URL with a host, or the format is
        unknown.  The message names where the URL came from and never repeats it.
    """

    def __init__(
        self,
        *,
        url_env: str = DEFAULT_URL_ENV,
        url_file: str | os.PathLike[str] | None = None,
        retry: RetryPolicy | Mapping[str, Any] | None = None,
        format: str | None = None,
        name: str = "webhook",
    ) -> None:
        self.name = name
        self.retry = _as_retry_policy(retry)
        self._source, self._url = _read_url(url_env, url_file)
        self._redactions = _secret_parts(self._url)
        self._opener = urllib.request.build_opener(_NoRedirects)
        self.format = webhook_format(self._url, format)

    def __repr__(self) -> str:
        return (
            f"WebhookChannel(name={self.name!r}, url=<secret from {self._source}>, format={self.format!r}, "
            f"retry={self.retry!r})"
        )

    def payload(self, alerts: Digest | Alert) -> dict[str, Any]:
        """The body this channel POSTs for ``alerts``, in its :attr:`format`."""
        return PAYLOADS[self.format](alerts)

    def deliver(self, alert: Alert) -> None:
        """POST ``alert`` alone, as a digest of one; see :meth:`deliver_digest`."""
        self.deliver_digest(Digest.of([alert]))

    def deliver_digest(self, digest: Digest) -> None:
        """POST ``digest`` as one message, retrying transient failures; raises :class:`DeliveryError` when out of tries."""
        body = json.dumps(self.payload(digest), allow_nan=False).encode("utf-8")
        policy = self.retry
        retrying = self._retrying()
        started = time.monotonic()

        def attempt() -> None:  # no request may outlast the whole delivery's budget
            remaining = policy.max_total - (time.monotonic() - started)
            self._post(body, timeout=max(min(policy.timeout, remaining), 0.001))

        try:
            retrying(attempt)
            return
        except _PostFailed as failed:
            failure = failed
        # Raised outside the except block: no chained exception may carry the URL (an HTTPError holds it).
        verdict = "gave up" if failure.retryable else "refused"
        raise DeliveryError(
            f"webhook {self.name!r} (URL from {self._source}) {verdict} after "
            f"{retrying.statistics['attempt_number']} attempt(s) in {time.monotonic() - started:.1f} s: {failure.reason}"
        )

    def _retrying(self) -> tenacity.Retrying:
        """The retry loop of one delivery, as :attr:`retry` describes it; the last failure is raised as it is.

        It retries a retryable :class:`_PostFailed`, waiting :meth:`RetryPolicy.delay` or the
        server's ``Retry-After`` (capped at ``max_delay``), whichever is longer; it stops after
        ``max_retries`` retries, or before a wait that would end past ``max_total``.
        """
        policy = self.retry

        def wait(state: tenacity.RetryCallState) -> float:
            retry_after = _failure(state).retry_after or 0.0
            return max(policy.delay(state.attempt_number), min(retry_after, policy.max_delay))

        def log(state: tenacity.RetryCallState) -> None:
            logger.info("webhook %r attempt %d failed (%s); retrying in %.2f s", self.name, state.attempt_number,
                        _failure(state).reason, state.upcoming_sleep)

        return tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda error: isinstance(error, _PostFailed) and error.retryable),
            wait=wait,
            stop=tenacity.stop_after_attempt(policy.max_retries + 1) | tenacity.stop_before_delay(policy.max_total),
            before_sleep=log,
            reraise=True,
        )

    def _post(self, body: bytes, *, timeout: float) -> None:
        """One POST; raises :class:`_PostFailed` (with a redacted reason) when it is not accepted."""
        headers = {"Content-Type": "application/json"}
        request = urllib.request.Request(self._url, data=body, method="POST", headers=headers)
        try:
            with self._opener.open(request, timeout=timeout) as response:
                response.read()
        except urllib.error.HTTPError as error:
            error.close()
            status = error.code
            retry_after = _retry_after(error.headers.get("Retry-After") if error.headers else None)
            raise _PostFailed(self._redact(f"HTTP {status} {error.reason}"), status in RETRY_STATUSES, retry_after) from None
        except urllib.error.URLError as error:
            raise _PostFailed(self._redact(_describe(error.reason)), True) from None
        except (OSError, http.client.HTTPException) as error:  # timeouts, resets, bad status lines
            raise _PostFailed(self._redact(_describe(error)), True) from None
        except ValueError as error:  # http.client's URL checks quote the URL: never pass their text on
            raise _PostFailed(f"the URL was rejected ({type(error).__name__})", False) from None

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


class _PostFailed(Exception):
    """One POST that was not accepted: the redacted ``reason``, whether to try again, the ``Retry-After`` seconds."""

    def __init__(self, reason: str, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.retryable, self.retry_after = reason, retryable, retry_after


def _failure(state: tenacity.RetryCallState) -> _PostFailed:
    # wait and before_sleep run only after a retryable failure
    return state.outcome.exception()  # type: ignore[union-attr, return-value]


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delay-seconds or an HTTP date); ``None`` when absent or unreadable."""
    if value is None:
        return None
    try:
        return Retry().parse_retry_after(value)
    except InvalidHeader:  # the backoff schedule is good enough then
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
