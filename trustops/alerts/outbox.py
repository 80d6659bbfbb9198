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

The two files are objects of a monitor state store (:mod:`trustops.monitoring.state_store`):
a local folder (fsync'd appends) or ``s3://bucket/prefix`` (each append a compare-and-set of
the whole object, so two writers never lose each other's lines).  An alert is appended only
if its id is not in the outbox yet, judged in the same atomic step as the append.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

from trustops.alerts._files import json_lines, parse_json_lines
from trustops.alerts.alert import Alert, utc_isoformat
from trustops.alerts.base import Channel
from trustops.alerts.errors import InvalidAlertError
from trustops.monitoring.state_store import StateStore, open_state

OUTBOX_FILE = "outbox.jsonl"
DELIVERED_FILE = "delivered.jsonl"
FORMAT_VERSION = 1

logger = logging.getLogger(__name__)


class OutboxRecord(NamedTuple):
    """One alert in the outbox and the channels it is owed to."""

    alert: Alert
    channels: tuple[str, ...]


class Outbox(Channel):
    """The JSON-lines outbox in ``directory``: a folder (created if missing), an ``s3://`` location or a state store.

    As a :class:`Channel`, ``deliver`` records an alert that is owed to no other channel;
    :class:`~trustops.alerts.AlertManager` uses :meth:`append` with its channel names.
    Appends never lose another writer's line; reading and rewriting (:meth:`compact`) are
    serialised by the manager.
    """

    name = "outbox"

    def __init__(self, directory: str | Path | StateStore) -> None:
        self.store = open_state(directory)
        if (folder := self.store.local_folder()) is not None:
            folder.mkdir(parents=True, exist_ok=True)
        self.directory = folder if folder is not None else self.store.location

    @property
    def outbox_path(self) -> Path | str:
        """The outbox file (a path, or an ``s3://`` URI)."""
        return self._where(OUTBOX_FILE)

    @property
    def delivered_path(self) -> Path | str:
        return self._where(DELIVERED_FILE)

    def _where(self, key: str) -> Path | str:
        folder = self.store.local_folder()
        return folder / key if folder is not None else self.store.where(key)

    def __repr__(self) -> str:
        return f"Outbox({str(self.directory)!r})"

    def deliver(self, alert: Alert) -> None:
        self.append(alert, ())

    def append(self, alert: Alert, channels: Sequence[str]) -> bool:
        """Durably record ``alert`` as owed to ``channels``, unless its id is already there; returns after fsync.

        ``False`` when an alert with its id was already recorded (a repeated pass, or a
        concurrent one on another worker): then nothing is written.
        """
        line = json_lines([_record_line(OutboxRecord(alert, tuple(channels)))]).encode("utf-8")
        return self.store.append(OUTBOX_FILE, line, unless=lambda data: alert.id in _readable_ids(data))

    def _lines(self, key: str) -> list[dict]:
        stored = self.store.read(key)
        return [] if stored is None else parse_json_lines(stored.data, self.store.where(key))

    def records(self) -> list[OutboxRecord]:
        """Every alert in the outbox, oldest first (an id seen twice keeps its first line)."""
        return self._records(self._lines(OUTBOX_FILE))

    def _records(self, lines: list[dict]) -> list[OutboxRecord]:
        seen: set[str] = set()
        records = []
        for number, line in enumerate(lines, start=1):
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
        return _ids(self._lines(OUTBOX_FILE))

    def delivered(self) -> set[tuple[str, str]]:
        """The ``(alert id, channel name)`` pairs delivered so far."""
        return {
            (str(line["id"]), str(line["channel"]))
            for line in self._lines(DELIVERED_FILE)
            if "id" in line and "channel" in line
        }

    def mark_delivered(self, alert_id: str | Sequence[str], channel: str) -> None:
        """Durably record that ``alert_id`` (one id, or the ids of a digest) reached ``channel``; one fsync."""
        ids = [alert_id] if isinstance(alert_id, str) else list(alert_id)
        at = utc_isoformat(datetime.now(timezone.utc))
        lines = json_lines({"v": FORMAT_VERSION, "id": i, "channel": channel, "at": at} for i in ids)
        self.store.append(DELIVERED_FILE, lines.encode("utf-8"))

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
        outbox = self.store.read(OUTBOX_FILE)
        if outbox is None:
            return 0
        records = self._records(parse_json_lines(outbox.data, self.store.where(OUTBOX_FILE)))
        done = self.delivered()
        keep = [r for r in records if any((r.alert.id, c) not in done for c in r.channels)]
        if len(keep) == len(records):
            return 0
        # Compare-and-set: an alert another writer appended meanwhile makes this compaction fail
        # (StateConflict), never vanish.
        self.store.write(OUTBOX_FILE, json_lines(_record_line(r) for r in keep).encode("utf-8"), expect=outbox.version)
        kept_ids = {r.alert.id for r in keep}
        delivered = self.store.read(DELIVERED_FILE)
        if delivered is not None:
            lines = parse_json_lines(delivered.data, self.store.where(DELIVERED_FILE))
            self.store.write(DELIVERED_FILE, json_lines(line for line in lines if line.get("id") in kept_ids).encode("utf-8"),
                             expect=delivered.version)
        return len(records) - len(keep)


def _readable_ids(data: bytes) -> set[str]:
    """The alert ids of the lines that parse: an append is not where a damaged line is reported (reading is)."""
    lines = []
    for line in data.split(b"\n"):
        try:
            record = json.loads(line)
        except (UnicodeDecodeError, ValueError):
            continue
        if isinstance(record, dict):
            lines.append(record)
    return _ids(lines)


def _ids(lines: list[dict]) -> set[str]:
    return {str(line["alert"]["id"]) for line in lines if isinstance(line.get("alert"), dict) and "id" in line["alert"]}


def _record_line(record: OutboxRecord) -> dict:
    return {"v": FORMAT_VERSION, "alert": record.alert.to_dict(), "channels": list(record.channels)}
