"""Several OS processes capturing PREDICT steps into one store, and the monitor's safe horizon.

Each writer is a real ``python`` child process using :class:`trustops.capture.ActivationCapture`;
the stores are a local folder and the session's SeaweedFS server.  Every batch carries its
writer and batch number in its inputs, so the test can tell which stored step is whose.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trustops.capture import open_capture, open_store
from trustops.monitoring.collect import collect_new_captures
from trustops.monitoring.watermark import Watermark

# argv: uri endpoint_url|"" writer_id n_batches go_file flush_interval
WRITER = r"""
import json, random, sys, time, os
from pathlib import Path
import torch
from trustops.capture import ActivationCapture
from trustops.models.networks import build_classifier

uri, endpoint, writer, n, go, flush = sys.argv[1], sys.argv[2] or None, int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]), float(sys.argv[6])
model = build_classifier("mlp", (64,), 10).eval()
rng = random.Random(writer)
steps = []
with ActivationCapture(model, uri, mode="predict", flush_interval=flush, endpoint_url=endpoint) as capture, torch.inference_mode():
    while not go.exists():
        time.sleep(0.005)
    for i in range(n):
        model(torch.full((2, 64), float(writer * 1000 + i)))
        steps.append(capture.last_step)
        if rng.random() < 0.3:  # some pauses long enough to release the lease, some not
            time.sleep(rng.choice([0.001, 0.01, 2.5 * flush]))
print(json.dumps(steps), flush=True)
"""

# argv: uri endpoint_url|""; reserves one step and holds it uncommitted until stdin closes
HOLDER = r"""
import sys
import torch
from trustops.capture import ActivationCapture
from trustops.models.networks import build_classifier

model = build_classifier("mlp", (64,), 10).eval()
capture = ActivationCapture(model, sys.argv[1], mode="predict", flush_interval=3600, endpoint_url=sys.argv[2] or None)
with capture, torch.inference_mode():
    model(torch.full((2, 64), -1.0))
    print(capture.last_step, flush=True)
    sys.stdin.read()
"""


def _spawn(script: str, *args: object, stdin=None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=stdin,
        text=True, env=os.environ.copy(),
    )  # fmt: skip


def _concurrent_writers(uri: str, endpoint: str, tmp_path: Path, *, writers: int, n: int) -> dict[int, list[int]]:
    go = tmp_path / "go"
    children = {w: _spawn(WRITER, uri, endpoint, w, n, go, 0.02) for w in range(1, writers + 1)}
    time.sleep(3.0)  # let every child import torch and open its writer, then start them together
    go.touch()
    reported = {}
    for w, child in children.items():
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err[-3000:]
        reported[w] = json.loads(out.strip().splitlines()[-1])
    return reported


def _check_every_batch_stored_once(uri: str, endpoint: str | None, reported: dict[int, list[int]], n: int) -> None:
    reader = open_capture(uri, endpoint_url=endpoint)
    stored = reader.steps("predict")
    all_reported = sorted(s for steps in reported.values() for s in steps)
    assert len(set(all_reported)) == len(all_reported) == len(reported) * n, "two batches got one step number"
    assert stored == all_reported, "stored steps differ from the steps the writers were given"
    by_step = {s: (w, i) for w, steps in reported.items() for i, s in enumerate(steps)}
    for captured in reader.iter_steps("predict", layers=["inputs"]):
        w, i = by_step[captured.step]
        assert captured.tensors["inputs"].eq(float(w * 1000 + i)).all(), f"step {captured.step} holds another batch"
    # Everyone closed (leases released): the horizon is the last step.
    assert reader.committed_horizon("predict") == stored[-1]


def test_concurrent_processes_on_local_disk_store_every_batch_once(tmp_path):
    uri = str(tmp_path / "store")
    reported = _concurrent_writers(uri, "", tmp_path, writers=3, n=40)
    _check_every_batch_stored_once(uri, None, reported, 40)
    # Writers interleaved: more than one lease was claimed, and each writer's steps are its own.
    assert len(list(open_store(uri).list("predict/leases/"))) >= 3


@pytest.mark.integration
def test_concurrent_processes_on_s3_store_every_batch_once(s3_env, s3_bucket, tmp_path):
    uri = f"s3://{s3_bucket}/shared"
    reported = _concurrent_writers(uri, s3_env.endpoint_url, tmp_path, writers=3, n=25)
    _check_every_batch_stored_once(uri, s3_env.endpoint_url, reported, 25)


@pytest.mark.parametrize("where", ["local", pytest.param("s3", marks=pytest.mark.integration)])
def test_create_is_exclusive(where, tmp_path, request):
    if where == "s3":
        s3_env = request.getfixturevalue("s3_env")
        store = open_store(f"s3://{request.getfixturevalue('s3_bucket')}/x", endpoint_url=s3_env.endpoint_url)
    else:
        store = open_store(tmp_path / "x")
    assert store.create("a/b.json", b"first") is True
    assert store.create("a/b.json", b"second") is False
    assert store.get("a/b.json") == b"first"
    assert list(store.list("a/")) == ["a/b.json"]  # no temporary file left behind


def _write_steps(uri: str, n: int, endpoint: str | None = None) -> list[int]:
    import torch

    from trustops.capture import ActivationCapture
    from trustops.models.networks import build_classifier

    model = build_classifier("mlp", (64,), 10).eval()
    with ActivationCapture(model, uri, mode="predict", endpoint_url=endpoint) as capture, torch.inference_mode():
        steps = []
        for i in range(n):
            model(torch.full((2, 64), float(i)))
            steps.append(capture.last_step)
    return steps


@pytest.mark.parametrize("where", ["local", pytest.param("s3", marks=pytest.mark.integration)])
def test_horizon_stops_below_a_step_reserved_but_not_committed(where, tmp_path, request):
    if where == "s3":
        endpoint = request.getfixturevalue("s3_env").endpoint_url
        uri = f"s3://{request.getfixturevalue('s3_bucket')}/held"
    else:
        endpoint, uri = "", str(tmp_path / "store")
    before = _write_steps(uri, 3, endpoint or None)  # steps 0-2, committed
    holder = _spawn(HOLDER, uri, endpoint, stdin=subprocess.PIPE)
    held = int(holder.stdout.readline())
    try:
        assert held == before[-1] + 1
        after = _write_steps(uri, 4, endpoint or None)  # another process commits steps after the held one
        assert min(after) > held
        reader = open_capture(uri, endpoint_url=endpoint or None)
        assert reader.steps("predict") == before + after  # the held step is not committed
        assert reader.committed_horizon("predict") == held - 1
        assert reader.committed_horizon("predict", stale_after=0.0) == after[-1]  # a stale lease is passed over

        # The monitor pass that runs now sees steps 0-2 only, and its watermark stays below the held step.
        if where == "s3":  # the monitor opens the store by its URI alone
            request.getfixturevalue("monkeypatch").setenv("AWS_ENDPOINT_URL", endpoint)
        state = tmp_path / "monitor"
        collected = collect_new_captures(uri, state)
        assert collected.new_steps == before
        Watermark(capture_uri=uri, last_step=max(collected.new_steps)).save(state / "watermark.json")
        assert collect_new_captures(uri, state).chunks == []
    finally:
        holder.stdin.close()  # the holder commits its step and releases its lease
        assert holder.wait(timeout=120) == 0, holder.stderr.read()[-3000:]
    collected = collect_new_captures(uri, state)
    assert collected.new_steps == [held, *after], "the late step was lost to the monitor"
    assert open_capture(uri, endpoint_url=endpoint or None).committed_horizon("predict") == after[-1]


def test_horizon_passes_a_step_whose_writer_was_killed(tmp_path):
    uri = str(tmp_path / "store")
    holder = _spawn(HOLDER, uri, "", stdin=subprocess.PIPE)
    held = int(holder.stdout.readline())
    after = _write_steps(uri, 2)
    reader = open_capture(uri)
    assert reader.committed_horizon("predict") == held - 1
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert reader.steps("predict") == after  # the killed writer's step never arrived...
    assert reader.committed_horizon("predict") == after[-1]  # ...and no longer holds the monitor back
    # A new writer continues after the dead writer's lease, never reusing its numbers.
    assert min(_write_steps(uri, 1)) > after[-1]


def test_a_store_that_cannot_reserve_steps_raises_a_capture_error(tmp_path):
    import torch

    from trustops.capture import ActivationCapture, CaptureError
    from trustops.models.networks import build_classifier

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store should be")
    model = build_classifier("mlp", (64,), 10).eval()
    capture = ActivationCapture(model, str(blocker / "store"), mode="predict").attach()
    with pytest.raises(CaptureError, match="Could not reserve a predict step number"), torch.inference_mode():
        model(torch.rand(2, 64))
    capture.close()
