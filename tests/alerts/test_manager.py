"""AlertManager: deduplication by condition, the durable outbox, digests per model, crash recovery, channel isolation."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustops.alerts import (
    Alert, AlertKind, AlertManager, Channel, ConsoleChannel, DamagedAlertFile, Digest, InvalidAlertError, Outbox, Severity, change_id,
)
from trustops.errors import ConfigError, DataError

from .conftest import make_alert


class ListChannel(Channel):
    """A working channel that keeps what it receives (the in-process counterpart of a chat room)."""

    def __init__(self, name: str = "list") -> None:
        self.name = name
        self.received: list[Alert] = []

    def deliver(self, alert: Alert) -> None:
        self.received.append(alert)


class DigestChannel(Channel):
    """A working channel that keeps each digest it receives as one message."""

    def __init__(self, name: str = "digests", *, fail_first: int = 0) -> None:
        self.name = name
        self.digests: list[Digest] = []
        self.fail_first = fail_first

    def deliver(self, alert: Alert) -> None:
        raise AssertionError("the manager must hand this channel digests")

    def deliver_digest(self, digest: Digest) -> None:
        if self.fail_first > 0:
            self.fail_first -= 1
            raise RuntimeError("the chat service is down")
        self.digests.append(digest)


class BrokenChannel(Channel):
    name = "broken"

    def deliver(self, alert: Alert) -> None:
        raise RuntimeError("the chat service is on fire")


def test_an_ongoing_condition_alerts_once_then_once_on_recovery(tmp_path: Path) -> None:
    channel = ListChannel()
    manager = AlertManager(tmp_path, [channel])
    key = make_alert().key
    raised = []
    for active in (True, True, True, False):  # one monitoring pass each
        raised.append(manager.raise_or_clear(key, active, make_alert).raised)
        manager.flush()

    assert [len(r) for r in raised] == [1, 0, 0, 1]
    assert [a.kind for a in channel.received] == [AlertKind.OUT_OF_CONTROL, AlertKind.RECOVERED]
    recovered = channel.received[1]
    assert recovered.severity == Severity.INFO and recovered.key == key and recovered.id != channel.received[0].id
    assert [r.alert for r in manager.outbox.records()] == channel.received
    assert manager.active_conditions() == {}


def test_dedupe_state_persists_between_runs(tmp_path: Path) -> None:
    key = make_alert().key
    first_run = AlertManager(tmp_path, [ListChannel()])
    first_run.raise_or_clear(key, True, make_alert)
    first_run.flush()

    state = json.loads((tmp_path / "state.json").read_text())
    assert state["version"] == 1
    assert state["active"][key]["kind"] == "out_of_control"
    assert state["active"][key]["alert_id"] == first_run.outbox.records()[0].alert.id

    second_run_channel = ListChannel()
    second_run = AlertManager(tmp_path, [second_run_channel])
    assert second_run.raise_or_clear(key, True, make_alert).raised == ()
    assert second_run.raise_or_clear(key, False, make_alert).raised[0].kind == AlertKind.RECOVERED
    assert second_run_channel.received == []  # recorded; the flush delivers
    second_run.flush()
    assert [a.kind for a in second_run_channel.received] == [AlertKind.RECOVERED]
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporary files behind


def test_an_inactive_condition_never_alerts_and_the_factory_is_not_called(tmp_path: Path) -> None:
    def factory() -> Alert:
        raise AssertionError("built an alert for a condition that did not change")

    summary = AlertManager(tmp_path, [ListChannel()]).raise_or_clear("m|x|r|", False, factory)
    assert summary.raised == () and summary.ok


# Each example does real fsync'd file I/O: on tmpfs when there is one, as fsync there does not
# wait for a disk that other jobs keep busy.  2**8 sequences in all, so 50 examples cover plenty.
_RAM_DISK = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


@settings(max_examples=50)
@given(st.lists(st.booleans(), max_size=8))
def test_alerts_follow_exactly_the_changes_of_a_condition(flags: list[bool]) -> None:
    with tempfile.TemporaryDirectory(dir=_RAM_DISK) as folder:
        channel = ListChannel()
        manager = AlertManager(folder, [channel])
        for active in flags:
            manager.raise_or_clear(make_alert().key, active, make_alert)
            manager.flush()
        changes = sum(1 for before, now in zip([False, *flags], flags) if before != now)
        kinds = [a.kind for a in channel.received]
        assert len(kinds) == changes
        assert kinds == [AlertKind.OUT_OF_CONTROL, AlertKind.RECOVERED] * (changes // 2) + [AlertKind.OUT_OF_CONTROL] * (changes % 2)


def test_conditions_are_independent(tmp_path: Path) -> None:
    channel = ListChannel()
    manager = AlertManager(tmp_path, [channel])
    for metric in ("accuracy", "loss", "accuracy"):
        manager.raise_or_clear(make_alert(metric).key, True, lambda: make_alert(metric))
    manager.flush()
    assert [a.metric for a in channel.received] == ["accuracy", "loss"]


def test_a_factory_for_another_condition_is_refused(tmp_path: Path) -> None:
    manager = AlertManager(tmp_path, [ListChannel()])
    with pytest.raises(InvalidAlertError, match="alert_factory must build an Alert for condition 'other'"):
        manager.raise_or_clear("other", True, make_alert)
    assert manager.outbox.records() == [] and manager.active_conditions() == {}


def test_send_does_not_deduplicate(tmp_path: Path) -> None:
    channel = ListChannel()
    manager = AlertManager(tmp_path, [channel])
    manager.send(make_alert(kind="adversarial"))
    manager.send(make_alert(kind="adversarial"))
    manager.flush()
    assert len(channel.received) == 2


def test_a_raising_channel_does_not_stop_the_others(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    before, after = ListChannel("before"), ListChannel("after")
    manager = AlertManager(tmp_path, [before, BrokenChannel(), after])
    manager.send(make_alert())
    summary = manager.flush()

    assert len(before.received) == len(after.received) == 1
    assert summary.failed_channels == {"broken": "RuntimeError: the chat service is on fire"}
    assert summary.pending == (before.received[0].id,) and summary.sent == () and summary.exit_code == 1
    assert "Alert channel 'broken' failed" in caplog.text
    # The channels that worked are not repeated by the next flush; the broken one is retried.
    manager.flush()
    assert len(before.received) == len(after.received) == 1


def test_undelivered_alerts_wait_in_the_outbox_and_the_next_run_delivers_them_in_order(tmp_path: Path) -> None:
    crashed = AlertManager(tmp_path, [BrokenChannel()])
    alerts = [make_alert(metric) for metric in ("accuracy", "loss", "ece")]
    for alert in alerts:
        crashed.raise_or_clear(alert.key, True, lambda alert=alert: alert)
    del crashed

    lines = (tmp_path / "outbox.jsonl").read_text().splitlines()
    assert [json.loads(line)["alert"]["id"] for line in lines] == [a.id for a in alerts]
    assert all(json.loads(line)["channels"] == ["broken"] for line in lines)

    # Run 2: a fresh manager on the same folder, now with a working channel of that name.
    healed = ListChannel("broken")
    summary = AlertManager(tmp_path, [healed]).flush()
    assert healed.received == alerts
    assert summary.sent == tuple(a.id for a in alerts) and summary.pending == () and summary.ok
    assert AlertManager(tmp_path, [healed]).flush().sent == ()
    assert healed.received == alerts  # delivered exactly once


CRASHING_RUN = """
import os, sys
from trustops.alerts import AlertManager, Channel
from tests.alerts.conftest import make_alert

class DiesMidDelivery(Channel):
    name = "list"
    def deliver(self, alert):
        os._exit(3)  # the process dies: no cleanup, no exception handling, no atexit

alert = make_alert()
print(alert.to_json(), flush=True)
manager = AlertManager(sys.argv[1], [DiesMidDelivery()])
manager.raise_or_clear(alert.key, True, lambda: alert)
manager.flush()
"""


def test_a_process_killed_mid_delivery_loses_nothing(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [sys.executable, "-c", CRASHING_RUN, str(tmp_path)], capture_output=True, text=True, cwd=repo, timeout=60
    )
    assert run.returncode == 3, run.stderr
    alert = Alert.from_json(run.stdout)

    channel = ListChannel()
    next_run = AlertManager(tmp_path, [channel])
    assert next_run.raise_or_clear(alert.key, True, make_alert).raised == ()  # the condition was recorded
    next_run.flush()
    assert channel.received == [alert]  # ...and its alert delivered by the next run, once
    assert next_run.flush().sent == () and channel.received == [alert]


def test_a_torn_last_line_is_skipped_and_later_appends_stay_readable(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    outbox = Outbox(tmp_path)
    first = make_alert("accuracy")
    outbox.append(first, ["list"])
    with open(outbox.outbox_path, "a") as file:  # a crash in the middle of a write
        file.write('{"v": 1, "alert": {"monitor": "cont')
    second = make_alert("loss")
    outbox.append(second, ["list"])

    assert [r.alert for r in outbox.records()] == [first, second]
    assert "torn by a crash" in caplog.text
    assert (tmp_path / "outbox.jsonl.damaged").read_text() == '{"v": 1, "alert": {"monitor": "cont\n'  # kept, not lost


def test_a_torn_last_line_is_skipped_when_read(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    outbox = Outbox(tmp_path)
    first = make_alert("accuracy")
    outbox.append(first, ["list"])
    with open(outbox.outbox_path, "a") as file:
        file.write('{"v": 1, "alert": {"monitor": "cont')
    before = outbox.outbox_path.read_bytes()
    assert [r.alert for r in outbox.records()] == [first]
    assert "torn last line 2" in caplog.text and outbox.outbox_path.read_bytes() == before


def test_a_damaged_line_before_the_last_names_the_file_and_the_repair(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    outbox.append(make_alert("accuracy"), ["list"])
    with open(outbox.outbox_path, "a") as file:
        file.write("garbage\n")
    outbox.append(make_alert("loss"), ["list"])
    before = outbox.outbox_path.read_bytes()
    with pytest.raises(DamagedAlertFile, match=r"outbox.jsonl is damaged at line 2.*trustops monitor --repair"):
        outbox.records()
    with pytest.raises(DamagedAlertFile):
        AlertManager(tmp_path, [ListChannel()]).flush()
    assert outbox.outbox_path.read_bytes() == before  # nothing overwritten


def test_a_repeated_pass_records_each_change_once(tmp_path: Path) -> None:
    """A pass that died after recording part of its changes is replayed from the state it started with."""
    channel = ListChannel()
    key = make_alert("accuracy").key

    def run(pass_token: str, judgements: list[bool], *, die_after: int | None = None) -> None:
        manager = AlertManager(tmp_path, [channel])
        manager.begin_pass(pass_token)
        for step, active in enumerate(judgements):
            if die_after is not None and step == die_after:
                return  # the process died here: no end_pass
            alert_id = change_id(pass_token, key, active, step)
            manager.raise_or_clear(key, active, lambda: dataclasses.replace(make_alert("accuracy"), id=alert_id, step=step))
        manager.end_pass()

    run("pass-1", [True, False])                        # opened and recovered in an earlier pass
    run("pass-2", [False, True, False], die_after=2)   # opened at step 1, then the process died
    # From the half-updated state (open) the repeat would see a recovery at step 0; from the
    # state the pass started with it makes the same changes, under the same ids, once.
    run("pass-2", [False, True, False])
    records = Outbox(tmp_path).records()
    opened = records[0].alert.kind.value
    assert [(r.alert.kind.value, r.alert.step) for r in records] == [
        (opened, 0), ("recovered", 1), (opened, 1), ("recovered", 2)]
    assert AlertManager(tmp_path).active_conditions() == {}
    assert not (tmp_path / "pass.json").exists()


def test_compact_drops_only_fully_delivered_alerts(tmp_path: Path) -> None:
    channel = ListChannel()
    manager = AlertManager(tmp_path, [channel, BrokenChannel()])
    manager.send(make_alert("accuracy"))
    AlertManager(tmp_path, [ListChannel("broken"), channel]).flush()  # the first alert is now done everywhere
    pending = make_alert("loss")
    manager.send(pending)
    manager.flush()  # reaches "list"; "broken" fails

    assert manager.compact() == 1
    assert [r.alert for r in manager.outbox.records()] == [pending]
    assert manager.outbox.pending() == [(pending, ("broken",))]
    assert manager.compact() == 0


def test_alerts_owed_to_a_channel_that_is_no_longer_configured_stay_pending(tmp_path: Path) -> None:
    AlertManager(tmp_path, [BrokenChannel()]).send(make_alert())
    summary = AlertManager(tmp_path, [ListChannel()]).flush()
    assert "not configured" in summary.failed_channels["broken"] and len(summary.pending) == 1


def test_console_channel_logs_one_block_per_model_at_the_most_severe_level(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trustops.alerts")
    manager = AlertManager(tmp_path, [ConsoleChannel()])
    link = "http://127.0.0.1:5000/#/experiments/1/runs/0a1b2c"
    manager.send(make_alert("loss", severity="warning", headline="Loss up on resnet18 v3.", mlflow_run_url=link))
    manager.send(make_alert(message="first line\nsecond line", headline="Accuracy fell to 0.71 on resnet18 v3.", rule="western_electric_1"))
    manager.send(make_alert("ece", severity="info", kind="recovered", headline="Recovered: calibration on resnet18 v3."))
    manager.send(make_alert(severity="info", kind="recovered", model_name="other", headline="Recovered: other v1."))
    assert manager.flush().messages == {"console": 2}

    records = [r for r in caplog.records if r.name == "trustops.alerts"]
    assert [r.levelno for r in records] == [logging.CRITICAL, logging.INFO]
    lines = records[0].getMessage().splitlines()
    assert lines[:4] == [
        "ALERT [CRITICAL] Accuracy fell to 0.71 on resnet18 v3. (and 2 more conditions)",
        "  - [WARNING] Loss up on resnet18 v3.",
        "  - [INFO] Recovered: calibration on resnet18 v3.",
        f"  MLflow run: {link}",
    ]
    assert lines[4] == "  Details:" and len(lines) == 8  # then one details line per alert, most severe first
    assert "rule=western_electric_1" in lines[5] and "note=first line second line" in lines[5]
    assert "western_electric" not in "\n".join(lines[:4])  # rules stay in the details
    assert records[1].getMessage().splitlines()[0] == "ALERT [INFO] Recovered: other v1."


def test_summary_reports_clearly(tmp_path: Path) -> None:
    summary = AlertManager(tmp_path, [BrokenChannel()]).send(make_alert(), deliver=True)
    assert str(summary) == (
        "alerts: 1 raised, 0 sent, 1 pending; channel 'broken' failed: RuntimeError: the chat service is on fire; "
        "pending alerts are kept in the outbox and retried by the next flush()"
    )


def test_an_unreadable_state_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{")
    with pytest.raises(DataError, match="alert state file .* is unreadable .*trustops monitor --repair.*to start afresh"):
        AlertManager(tmp_path, []).raise_or_clear("k", True, make_alert)


@pytest.mark.parametrize(
    ("channels", "message"),
    [
        (["console", "pagerduty"], "Unknown alert channel 'pagerduty'; known channels: console, webhook, zenml."),
        ({"console": {"colour": True}}, "Unknown option(s) ['colour'] for alert channel 'console'; allowed: ['logger_name']."),
        ({"webhook": {"retry": {"max_retries": -1}}}, "`max_retries` must be an integer >= 0. Got: -1"),
        ({"webhook": {"retry": {"tries": 3}}}, "Unknown retry option(s) ['tries']"),
        (["outbox"], "Unknown alert channel 'outbox'"),
        ("console", "must be a list of channel names, not the string 'console'"),
    ],
)
def test_bad_channel_config_is_a_clear_config_error(tmp_path: Path, channels: object, message: str) -> None:
    import re

    with pytest.raises(ConfigError, match=re.escape(message)):
        AlertManager.from_config(tmp_path, channels)  # type: ignore[arg-type]


def test_channel_names_must_be_unique(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"repeated: \['list'\]"):
        AlertManager(tmp_path, [ListChannel(), ListChannel()])


def test_one_flush_hands_each_channel_one_digest_per_model_most_severe_first(tmp_path: Path) -> None:
    channel = DigestChannel()
    manager = AlertManager(tmp_path, [channel])
    made = [
        make_alert("loss", severity="warning"),
        make_alert("accuracy", severity="critical"),
        make_alert("latency", severity="warning", model_name="other"),
        make_alert("ece", severity="warning"),
    ]
    for alert in made:
        summary = manager.raise_or_clear(alert.key, True, lambda alert=alert: alert)
        assert summary.raised == (alert,) and alert.id in summary.pending  # recorded, waiting for flush()
    assert channel.digests == []

    summary = manager.flush()
    assert summary.ok and summary.sent == tuple(a.id for a in made) and summary.messages == {"digests": 2}
    resnet, other = channel.digests
    assert [a.metric for a in resnet.alerts] == ["accuracy", "loss", "ece"]  # critical first, then in the order made
    assert resnet.first_line == made[1].title + " (and 2 more conditions)"
    assert [a.metric for a in other.alerts] == ["latency"] and other.first_line == made[2].title
    # Nothing new: the next flush sends nothing.
    assert manager.flush().messages == {} and len(channel.digests) == 2


def test_a_failed_digest_keeps_all_its_alerts_pending_until_one_delivery_sends_them_all(tmp_path: Path) -> None:
    made = [make_alert(metric) for metric in ("accuracy", "loss", "ece")]
    channel = DigestChannel(fail_first=1)
    manager = AlertManager(tmp_path, [channel])
    for alert in made:
        manager.raise_or_clear(alert.key, True, lambda alert=alert: alert)

    failed = manager.flush()
    assert failed.failed_channels == {"digests": "RuntimeError: the chat service is down"}
    assert failed.pending == tuple(a.id for a in made) and failed.sent == () and failed.messages == {}
    assert Outbox(tmp_path).delivered() == set()

    healed = AlertManager(tmp_path, [channel]).flush()  # the next run
    assert healed.ok and healed.sent == tuple(a.id for a in made) and healed.messages == {"digests": 1}
    assert [d.ids for d in channel.digests] == [tuple(a.id for a in made)]
    assert Outbox(tmp_path).delivered() == {(a.id, "digests") for a in made}


def test_recovery_is_announced_once_with_a_headline_that_says_it_cleared(tmp_path: Path) -> None:
    channel = DigestChannel()
    manager = AlertManager(tmp_path, [channel])

    def shift(step: int, first_step: int | None) -> Alert:
        return make_alert(
            kind="distribution_shift", severity="warning", model_name="trustops-digits", step=step, first_step=first_step,
            headline=f"Distribution shift on trustops-digits v3: input drift p = 2e-06, since capture step {step}.",
        )

    key = shift(41, 41).key
    opened = manager.raise_or_clear(key, True, lambda: shift(41, 41)).raised[0]
    for step in (57, 58):
        manager.raise_or_clear(key, False, lambda step=step: shift(step, None))
    manager.flush()

    [digest] = channel.digests  # the opening alert and its recovery, one message
    assert [a.kind for a in digest.alerts] == [AlertKind.DISTRIBUTION_SHIFT, AlertKind.RECOVERED]
    recovered = digest.alerts[1]
    assert recovered.headline == (
        "Recovered: distribution shift on trustops-digits v3 cleared at capture step 57 (it held since capture step 41)."
    )
    assert (recovered.severity, recovered.first_step, recovered.step) == (Severity.INFO, 41, 57)
    assert recovered.details["opened_by_alert"] == opened.id and recovered.id != opened.id


def test_a_recovery_worded_by_the_caller_keeps_its_headline(tmp_path: Path) -> None:
    manager = AlertManager(tmp_path, [])
    key = make_alert().key
    manager.raise_or_clear(key, True, make_alert)
    worded = "Accuracy on resnet18 v3 is back to 0.93 at capture step 60."
    recovered = manager.raise_or_clear(key, False, lambda: make_alert(kind="recovered", headline=worded)).raised[0]
    assert recovered.headline == worded and recovered.severity == Severity.INFO


def test_an_old_state_file_still_clears_its_conditions(tmp_path: Path) -> None:
    key = make_alert().key
    entry = {"alert_id": "a1", "kind": "out_of_control", "severity": "critical", "since": "2026-11-30T00:00:00.000000Z"}
    (tmp_path / "state.json").write_text(json.dumps({"version": 1, "active": {key: entry}}))
    recovered = AlertManager(tmp_path, []).raise_or_clear(key, False, lambda: make_alert(headline="x", step=9)).raised[0]
    assert recovered.headline == "Recovered: out of control on resnet18 v3 cleared at capture step 9."
    assert recovered.first_step is None and recovered.details["opened_by_alert"] == "a1"


def test_deliver_true_delivers_at_once(tmp_path: Path) -> None:
    channel = DigestChannel()
    manager = AlertManager(tmp_path, [channel])
    summary = manager.raise_or_clear(make_alert().key, True, make_alert, deliver=True)
    assert summary.ok and summary.messages == {"digests": 1} and len(channel.digests) == 1
    assert manager.send(make_alert("loss"), deliver=True).sent != () and len(channel.digests) == 2
