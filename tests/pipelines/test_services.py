"""The ZenML stack registers idempotently, and `trustops ui` serves the MLflow UI on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
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


def test_ui_serves_the_mlflow_ui_on_loopback(project):
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "trustops"), "ui", "--port", str(port)],
        cwd=project.root, env=project.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group: stopping it stops any server workers too
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "the MLflow UI did not answer within 120 s"
                time.sleep(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert "MLflow" in response.read().decode()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
