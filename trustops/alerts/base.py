"""The one interface every alert channel implements."""

from __future__ import annotations

import abc

from trustops.alerts.alert import Alert


class Channel(abc.ABC):
    """Somewhere an alert can be sent.

    ``deliver`` returns when the alert has been handed over and raises (preferably
    :class:`~trustops.alerts.errors.DeliveryError`) when it has not; the
    :class:`~trustops.alerts.AlertManager` keeps the alert pending for this channel
    until a later ``deliver`` succeeds.  ``name`` identifies the channel in the outbox,
    so it must be unique among a manager's channels and stable between runs.
    """

    name: str

    @abc.abstractmethod
    def deliver(self, alert: Alert) -> None:
        """Send ``alert``; raise if it was not sent."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
