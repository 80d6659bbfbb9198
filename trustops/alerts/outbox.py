"""The durable outbox: every alert is written here (fsync'd) before any channel sees it.

Two append-only JSON-lines files in one folder:

``outbox.jsonl``
    ``{"v": 1, "alert": {...Alert.to_dict()...}, "channels": ["console", "webhook"]}``,
    one line per alert in the order alerts were made; ``channels`` are the channels the
    alert is owed to.
``delivered.jsonl``
    ``{"v": 1, "id": "<alert id>", "channel": "webhook", "at": "<UTC ISO-8601>"}``,
    one line per successful delivery of one alert to one channel.

An alert is *pending* for a channel while no delivered line names both.  Appending a
delivered line, rather than rewriting the outbox, keeps every step crash-safe;
:meth:`Outbox.compact` drops fully delivered alerts with atomic rewrites.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

from trustops.alerts._files import append_json_lines, atomic_write_text, json_lines, read_json_lines
from trustops.alerts.alert import Alert, utc_isoformat
from trustops.alerts.base import Channel
from trustops.alerts.errors import InvalidAlertError

OUTBOX_FILE = "outbox.jsonl"
DELIVERED_FILE = "delivered.jsonl"
FORMAT_VERSION = 1

logger = logging.getLogger(__name__)


class OutboxRecord(NamedTuple):
    """One alert in the outbox and the channels it is owed to."""

    alert: Alert
    channels: tuple[str, ...]


class Outbox(Channel):
    """The JSON-lines outbox in ``directory`` (created if missing).

    As a :class:`Channel`, ``deliver`` records an alert that is owed to no other channel;
    :class:`~trustops.alerts.AlertManager` uses :meth:`append` with its channel names.
    Not safe for concurrent writers on its own: the manager holds a file lock around it.
    """

    name = "outbox"

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.outbox_path = self.directory / OUTBOX_FILE
        self.delivered_path = self.directory / DELIVERED_FILE

    def __repr__(self) -> str:
        return f"Outbox({str(self.directory)!r})"

    def deliver(self, alert: Alert) -> None:
        self.append(alert, ())

    def append(self, alert: Alert, channels: Sequence[str]) -> None:
        """Durably record ``alert`` as owed to ``channels``; returns after fsync."""
        append_json_lines(self.outbox_path, [_record_line(OutboxRecord(alert, tuple(channels)))])

    def records(self) -> list[OutboxRecord]:
        """Every alert in the outbox, oldest first (an id seen twice keeps its first line)."""
        seen: set[str] = set()
        records = []
        for number, line in enumerate(read_json_lines(self.outbox_path), start=1):
            try:
                alert = Alert.from_dict(line["alert"])
                channels = tuple(str(name) for name in line.get("channels", ()))
            except (KeyError, TypeError, InvalidAlertError) as error:
                # One bad record must not stop every later alert; say loudly that it was skipped.
                logger.error("Skipping outbox record %d of %s, not an alert: %s", number, self.outbox_path, error)
                continue
            if alert.id not in seen:
                seen.add(alert.id)
                records.append(OutboxRecord(alert, channels))
        return records

    def ids(self) -> set[str]:
        """The ids of every alert in the outbox."""
        return {
            str(line["alert"]["id"])
            for line in read_json_lines(self.outbox_path)
            if isinstance(line.get("alert"), dict) and "id" in line["alert"]
        }

    def delivered(self) -> set[tuple[str, str]]:
        """The ``(alert id, channel name)`` pairs delivered so far."""
        return {
            (str(line["id"]), str(line["channel"]))
            for line in read_json_lines(self.delivered_path)
            if "id" in line and "channel" in line
        }

    def mark_delivered(self, alert_id: str | Sequence[str], channel: str) -> None:
        """Durably record that ``alert_id`` (one id, or the ids of a digest) reached ``channel``; one fsync."""
        ids = [alert_id] if isinstance(alert_id, str) else list(alert_id)
        at = utc_isoformat(datetime.now(timezone.utc))
        append_json_lines(
            self.delivered_path, [{"v": FORMAT_VERSION, "id": i, "channel": channel, "at": at} for i in ids]
        )

    def pending(self) -> list[tuple[Alert, tuple[str, ...]]]:
        """Alerts owed to at least one channel, oldest first, each with the channels still owed."""
        done = self.delivered()
        owed = []
        for record in self.records():
            channels = tuple(name for name in record.channels if (record.alert.id, name) not in done)
            if channels:
                owed.append((record.alert, channels))
        return owed

    def compact(self) -> int:
        """Drop fully delivered alerts and their delivery lines; returns how many alerts were dropped.

        The outbox is rewritten before the delivered file, so a crash in between leaves only
        delivery lines for alerts that are gone, which nothing reads.
        """
        records = self.records()
        done = self.delivered()
        keep = [r for r in records if any((r.alert.id, c) not in done for c in r.channels)]
        if len(keep) == len(records):
            return 0
        atomic_write_text(self.outbox_path, json_lines(_record_line(r) for r in keep))
        kept_ids = {r.alert.id for r in keep}
        delivered_lines = [line for line in read_json_lines(self.delivered_path) if line.get("id") in kept_ids]
        atomic_write_text(self.delivered_path, json_lines(delivered_lines))
        return len(records) - len(keep)


def _record_line(record: OutboxRecord) -> dict:
    return {"v": FORMAT_VERSION, "alert": record.alert.to_dict(), "channels": list(record.channels)}
