"""Errors raised by the alerts package; they subclass the trustops hierarchy and the matching built-in.

A bad *configuration* (unknown channel, a webhook URL that is not http(s), a negative retry
count) raises :class:`trustops.errors.ConfigError`; the classes here cover the rest.
"""

from trustops.errors import DataError, ServiceError, TrustopsError


class InvalidAlertError(TrustopsError, ValueError):
    """An :class:`~trustops.alerts.Alert` was built or parsed with an invalid field."""


class DeliveryError(ServiceError):
    """A channel could not deliver an alert.  The message never contains a webhook URL."""


class DamagedAlertFile(DataError):
    """A line of the outbox or the delivery log is unreadable where no crash could have torn it; nothing was changed."""
