"""The one interface every alert channel implements."""

from __future__ import annotations

import abc

from trustops.alerts.alert import Alert
from trustops.alerts.digest import Digest


class Channel(abc.ABC):
    """Somewhere alerts can be sent.

    :class:`~trustops.alerts.AlertManager` hands a channel one :class:`~trustops.alerts.Digest`
    per model per delivery through :meth:`deliver_digest`.  It returns when the whole digest
    has been handed over and raises (preferably :class:`~trustops.alerts.errors.DeliveryError`)
    when it has not; every alert of the digest then stays pending for this channel until a
    later delivery succeeds.  ``name`` identifies the channel in the outbox, so it must be
    unique among a manager's channels and stable between runs.

    A channel that can only send alerts one by one implements :meth:`deliver` alone: the
    default :meth:`deliver_digest` sends the digest's alerts in turn (most severe first); if one
    fails, all are retried later, so those already sent arrive again (delivery is at-least-once).
    """

    name: str

    @abc.abstractmethod
    def deliver(self, alert: Alert) -> None:
        """Send ``alert``; raise if it was not sent."""

    def deliver_digest(self, digest: Digest) -> None:
        """Send every alert of ``digest`` as one message where the channel can; raise if it was not sent."""
        for alert in digest.alerts:
            self.deliver(alert)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
