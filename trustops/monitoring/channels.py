"""Where a monitor run's alerts go, besides the durable outbox."""

from __future__ import annotations

import os

WEBHOOK_ENV = "TRUSTOPS_ALERT_WEBHOOK_URL"


def alert_channels(*, zenml_stack: bool = False) -> list[str]:
    """The console always; the webhook when its URL is configured (by variable or secret file);
    ZenML's alerter when running on a stack that has one (``zenml_stack``: inside a pipeline step)."""
    channels = ["console"]
    if os.environ.get(WEBHOOK_ENV) or os.environ.get(f"{WEBHOOK_ENV}_FILE"):
        channels.append("webhook")
    if zenml_stack:
        from zenml.client import Client

        if Client().active_stack.alerter is not None:
            channels.append("zenml")
    return channels
