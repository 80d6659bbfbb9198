"""The ZenML stack registers idempotently, and `trustops ui` serves the MLflow UI on loopback (one worker,
no job runner), printing its URL once it answers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import urllib.request
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_stack_registration_is_idempotent(project):
    first = project.trustops("stack")
    second = project.trustops("stack")
    assert first.returncode == 0, first.stderr[-2000:]
    assert second.returncode == 0, second.stderr[-2000:]
    for output in (first.stdout, second.stdout):
        assert "Active ZenML stack: trustops" in output
        assert "trustops_mlflow (mlflow)" in output
    assert (project.root / ".trustops" / "zenml").is_dir()  # the project's own ZenML store


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_tree(pid: int) -> list[str]:
    """The command lines of ``pid`` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        try:
            found.append((Path("/proc") / str(current) / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
        todo.extend(children.get(current, []))
    return found


def test_ui_serves_the_mlflow_ui_on_loopback_with_one_worker_and_no_job_runner(project):
    port = free_port()
    env = {k: v for k, v in project.env.items() if k != "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"}
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "trustops"), "ui", "--port", str(port), "--timeout", "120"],
        cwd=project.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group: stopping it stops any server workers too
    )
    try:
        # The URL is printed only once the UI answers: read until that line, then it must answer at once.
        lines = []
        for line in server.stdout:
            lines.append(line)
            if "MLflow UI on" in line:
                break
        assert f"MLflow UI on http://127.0.0.1:{port}/" in lines[-1], "".join(lines)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.status == 200
            assert "MLflow" in response.read().decode()
        tree = process_tree(server.pid)
        # trustops, `mlflow server`, and one uvicorn process (--workers 1 runs no worker pool); no huey job runner.
        assert len(tree) == 3, tree
        assert [c for c in tree if "uvicorn" in c and "--workers 1" in c] == [tree[2]], tree
        assert not any("huey" in c for c in tree), tree
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
