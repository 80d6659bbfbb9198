"""The console and ZenML channels, and the names every channel is configured by.

Each receives one message per model per :meth:`~trustops.alerts.AlertManager.flush` (a
:class:`~trustops.alerts.Digest`):

``console``  one readable block per digest through :mod:`logging`;
``webhook``  JSON over HTTP, Slack's format or plain (:class:`~trustops.alerts.webhook.WebhookChannel`);
``zenml``    the active ZenML stack's alerter, when the stack has one: one post per digest.

The outbox is not in this list: :class:`~trustops.alerts.AlertManager` always writes it.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from trustops.alerts.alert import Alert, Severity
from trustops.alerts.base import Channel
from trustops.alerts.digest import Digest
from trustops.alerts.errors import DeliveryError
from trustops.alerts.webhook import DEFAULT_URL_ENV, WebhookChannel
from trustops.errors import ConfigError

logger = logging.getLogger(__name__)

ALERT_LOGGER = "trustops.alerts"
_LOG_LEVELS = {Severity.INFO: logging.INFO, Severity.WARNING: logging.WARNING, Severity.CRITICAL: logging.CRITICAL}


class ConsoleChannel(Channel):
    """Log one readable block per digest, at the logging level named like its most severe alert.

    The block (:meth:`Digest.text <trustops.alerts.Digest.text>`)::

        ALERT [CRITICAL] <most severe alert's title> (and 2 more conditions)
          - [WARNING] <the next condition's title>
          - [INFO] <...>
          MLflow run: <link>
          Details:
            condition=...; rule=...; limits=...; ...; alert_id=...

    Parameters
    ----------
    logger_name
        The logger to write to; handlers and format are the application's business.
    """

    def __init__(self, *, logger_name: str = ALERT_LOGGER, name: str = "console") -> None:
        self.name = name
        self.logger = logging.getLogger(logger_name)

    def deliver(self, alert: Alert) -> None:
        self.deliver_digest(Digest.of([alert]))

    def deliver_digest(self, digest: Digest) -> None:
        self.logger.log(_LOG_LEVELS[digest.severity], "ALERT %s", digest.text())


def active_stack_alerter() -> Any | None:
    """The alerter of the active ZenML stack, or ``None`` when the stack has none."""
    try:
        from zenml.client import Client
    except ImportError as error:
        raise DeliveryError(f"The 'zenml' alert channel needs ZenML: pip install 'zenml[local]' ({error})") from None
    return Client().active_stack.alerter


class ZenMLAlerterChannel(Channel):
    """Post each digest, as plain text, through the active ZenML stack's alerter: one post per model.

    The text is :meth:`Digest.text <trustops.alerts.Digest.text>`; escaping it for the chat
    service is the alerter's business (ZenML's Slack and Discord alerters do their own).

    A stack without an alerter is not an error: the alert is skipped for this channel
    (it still reaches the outbox and the other channels).  ZenML is imported only when an
    alert is delivered, so configuring this channel costs nothing at start-up.

    Parameters
    ----------
    alerter_provider
        Returns the alerter to post to, or ``None``; defaults to :func:`active_stack_alerter`.
    """

    def __init__(self, *, alerter_provider: Callable[[], Any | None] | None = None, name: str = "zenml") -> None:
        self.name = name
        self._alerter_provider = alerter_provider or active_stack_alerter

    def deliver(self, alert: Alert) -> None:
        self.deliver_digest(Digest.of([alert]))

    def deliver_digest(self, digest: Digest) -> None:
        try:
            alerter = self._alerter_provider()
        except DeliveryError:
            raise
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            raise DeliveryError(f"Could not read the active ZenML stack's alerter: {reason}") from None
        if alerter is None:
            logger.debug("The active ZenML stack has no alerter; alerts %s are not posted there.", ", ".join(digest.ids))
            return
        alerter_name = getattr(alerter, "name", type(alerter).__name__)
        try:
            posted = alerter.post(digest.text())
        except Exception as error:
            raise DeliveryError(f"ZenML alerter {alerter_name!r} failed: {type(error).__name__}: {error}") from None
        if posted is False:  # BaseAlerter.post returns False when the chat service refused
            raise DeliveryError(f"ZenML alerter {alerter_name!r} reported that the post did not go through.")


CHANNELS: dict[str, type[Channel]] = {
    "console": ConsoleChannel,
    "webhook": WebhookChannel,
    "zenml": ZenMLAlerterChannel,
}


def build_channel(name: str, options: Mapping[str, Any] | None = None) -> Channel:
    """The channel registered as ``name``, built with ``options`` (its keyword arguments).

    Raises
    ------
    ConfigError
        For an unknown channel name or option, listing what is allowed.
    """
    if name not in CHANNELS:
        raise ConfigError(f"Unknown alert channel {name!r}; known channels: {', '.join(sorted(CHANNELS))}.")
    cls = CHANNELS[name]
    options = dict(options or {})
    allowed = [p for p in inspect.signature(cls).parameters if p != "name"]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(f"Unknown option(s) {unknown} for alert channel {name!r}; allowed: {allowed}.")
    return cls(**options, name=name)


def alert_channels(*, zenml_stack: bool = False) -> list[str]:
    """The channels a monitor pass sends to, besides the durable outbox: the console always; the
    webhook when its URL is configured (by variable or secret file); ZenML's alerter when running
    on a stack that has one (``zenml_stack``: inside a pipeline step)."""
    channels = ["console"]
    if os.environ.get(DEFAULT_URL_ENV) or os.environ.get(f"{DEFAULT_URL_ENV}_FILE"):
        channels.append("webhook")
    if zenml_stack:
        from zenml.client import Client

        if Client().active_stack.alerter is not None:
            channels.append("zenml")
    return channels
