"""Monitor passes sharing one state: racing workers, a crash between stages, a second project checkout.

Every test but the last runs against both stores (a local folder and S3 on SeaweedFS): the
stage functions (chart, alert, watermark) are the ones the ZenML steps call, on hand-made
checked batches.  The last test runs a pass in a second checkout, in its own process, which
finds the state on S3 through that checkout's own storage setting.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from trustops.alerts import Alert, AlertManager, Channel, Outbox
from trustops.monitoring import alerting, charting, checking
from trustops.monitoring.alerting import WatermarkMoved, advance_watermark, send_alerts
from trustops.monitoring.charting import chart_batches
from trustops.monitoring.state_store import ANY, StateStore, open_state
from trustops.monitoring.watermark import Watermark

from .conftest import checked, collected, model_info, race, reopen

# (mean-confidence p, squeezing p) per capture step: a shift holds at 2-3 and again at 5,
# suspected adversarial inputs at 3; the shift condition was already open before (step 0).
PASS = {1: (0.5, 0.5), 2: (1e-6, 0.5), 3: (1e-7, 1e-9), 4: (0.4, 0.5), 5: (1e-5, 0.5)}


class ListChannel(Channel):
    name = "list"

    def __init__(self) -> None:
        self.received: list[Alert] = []

    def deliver(self, alert: Alert) -> None:
        self.received.append(alert)


@pytest.fixture(autouse=True)
def _no_chart_pictures(monkeypatch):
    """These tests need the chart states, not their pictures (matplotlib costs ~0.5 s a chart)."""
    monkeypatch.setattr(charting, "plot_p_value_chart", lambda points, path, *, title: path)


def prepared(store: StateStore) -> None:
    """Watermark at step 0 and the shift condition opened by an earlier pass."""
    earlier = checked({0: (1e-6, 0.5)})
    send_alerts(collected(None, [0]), earlier, chart_batches(earlier, state=store, title_suffix="m"), model_info=model_info(),
                state=store, alerts=AlertManager(store.child("alerts")))


def one_pass(store: StateStore, p_values: dict = PASS, after: int | None = 0, channel: Channel | None = None):
    found = checked(p_values)
    checking.failpoint("monitor.check")
    charted = chart_batches(found, state=store, title_suffix="m")
    return send_alerts(collected(after, sorted(p_values)), found, charted, model_info=model_info(), state=store,
                       alerts=AlertManager(store.child("alerts"), [channel] if channel else []))


def outcome(store: StateStore) -> tuple:
    outbox = Outbox(store.child("alerts"))
    alerts = [(r.alert.metric, r.alert.kind.value, r.alert.step) for r in outbox.records()]
    lines = len(store.read("alerts/outbox.jsonl").data.splitlines())
    charts = {name: [p["step"] for p in json.loads(store.read(f"charts/{name}.json").data)["points"]]
              for name in ("mean_confidence", "feature_squeezing")}
    active = sorted(AlertManager(store.child("alerts")).active_conditions())
    return alerts, lines, active, charts, Watermark.load(store, "/captures").last_step


UNINTERRUPTED = (
    [("distribution_shift", "distribution_shift", 0),  # the earlier pass
     ("distribution_shift", "recovered", 1), ("distribution_shift", "distribution_shift", 2),
     ("suspected_adversarial", "suspected_adversarial", 3), ("suspected_adversarial", "recovered", 4),
     ("distribution_shift", "recovered", 4), ("distribution_shift", "distribution_shift", 5)],
    7, ["incident|distribution_shift|p<=page_level|digits"],
    {"mean_confidence": [0, 1, 2, 3, 4, 5], "feature_squeezing": [0, 1, 2, 3, 4, 5]},
    5,
)


def test_the_uninterrupted_pass(state_store: StateStore) -> None:
    prepared(state_store)
    one_pass(state_store)
    assert outcome(state_store) == UNINTERRUPTED


def test_of_racing_passes_from_one_watermark_exactly_one_advances_it(state_store: StateStore) -> None:
    """Every racer has read the watermark before any writes it: only compare-and-set can pick one."""
    prepared(state_store)
    everyone_read = threading.Barrier(4)

    def worker(i: int) -> int | None:
        twin = copy.copy(state_store)  # one worker's handle on the same state
        write = twin.write

        def write_after_everyone_read(key: str, data: bytes, *, expect=ANY) -> str:
            if key == "watermark.json":
                everyone_read.wait(timeout=60)
            return write(key, data, expect=expect)

        twin.write = write_after_everyone_read
        return advance_watermark(collected(0, [1, 2 + i]), checked({1: (0.5, 0.5), 2 + i: (0.5, 0.5)}), state=twin)

    outcomes = race(4, worker)
    advanced = [o for o in outcomes if isinstance(o, int)]
    lost = [o for o in outcomes if isinstance(o, WatermarkMoved)]
    assert len(advanced) == 1 and len(lost) == 3, outcomes
    assert all(error.exit_code == 3 and "another monitor" in str(error) for error in lost)
    assert Watermark.load(state_store, "/captures").last_step == advanced[0]


def test_a_pass_that_loses_the_watermark_keeps_its_alerts_and_the_next_pass_sends_none_twice(state_store: StateStore) -> None:
    """Two workers start from watermark 0; the second saw one more batch (adversarial) and finishes last."""
    prepared(state_store)
    one_pass(state_store)  # worker 1: steps 1-5, moves the watermark to 5
    channel = ListChannel()
    later = {**PASS, 6: (0.5, 1e-9)}
    with pytest.raises(WatermarkMoved, match="another monitor") as lost:  # worker 2: steps 1-6 from watermark 0
        one_pass(state_store, later, channel=channel)
    assert lost.value.exit_code == 3
    assert Watermark.load(state_store, "/captures").last_step == 5  # worker 1's
    alerts, lines, active, charts, _ = outcome(state_store)
    at_step_6 = [("suspected_adversarial", "suspected_adversarial", 6), ("distribution_shift", "recovered", 6)]
    assert alerts == UNINTERRUPTED[0] + at_step_6  # worker 2's own changes kept, each once; worker 1's not twice
    assert sorted((a.metric, a.kind.value, a.step) for a in channel.received) == sorted(at_step_6)  # and delivered
    assert charts["feature_squeezing"] == [0, 1, 2, 3, 4, 5, 6]  # each batch charted once

    # The next pass checks step 6 again, as the pass from watermark 5 that worker 2 judged it as:
    # the same changes under the same ids, so the outbox and the channel get nothing twice.
    report = one_pass(state_store, {6: later[6]}, after=5, channel=channel)
    assert sorted((a["metric"], a["kind"], a["step"]) for a in report.alerts) == sorted(at_step_6) and report.watermark == 6
    assert outcome(state_store)[0] == alerts and len(channel.received) == 2


class Killed(KeyboardInterrupt):
    """What SIGKILL does to the attempt: it stops here, and no ``except Exception`` sees it."""


@pytest.mark.parametrize("point", ["monitor.chart", "monitor.alert", "outbox line 3"])
def test_a_pass_killed_between_its_stages_is_completed_by_the_rerun(state_store: StateStore, monkeypatch, point: str) -> None:
    """Killed after the charts (no alert written), after the alerts (watermark not moved), or mid-way through the alerts."""
    prepared(state_store)

    def stop(name: str) -> None:
        if name == point:
            raise Killed(name)

    for module in (checking, charting, alerting):
        monkeypatch.setattr(module, "failpoint", stop)
    if point.startswith("outbox line"):
        appended = 0
        real_append = Outbox.append

        def append(self, alert, channels):
            nonlocal appended
            written = real_append(self, alert, channels)
            appended += 1
            if appended == 3:  # the line is durable; its condition state is not
                raise Killed(point)
            return written

        monkeypatch.setattr(Outbox, "append", append)
    with pytest.raises(Killed):
        one_pass(state_store)
    for module in (checking, charting, alerting):  # the next process: no failpoints
        monkeypatch.setattr(module, "failpoint", lambda name: None)
    if point.startswith("outbox line"):
        monkeypatch.setattr(Outbox, "append", real_append)

    alerts_before_rerun = outcome(state_store)[0]
    if point == "monitor.chart":
        assert alerts_before_rerun == UNINTERRUPTED[0][:1]  # the charts hold the pass; no alert yet
    else:
        assert set(alerts_before_rerun) <= set(UNINTERRUPTED[0])  # what was written is recoverable as it is
    assert Watermark.load(state_store, "/captures").last_step == 0
    one_pass(reopen(state_store))  # a new process's handle
    assert outcome(state_store) == UNINTERRUPTED


# argv: checkout, capture uri; one pass over what is new, with the state the checkout's storage setting names
SECOND_CHECKOUT = r"""
import json, sys
from pathlib import Path
from trustops.storage import apply_storage_environment
apply_storage_environment()  # what every trustops command does first
from tests.monitoring_state.conftest import checked, model_info
from trustops.alerts import AlertManager
from trustops.model_index import IndexedVersion
from trustops.monitoring.alerting import send_alerts
from trustops.monitoring.charting import chart_batches
from trustops.monitoring.collect import collect_new_captures
from trustops.paths import project_root
from trustops.runs.monitoring import monitor_state

uri = sys.argv[2]
p_values = {3: (0.4, 0.5), 4: (0.5, 0.5)}
state = Path(str(monitor_state(project_root(), IndexedVersion("digits", 3, uri))))  # as the ZenML steps pass it on
new = collect_new_captures(uri, state)
found = checked({step: p_values[step] for step in new.new_steps})
charts = chart_batches(found, state=state, title_suffix="m")
report = send_alerts(new, found, charts, model_info=model_info(uri), state=state, alerts=AlertManager(state / "alerts"))
print(json.dumps({"root": str(project_root()), "state": str(monitor_state(project_root(), IndexedVersion("digits", 3, uri))),
                  "steps": new.new_steps, "watermark": report.watermark, "alerts": report.alerts}, default=str))
"""


@pytest.mark.integration
def test_a_pass_in_another_checkout_continues_where_the_last_stopped(s3_env, s3_bucket, tmp_path, monkeypatch) -> None:
    """Checkouts A and B share nothing but the storage setting: B's pass starts from A's watermark, charts and conditions."""
    import torch

    from trustops.capture import ActivationCapture
    from trustops.model_index import IndexedVersion
    from trustops.models.networks import build_classifier
    from trustops.runs.monitoring import monitor_state

    setting = {"uri": f"s3://{s3_bucket}/team", "endpoint_url": s3_env.endpoint_url, "region": s3_env.region}
    checkouts = [tmp_path / "a", tmp_path / "b"]
    for checkout in checkouts:
        checkout.mkdir()
        (checkout / "dvc.yaml").write_text("stages: {}\n")
        (checkout / "trustops-storage.json").write_text(json.dumps(setting))
    for name in ("TRUSTOPS_PROJECT_ROOT", "TRUSTOPS_STORAGE_URI", "TRUSTOPS_MONITOR_STATE_URI"):
        monkeypatch.delenv(name, raising=False)
    capture_uri = f"s3://{s3_bucket}/team/captures/train-1"
    model = build_classifier("mlp", (64,), 10).eval()

    def serve(batches: int) -> None:
        with ActivationCapture(model, capture_uri, mode="predict", endpoint_url=s3_env.endpoint_url), torch.no_grad():
            for _ in range(batches):
                model(torch.rand(4, 64) * 16)

    # Checkout A: steps 0-2, the shift opens at step 1.
    monkeypatch.chdir(checkouts[0])
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_env.endpoint_url)
    serve(3)
    state = monitor_state(checkouts[0], IndexedVersion("digits", 3, capture_uri))
    assert state == f"s3://{s3_bucket}/team/monitoring/digits/v3"
    from trustops.monitoring.collect import collect_new_captures

    first = collect_new_captures(capture_uri, state)
    assert first.new_steps == [0, 1, 2]
    found = checked({0: (0.5, 0.5), 1: (1e-6, 0.5), 2: (1e-5, 0.5)})
    report = send_alerts(first, found, chart_batches(found, state=state, title_suffix="m"), model_info=model_info(capture_uri),
                         state=state, alerts=AlertManager(open_state(state).child("alerts")))
    assert report.watermark == 2 and [(a["kind"], a["step"]) for a in report.alerts] == [("distribution_shift", 1)]
    opened = report.alerts[0]["id"]

    # Two more batches are served; checkout B, its own process, with no environment pointing at the state.
    serve(2)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT", "TRUSTOPS_"))}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    result = subprocess.run([sys.executable, "-c", SECOND_CHECKOUT, str(checkouts[1]), capture_uri], cwd=checkouts[1],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    second = json.loads(result.stdout.splitlines()[-1])
    assert Path(second["root"]) == checkouts[1] and second["state"] == state
    assert second["steps"] == [3, 4] and second["watermark"] == 4  # continued, nothing checked twice
    (recovery,) = second["alerts"]
    assert (recovery["kind"], recovery["step"], recovery["first_step"]) == ("recovered", 3, 1)
    assert recovery["details"]["opened_by_alert"] == opened  # the condition A opened, closed by B

    store = open_state(state)
    assert [p["step"] for p in json.loads(store.read("charts/mean_confidence.json").data)["points"]] == [0, 1, 2, 3, 4]
    assert AlertManager(store.child("alerts")).active_conditions() == {}
    assert not any(checkout.joinpath(".trustops", "monitoring").exists() for checkout in checkouts)  # nothing local


def test_damaged_state_stops_the_pass_and_repair_sets_it_aside_keeping_readable_lines(state_store: StateStore) -> None:
    from trustops.monitoring.repair import check_state, repair_state
    from trustops.monitoring.watermark import DamagedStateFile

    prepared(state_store)
    good = state_store.read("alerts/outbox.jsonl").data
    damaged_outbox = good + b'{"v": 1, "alert": {"monit\n' + good  # a line broken in the middle, then one more
    state_store.write("alerts/outbox.jsonl", damaged_outbox)
    state_store.write("watermark.json", b"{not json")
    with pytest.raises(DamagedStateFile, match="watermark.json is damaged") as raised:
        check_state(state_store)
    assert state_store.where("watermark.json") in str(raised.value) and "--repair" in str(raised.value)

    repaired = repair_state(state_store)
    assert len(repaired) == 2 and "1 damaged line(s)" in repaired[1]
    asides = [key for key in state_store.list() if ".damaged-" in key]
    assert sorted(key.partition(".damaged-")[0] for key in asides) == ["alerts/outbox.jsonl", "watermark.json"]
    kept = {key.partition(".damaged-")[0]: state_store.read(key).data for key in asides}
    assert kept == {"watermark.json": b"{not json", "alerts/outbox.jsonl": damaged_outbox}  # nothing lost
    assert state_store.read("alerts/outbox.jsonl").data == good + good and state_store.read("watermark.json") is None
    check_state(state_store)  # the next pass starts
