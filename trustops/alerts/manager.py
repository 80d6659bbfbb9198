"""The alert facade a pipeline step talks to: deduplicate, record, deliver, report.

Every alert is appended (fsync'd) to the outbox *before* any channel sees it, and is
marked delivered per channel only after that channel accepted it, so a crash or a dead
webhook delays alerts but never loses them.  Delivery is at-least-once: a crash between
a channel accepting an alert and the delivery being recorded sends it again next time
(receivers can dedupe on the alert ids the payload carries).

:meth:`AlertManager.raise_or_clear` and :meth:`AlertManager.send` only *record*; a
:meth:`AlertManager.flush` delivers.  It hands each channel one
:class:`~trustops.alerts.Digest` per model, listing all of that model's pending alerts
(raised and recovered) most severe first, so one monitoring pass pages once per model
however many conditions changed.  A digest that fails keeps all its alerts pending.

Folder layout (one folder per deployment, shared by its runs; a local folder or an S3
prefix, see :mod:`trustops.monitoring.state_store`)::

    state.json        ongoing conditions (see trustops.alerts.state)
    pass.json         the conditions a pass started from, while it runs (see begin_pass)
    outbox.jsonl      every alert and the channels it is owed to (see trustops.alerts.outbox)
    delivered.jsonl   one line per (alert, channel) delivered
    .lock             serialises concurrent runs (local folder only: on S3 every write is
                      compare-and-set, and a change that loses is judged again)

A pass that dies part-way is repeated, and must not alert twice: :meth:`AlertManager.begin_pass`
makes the repeat judge its conditions from the state the first attempt started from, so it
makes the same changes in the same order; the caller gives each change an id derived from the
pass and the change, and an alert whose id is already in the outbox is not recorded again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from trustops.alerts.alert import Alert, AlertKind, Severity
from trustops.alerts.base import Channel
from trustops.alerts.channels import build_channel
from trustops.alerts.digest import digests
from trustops.alerts.errors import DamagedAlertFile, InvalidAlertError
from trustops.alerts.outbox import Outbox
from trustops.alerts.state import ConditionState
from trustops.errors import ConfigError
from trustops.monitoring.state_store import StateConflict, StateStore, open_state

logger = logging.getLogger(__name__)

LOCK_FILE = ".lock"
PASS_FILE = "pass.json"
#: Attempts at one condition change that lost a compare-and-set to a concurrent writer (S3 state).
CHANGE_ATTEMPTS = 5


@dataclass(frozen=True)
class DeliverySummary:
    """What one call to :class:`AlertManager` did.

    Attributes
    ----------
    raised
        Alerts this call made and recorded (after deduplication).
    sent
        Ids of alerts that reached every channel they were owed to during this call.
    pending
        Ids of alerts still owed to some channel after this call, oldest first.  After
        :meth:`AlertManager.raise_or_clear` or :meth:`AlertManager.send` without
        ``deliver=True`` this includes what the call just recorded: it waits for ``flush()``.
    failed_channels
        Channel name → why it failed (never a secret); its alerts stay pending.
    messages
        Channel name → how many messages (digests) it accepted during this call.
    """

    raised: tuple[Alert, ...] = ()
    sent: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()
    failed_channels: Mapping[str, str] = field(default_factory=dict)
    messages: Mapping[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Nothing is pending and no channel failed."""
        return not self.pending and not self.failed_channels

    @property
    def exit_code(self) -> int:
        """``0`` when :attr:`ok`, else ``1``: for a CLI or a step that must not look green."""
        return 0 if self.ok else 1

    def __str__(self) -> str:
        text = f"alerts: {len(self.raised)} raised, {len(self.sent)} sent, {len(self.pending)} pending"
        for name, reason in self.failed_channels.items():
            text += f"; channel {name!r} failed: {reason}"
        if self.pending:
            text += "; pending alerts are kept in the outbox and retried by the next flush()"
        return text


class AlertManager:
    """Deduplicate alerts by condition, record them durably, and deliver them to channels.

    Parameters
    ----------
    directory
        Where the state file and the outbox live (created if missing); keep it across runs.
        A folder, an ``s3://bucket/prefix`` location, or a
        :class:`~trustops.monitoring.state_store.StateStore`.
    channels
        Where alerts go, besides the outbox.  Names must be unique.

    Examples
    --------
    >>> import tempfile
    >>> from trustops.alerts import Alert, AlertManager, ConsoleChannel
    >>> folder = tempfile.TemporaryDirectory()
    >>> manager = AlertManager(folder.name, [ConsoleChannel()])
    >>> def make():
    ...     return Alert(monitor="control_charts", metric="accuracy", rule="3-sigma", value=0.71, severity="critical")
    >>> key = make().key
    >>> [len(manager.raise_or_clear(key, active, make).raised) for active in (True, True, False)]
    [1, 0, 1]
    >>> summary = manager.flush()  # one console message for the model: the alert and its recovery
    >>> len(summary.sent), summary.messages
    (2, {'console': 1})
    >>> folder.cleanup()
    """

    def __init__(self, directory: str | Path | StateStore, channels: Sequence[Channel] = ()) -> None:
        names = [channel.name for channel in channels]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ConfigError(f"Alert channel names must be unique; repeated: {duplicates}.")
        if Outbox.name in names:
            raise ConfigError("The outbox is always written; leave 'outbox' out of the alert channels.")
        self.store = open_state(directory)
        self.outbox = Outbox(self.store)
        self.state = ConditionState(self.store)
        folder = self.store.local_folder()
        self.directory: Path | str = folder if folder is not None else self.store.location
        self.channels: tuple[Channel, ...] = tuple(channels)
        # Channels that exhausted their retries in this process: later alerts in the same run
        # wait in the outbox instead of paying the whole backoff again; flush() retries them.
        self._tripped: dict[str, str] = {}

    @classmethod
    def from_config(
        cls, directory: str | Path | StateStore, channels: Sequence[str] | Mapping[str, Mapping[str, Any] | None] = ("console",)
    ) -> Self:
        """Build from channel names, or a mapping of channel name → its options.

        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     AlertManager.from_config(folder, {"console": {"logger_name": "ops"}}).channels
        (ConsoleChannel(name='console'),)
        """
        if isinstance(channels, str):
            raise ConfigError(f"`channels` must be a list of channel names, not the string {channels!r}.")
        options = dict(channels) if isinstance(channels, Mapping) else {name: None for name in channels}
        return cls(directory, [build_channel(name, opts) for name, opts in options.items()])

    def __repr__(self) -> str:
        return f"AlertManager({str(self.directory)!r}, channels={list(self.channels)!r})"

    @property
    def channel_names(self) -> tuple[str, ...]:
        return tuple(channel.name for channel in self.channels)

    def active_conditions(self) -> dict[str, dict[str, Any]]:
        """Condition key → the alert that opened it, for every condition now active."""
        with self.store.serialized(LOCK_FILE):
            return self.state.load()

    def begin_pass(self, token: str) -> None:
        """Start the pass ``token`` (e.g. the watermark it starts from); a repeat of it restarts from the same conditions.

        The first call for ``token`` records the ongoing conditions in ``pass.json``; a later
        call for the same ``token`` (the pass died before :meth:`end_pass`) puts them back, so
        the repeat replays the same raise and clear changes instead of judging from the
        half-updated state the dead attempt left.  Give each change a deterministic id (see
        :func:`change_id`) and the replay records nothing twice.
        """
        with self.store.serialized(LOCK_FILE):
            journal = _read_journal(self.store)
            active = self.state.load()  # also the version the restore below replaces
            if journal is not None and journal.get("token") == token and isinstance(journal.get("active"), dict):
                self.state.save(journal["active"])
                logger.info("Repeating the unfinished alert pass %s from the conditions it started with", token)
                return
            text = json.dumps({"version": 1, "token": token, "active": active}, indent=1, sort_keys=True)
            self.store.write(PASS_FILE, text.encode("utf-8"))

    def end_pass(self) -> None:
        """The pass begun with :meth:`begin_pass` is done for good (its effects are durable): forget its start."""
        with self.store.serialized(LOCK_FILE):
            self.store.delete(PASS_FILE)

    def raise_or_clear(
        self, key: str, active: bool, alert_factory: Callable[[], Alert], *, deliver: bool = False
    ) -> DeliverySummary:
        """Report whether the condition ``key`` holds now; record an alert only when that changes.

        A condition that becomes active records ``alert_factory()``; one that stops being
        active records the same alert turned into a ``recovered`` one (severity ``info``, a
        new id, ``first_step`` of the alert that opened the condition).  In between, nothing
        is recorded.  ``alert_factory`` is called only on a change and must build an alert
        whose ``key`` is ``key``.

        The recovery's headline: when the factory's alert has a headline but a kind other
        than ``recovered``, its headline described the condition, not its end, so it is
        replaced by ``"Recovered: <what> on <model> v<version> cleared at capture step <step>
        (it held since capture step <first_step>)."``.  To word it yourself, build the alert
        with ``kind="recovered"`` when ``active`` is false.

        The alert waits in the outbox for the next :meth:`flush`, which sends each channel one
        digest per model; ``deliver=True`` delivers what is pending right away instead.  An
        alert whose id the outbox already holds (an earlier attempt at the same pass recorded
        it) is not recorded again; only the condition state is brought up to date.

        With the state on S3 and another writer changing the conditions at the same moment, the
        condition-state write loses its compare-and-set; the change is then judged again from
        the new state (the outbox already holds the alert, under its id, at most once).
        """
        for attempt in range(CHANGE_ATTEMPTS):
            try:
                with self.store.serialized(LOCK_FILE):
                    return self._raise_or_clear(key, active, alert_factory, deliver)
            except StateConflict:
                if attempt == CHANGE_ATTEMPTS - 1:
                    raise
                logger.info("The alert state changed under condition %s; judging it again", key)
        raise AssertionError("unreachable")

    def _raise_or_clear(self, key: str, active: bool, alert_factory: Callable[[], Alert], deliver: bool) -> DeliverySummary:
        conditions = self.state.load()
        if bool(active) == (key in conditions):
            return self._deliver_pending(retry_tripped=False) if deliver else self._pending_summary()
        alert = alert_factory()
        if not isinstance(alert, Alert) or alert.key != key:
            got = alert.key if isinstance(alert, Alert) else type(alert).__name__
            raise InvalidAlertError(f"alert_factory must build an Alert for condition {key!r}. Got: {got!r}")
        if active:
            conditions[key] = ConditionState.entry(alert)
        else:
            alert = _recovered(alert, conditions.pop(key))
        # Outbox first: if the run dies before the state is saved, the repeat makes the alert
        # again, under the same id when the caller derives it (then it is not recorded twice).
        if alert.id not in self.outbox.ids():
            self.outbox.append(alert, self.channel_names)
        self.state.save(conditions)
        if deliver:
            return self._deliver_pending(raised=(alert,), retry_tripped=False)
        return self._pending_summary(raised=(alert,))

    def send(self, alert: Alert, *, deliver: bool = False) -> DeliverySummary:
        """Record ``alert`` without deduplication (a one-off event); ``deliver=True`` delivers what is pending now."""
        with self.store.serialized(LOCK_FILE):
            self.outbox.append(alert, self.channel_names)
            if deliver:
                return self._deliver_pending(raised=(alert,), retry_tripped=False)
            return self._pending_summary(raised=(alert,))

    def flush(self) -> DeliverySummary:
        """Deliver every pending alert to the channels still owed it: one digest per model per channel.

        Call it at the end of each run (and it does no harm at the start).  Digests go out in
        the order of their model's oldest pending alert; each channel stops at its first
        failure, and every alert of a failed digest stays pending for the next flush.
        """
        with self.store.serialized(LOCK_FILE):
            return self._deliver_pending(retry_tripped=True)

    def compact(self) -> int:
        """Drop fully delivered alerts from the outbox; returns how many were dropped."""
        with self.store.serialized(LOCK_FILE):
            return self.outbox.compact()

    def _pending_summary(self, *, raised: tuple[Alert, ...] = ()) -> DeliverySummary:
        done = self.outbox.delivered()
        pending = tuple(
            r.alert.id for r in self.outbox.records() if any((r.alert.id, name) not in done for name in r.channels)
        )
        return DeliverySummary(raised=raised, pending=pending)

    def _deliver_pending(self, *, raised: tuple[Alert, ...] = (), retry_tripped: bool) -> DeliverySummary:
        records = self.outbox.records()
        done = self.outbox.delivered()

        def owed(alert_id: str, channels: tuple[str, ...]) -> bool:
            return any((alert_id, name) not in done for name in channels)

        pending_before = {r.alert.id for r in records if owed(r.alert.id, r.channels)}
        failed: dict[str, str] = {}
        messages: dict[str, int] = {}
        for channel in self.channels:
            if channel.name in self._tripped and not retry_tripped:
                failed[channel.name] = f"{self._tripped[channel.name]} (not retried until flush())"
                continue
            owed_here = [
                r.alert for r in records if channel.name in r.channels and (r.alert.id, channel.name) not in done
            ]
            for digest in digests(owed_here):
                try:
                    channel.deliver_digest(digest)
                except Exception as error:  # one broken channel must not silence the others
                    reason = f"{type(error).__name__}: {error}"
                    failed[channel.name] = self._tripped[channel.name] = reason
                    logger.warning(
                        "Alert channel %r failed; its alerts stay pending in the outbox: %s", channel.name, reason
                    )
                    logger.debug("Alert channel %r failure", channel.name, exc_info=True)
                    break
                self.outbox.mark_delivered(digest.ids, channel.name)
                done.update((alert_id, channel.name) for alert_id in digest.ids)
                messages[channel.name] = messages.get(channel.name, 0) + 1
            else:
                self._tripped.pop(channel.name, None)

        configured = set(self.channel_names)
        for record in records:
            for name in set(record.channels) - configured:
                if (record.alert.id, name) not in done:
                    failed.setdefault(name, "not configured in this run; its alerts wait until it is")
        pending = tuple(r.alert.id for r in records if owed(r.alert.id, r.channels))
        sent = tuple(r.alert.id for r in records if r.alert.id in pending_before and r.alert.id not in pending)
        return DeliverySummary(raised=raised, sent=sent, pending=pending, failed_channels=failed, messages=messages)


def _recovered(alert: Alert, opened: Mapping[str, Any]) -> Alert:
    """``alert`` (built for a condition that cleared) as the ``recovered`` alert that announces it."""
    first_step = opened.get("first_step")
    first_step = first_step if isinstance(first_step, int) and not isinstance(first_step, bool) else alert.first_step
    headline = alert.headline
    if headline.strip() and alert.kind != AlertKind.RECOVERED:
        try:
            what = AlertKind(opened.get("kind", alert.kind)).label
        except ValueError:  # a state file from a newer writer
            what = alert.kind.label
        headline = f"Recovered: {what.lower()} on {alert.model} cleared"
        if alert.step is not None:
            headline += f" at capture step {alert.step}"
        if first_step is not None:
            headline += f" (it held since capture step {first_step})"
        headline += "."
    details = dict(alert.details)
    if isinstance(opened.get("alert_id"), str):
        details.setdefault("opened_by_alert", opened["alert_id"])
    # Derived from the factory's id (itself new, or derived by the caller): a repeated pass
    # makes the same recovery id, so the outbox records it once.
    recovered_id = change_id(alert.id, "recovered")
    return dataclasses.replace(
        alert, kind=AlertKind.RECOVERED, severity=Severity.INFO, id=recovered_id,
        headline=headline, first_step=first_step, details=details,
    )


def change_id(*parts: object) -> str:
    """A stable alert id for one change of one condition: the same parts give the same id.

    >>> opened = change_id("after step 41", "incident|distribution_shift", True, 42)
    >>> opened == change_id("after step 41", "incident|distribution_shift", True, 42) != change_id("after step 41", "x", True, 42)
    True
    """
    return hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).hexdigest()[:32]


def _read_journal(store: StateStore) -> dict[str, Any] | None:
    stored = store.read(PASS_FILE)
    if stored is None:
        return None
    try:
        journal = json.loads(stored.data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        where = store.where(PASS_FILE)
        mv = "aws s3 mv" if where.startswith("s3://") else "mv"
        raise DamagedAlertFile(
            f"The alert pass file {where} is damaged ({error}); nothing was changed. Run `trustops monitor --repair` "
            f"or move it aside ({mv} {where} {where}.damaged): the pass then judges from the saved conditions."
        ) from None
    return journal if isinstance(journal, dict) else None
