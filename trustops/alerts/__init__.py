"""Alerts: deduplicated, durable, delivered to the console, a webhook and ZenML's alerter.

A monitoring step builds :class:`Alert` values and hands them to an :class:`AlertManager`,
which keeps one alert per ongoing condition (plus a ``recovered`` one when it clears),
writes each to a fsync'd outbox before delivering it, and retries what failed on the next
:meth:`AlertManager.flush`.
"""

from trustops.alerts.alert import Alert, AlertKind, Limits, Severity, condition_key, mlflow_run_url
from trustops.alerts.base import Channel
from trustops.alerts.channels import CHANNELS, ConsoleChannel, ZenMLAlerterChannel, build_channel
from trustops.alerts.errors import DeliveryError, InvalidAlertError
from trustops.alerts.manager import AlertManager, DeliverySummary
from trustops.alerts.outbox import Outbox, OutboxRecord
from trustops.alerts.webhook import RetryPolicy, WebhookChannel, slack_payload

__all__ = [
    "CHANNELS",
    "Alert",
    "AlertKind",
    "AlertManager",
    "Channel",
    "ConsoleChannel",
    "DeliveryError",
    "DeliverySummary",
    "InvalidAlertError",
    "Limits",
    "Outbox",
    "OutboxRecord",
    "RetryPolicy",
    "Severity",
    "WebhookChannel",
    "ZenMLAlerterChannel",
    "build_channel",
    "condition_key",
    "mlflow_run_url",
    "slack_payload",
]
