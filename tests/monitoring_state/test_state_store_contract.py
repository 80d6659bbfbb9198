"""The state-store contract, run against both implementations: a local folder and S3 (SeaweedFS).

Compare-and-set is the property everything else rests on: of several writers that read the
same version, exactly one replaces it; a create-if-absent has exactly one winner; an append
never loses another writer's line.  The races use real threads against the real store.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from trustops.monitoring.state_store import (
    ANY,
    LocalStateStore,
    MonitorRunInProgress,
    S3StateStore,
    StateConflict,
    StateStore,
    open_state,
)
from trustops.monitoring.watermark import exclusive_run

from .conftest import TEST_LEASE_SECONDS, race, reopen

RACERS = 6


def test_read_of_an_absent_object_is_none_and_create_if_absent_wins_once(state_store: StateStore) -> None:
    assert state_store.read("watermark.json") is None
    version = state_store.write("watermark.json", b'{"a": 1}', expect=None)
    stored = state_store.read("watermark.json")
    assert stored.data == b'{"a": 1}' and stored.version == version
    with pytest.raises(StateConflict):
        state_store.write("watermark.json", b'{"a": 2}', expect=None)
    assert state_store.read("watermark.json").data == b'{"a": 1}'  # the losing write changed nothing


def test_replace_if_unchanged_refuses_a_stale_version(state_store: StateStore) -> None:
    first = state_store.write("charts/mmd.json", b"1", expect=None)
    second = state_store.write("charts/mmd.json", b"2", expect=first)
    assert second != first and state_store.read("charts/mmd.json").version == second
    with pytest.raises(StateConflict):
        state_store.write("charts/mmd.json", b"3", expect=first)  # read before the second write
    with pytest.raises(StateConflict):
        state_store.write("charts/absent.json", b"x", expect=second)  # a version of an object that is not there
    assert state_store.read("charts/mmd.json").data == b"2" and state_store.read("charts/absent.json") is None
    state_store.write("charts/mmd.json", b"4")  # unconditional
    assert state_store.read("charts/mmd.json").data == b"4"


def test_delete_only_the_version_read(state_store: StateStore) -> None:
    assert state_store.delete("alerts/pass.json") is False
    version = state_store.write("alerts/pass.json", b"{}")
    state_store.write("alerts/pass.json", b'{"token": 1}', expect=version)
    with pytest.raises(StateConflict):
        state_store.delete("alerts/pass.json", expect=version)
    assert state_store.read("alerts/pass.json").data == b'{"token": 1}'
    assert state_store.delete("alerts/pass.json", expect=state_store.read("alerts/pass.json").version) is True
    assert state_store.read("alerts/pass.json") is None


def test_list_child_copy_and_where(state_store: StateStore) -> None:
    for key in ("watermark.json", "charts/b.json", "charts/a.json", "alerts/outbox.jsonl"):
        state_store.write(key, key.encode())
    assert state_store.list() == ["alerts/outbox.jsonl", "charts/a.json", "charts/b.json", "watermark.json"]
    assert state_store.list("charts/") == ["charts/a.json", "charts/b.json"]
    alerts = state_store.child("alerts")
    assert alerts.read("outbox.jsonl").data == b"alerts/outbox.jsonl" and alerts.list() == ["outbox.jsonl"]
    assert alerts.where("outbox.jsonl") == state_store.where("alerts/outbox.jsonl")
    state_store.copy("charts/a.json", "charts/a.json.damaged-x")
    assert state_store.read("charts/a.json.damaged-x").data == b"charts/a.json"
    assert reopen(state_store).read("charts/a.json").data == b"charts/a.json"  # the location reopens it


def test_of_racing_writers_from_one_version_exactly_one_replaces_it(state_store: StateStore) -> None:
    version = state_store.write("watermark.json", b"start", expect=None)
    outcomes = race(RACERS, lambda i: state_store.write("watermark.json", f"writer {i}".encode(), expect=version))
    winners = [i for i, outcome in enumerate(outcomes) if isinstance(outcome, str)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(o, StateConflict) for i, o in enumerate(outcomes) if i != winners[0]), outcomes
    assert state_store.read("watermark.json").data == f"writer {winners[0]}".encode()


def test_of_racing_creators_exactly_one_creates(state_store: StateStore) -> None:
    outcomes = race(RACERS, lambda i: state_store.write("alerts/state.json", f"creator {i}".encode(), expect=None))
    winners = [i for i, outcome in enumerate(outcomes) if isinstance(outcome, str)]
    assert len(winners) == 1 and state_store.read("alerts/state.json").data == f"creator {winners[0]}".encode(), outcomes


def test_racing_appends_lose_no_line_and_unless_skips_a_line_already_there(state_store: StateStore) -> None:
    outcomes = race(RACERS, lambda i: [state_store.append("alerts/outbox.jsonl", f'{{"n": {i}, "k": {k}}}\n'.encode())
                                       for k in range(3)])
    assert all(outcome == [True] * 3 for outcome in outcomes), outcomes
    lines = [json.loads(line) for line in state_store.read("alerts/outbox.jsonl").data.splitlines()]
    assert sorted((line["n"], line["k"]) for line in lines) == [(n, k) for n in range(RACERS) for k in range(3)]
    for n in range(RACERS):  # each writer's lines in the order it wrote them
        assert [line["k"] for line in lines if line["n"] == n] == [0, 1, 2]

    # The same line offered by every racer: written once (the check and the append are one step).
    offered = race(RACERS, lambda i: state_store.append("alerts/outbox.jsonl", b'{"id": "same"}\n',
                                                         unless=lambda data: b'"same"' in data))
    assert offered.count(True) == 1 and offered.count(False) == RACERS - 1, offered
    assert state_store.read("alerts/outbox.jsonl").data.count(b'"same"') == 1


def test_a_lease_admits_one_pass_and_is_free_again_after_it(state_store: StateStore) -> None:
    with exclusive_run(state_store):
        with pytest.raises(MonitorRunInProgress, match="in progress") as held:
            with exclusive_run(state_store):
                pass
        assert held.value.exit_code == 3
    with exclusive_run(state_store):  # released
        pass


def test_of_racing_passes_exactly_one_takes_the_lease(state_store: StateStore) -> None:
    taken = threading.Event()
    tried = threading.Barrier(RACERS)

    def one_pass(i: int) -> int:
        try:
            with exclusive_run(state_store):
                taken.set()
                tried.wait(timeout=60)  # hold it until every other pass has tried
                return i
        except MonitorRunInProgress:
            tried.wait(timeout=60)
            raise

    outcomes = race(RACERS, one_pass)
    assert sum(isinstance(o, int) for o in outcomes) == 1, outcomes
    assert sum(isinstance(o, MonitorRunInProgress) for o in outcomes) == RACERS - 1, outcomes


# argv: location, endpoint|"", lease seconds; takes the lease, says so, then waits to be killed
HOLDER = r"""
import sys, time
from trustops.monitoring.state_store import S3StateStore, open_state
location, endpoint, seconds = sys.argv[1], sys.argv[2] or None, float(sys.argv[3])
store = S3StateStore(location, endpoint_url=endpoint, lease_seconds=seconds) if location.startswith("s3://") else open_state(location)
with store.lease():
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_pass_killed_while_holding_the_lease_does_not_block_the_next_for_ever(state_store: StateStore, store_kind: str) -> None:
    """SIGKILL: the local lock dies with the process; an S3 lease expires after its last renewal, on the server's clock."""
    endpoint = state_store.endpoint_url if isinstance(state_store, S3StateStore) else ""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, state_store.location, endpoint or "", str(TEST_LEASE_SECONDS)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held", holder.stderr.read()
        time.sleep(TEST_LEASE_SECONDS * 1.2)  # past one renewal period: a live holder keeps it
        with pytest.raises(MonitorRunInProgress):
            with exclusive_run(state_store):
                pass
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=30)
    if store_kind == "s3":
        with pytest.raises(MonitorRunInProgress, match="expires in"):  # nobody renews it, but it has not expired yet
            with exclusive_run(state_store):
                pass
        time.sleep(TEST_LEASE_SECONDS + 1.5)  # Last-Modified has one-second resolution
    with exclusive_run(state_store):  # taken over
        pass


def test_a_location_opens_the_store_it_names(tmp_path: Path) -> None:
    assert isinstance(open_state(tmp_path), LocalStateStore) and open_state(str(tmp_path)).location == str(tmp_path)
    # The ZenML steps hand the location on as Path(state): pathlib folds s3:// into s3:/.
    for form in ("s3://bucket/team/monitoring/m/v1", Path("s3://bucket/team/monitoring/m/v1")):
        store = open_state(form)
        assert isinstance(store, S3StateStore) and store.location == "s3://bucket/team/monitoring/m/v1"
    assert open_state(Path("s3://bucket/p") / "alerts").where("outbox.jsonl") == "s3://bucket/p/alerts/outbox.jsonl"
    store = LocalStateStore(tmp_path)
    assert open_state(store) is store


def test_the_local_store_keeps_the_old_layout_and_reads_state_written_before(tmp_path: Path) -> None:
    """Files an earlier release wrote are read as they are; nothing is added but dot-files and locks."""
    (tmp_path / "charts").mkdir()
    (tmp_path / "watermark.json").write_text('{"capture_uri": "/c", "last_step": 7, "quarantined": []}')
    (tmp_path / "charts" / "mmd.json").write_text('{"last_step": 7, "points": [{"step": 7, "value": 1.0, "ucl": 3.0}]}')
    (tmp_path / "charts" / "mmd.json.partial").write_text("{")  # a crash of the old writer mid-save
    store = LocalStateStore(tmp_path)
    assert json.loads(store.read("watermark.json").data)["last_step"] == 7
    assert store.list("charts/") == ["charts/mmd.json", "charts/mmd.json.partial"]
    store.write("watermark.json", b"{}", expect=store.read("watermark.json").version)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["charts", "watermark.json"]  # no temporary file left


def test_an_unreachable_s3_store_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from trustops.monitoring.state_store import StateStoreUnavailable

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "unused")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "unused")
    store = S3StateStore("s3://bucket/x", endpoint_url="http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(StateStoreUnavailable, match="could not be reached"):
        store.read("watermark.json")


def test_unconditional_is_the_default(state_store: StateStore) -> None:
    state_store.write("k", b"1")
    assert state_store.write("k", b"2", expect=ANY) and state_store.read("k").data == b"2"
