"""Alerts: deduplicated, durable, delivered to the console, a webhook and ZenML's alerter.

A monitoring step builds :class:`Alert` values and hands them to an :class:`AlertManager`,
which keeps one alert per ongoing condition (plus a ``recovered`` one when it clears) and
writes each to a fsync'd outbox.  :meth:`AlertManager.flush` then delivers what is pending:
each channel receives one :class:`Digest` per model, listing that model's alerts most
severe first, headed by the most severe alert's headline.  What failed stays pending and is
retried by the next flush.
"""

from trustops.alerts.alert import (
    DEFAULT_UI_URL,
    UI_URL_ENV,
    Alert,
    AlertKind,
    Limits,
    Severity,
    condition_key,
    mlflow_run_url,
)
from trustops.alerts.base import Channel
from trustops.alerts.channels import CHANNELS, ConsoleChannel, ZenMLAlerterChannel, build_channel
from trustops.alerts.digest import Digest, digests
from trustops.alerts.errors import DamagedAlertFile, DeliveryError, InvalidAlertError
from trustops.alerts.manager import AlertManager, DeliverySummary, change_id
from trustops.alerts.outbox import Outbox, OutboxRecord
from trustops.alerts.webhook import (
    FORMAT_ENV,
    RetryPolicy,
    WebhookChannel,
    json_payload,
    slack_payload,
    webhook_format,
)

__all__ = [
    "CHANNELS",
    "DEFAULT_UI_URL",
    "FORMAT_ENV",
    "UI_URL_ENV",
    "Alert",
    "AlertKind",
    "AlertManager",
    "Channel",
    "ConsoleChannel",
    "DamagedAlertFile",
    "DeliveryError",
    "DeliverySummary",
    "Digest",
    "InvalidAlertError",
    "Limits",
    "Outbox",
    "OutboxRecord",
    "RetryPolicy",
    "Severity",
    "WebhookChannel",
    "ZenMLAlerterChannel",
    "build_channel",
    "change_id",
    "condition_key",
    "digests",
    "json_payload",
    "mlflow_run_url",
    "slack_payload",
    "webhook_format",
]
