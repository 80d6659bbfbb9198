"""`mlflow models serve` of a registered model captures every request (a real server, real HTTP)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from trustops.capture import open_capture


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM the server's process group; SIGKILL it if it has not gone in 15 s."""
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=5)


def _wait_until_up(server: subprocess.Popen, url: str, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the server exited with {server.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise AssertionError(f"the server did not answer /ping in {timeout} s:\n{log.read_text()[-4000:]}")


def _steps(uri: str) -> list[int]:
    try:
        return open_capture(uri).steps("predict")
    except Exception:  # no PREDICT step written yet
        return []


def _wait_for_steps(uri: str, count: int, timeout: float = 20) -> list[int]:
    deadline = time.monotonic() + timeout
    while (steps := _steps(uri)) and len(steps) < count or not steps:
        if time.monotonic() > deadline:
            break
        time.sleep(0.25)
    return steps


def _digit_rows(project_root: Path, n: int) -> np.ndarray:
    frame = pd.read_parquet(project_root / "data" / "digits.parquet")
    return frame[[c for c in frame.columns if c.startswith("pixel_")]].head(n).to_numpy(dtype=np.float32)


def test_served_model_captures_each_request(trained, tmp_path):
    rows = _digit_rows(trained.project.root, 7).reshape(7, 1, 8, 8)  # the signature's image layout
    before = _steps(trained.capture_uri)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    # The scoring server runs `uvicorn` from PATH: the venv's, as with an activated venv.
    bin_dir = str(Path(sys.executable).parent)
    env = {**trained.project.env, "MLFLOW_TRACKING_URI": trained.project.tracking_uri,
           "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    with open(log, "w") as out:
        server = subprocess.Popen(
            [str(Path(bin_dir) / "mlflow"), "models", "serve", "-m", f"models:/{trained.name}/{trained.version}",
             "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
            cwd=trained.project.root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        _wait_until_up(server, url, log)
        answers = []
        for batch in (rows[:4], rows[4:]):
            request = urllib.request.Request(
                f"{url}/invocations", data=json.dumps({"inputs": batch.tolist()}).encode(),
                headers={"Content-Type": "application/json"}, method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    answers.append(np.asarray(json.load(response)["predictions"]))
            except urllib.error.HTTPError as error:
                raise AssertionError(f"{error}: {error.read()[:2000]!r}\n{log.read_text()[-3000:]}") from None
        steps = _wait_for_steps(trained.capture_uri, len(before) + 2)
    finally:
        _stop(server)
    assert server.returncode is not None

    assert [a.shape for a in answers] == [(4, 10), (3, 10)]
    for answer in answers:
        np.testing.assert_allclose(answer.sum(axis=1), 1.0, rtol=1e-5)  # probabilities

    new = steps[len(before):]
    assert len(new) == 2, (before, steps, log.read_text()[-3000:])
    assert new == sorted(new) and (not before or new[0] > before[-1])  # monotonic, continuing
    reader = open_capture(trained.capture_uri)
    for step, batch, answer in zip(new, (rows[:4], rows[4:]), answers):
        tensors = reader.read_step("predict", step).tensors
        assert {"inputs", "penultimate", "outputs"} <= set(tensors)
        np.testing.assert_allclose(tensors["inputs"].numpy(), batch)
        assert tensors["penultimate"].shape[0] == len(batch)
        np.testing.assert_allclose(torch.softmax(tensors["outputs"], -1).numpy(), answer, rtol=1e-4, atol=1e-6)


def test_the_registered_model_still_loads_as_pytorch(trained):
    # Both URIs: an earlier in-process `predict` may have left the registry URI on another project's copy.
    with trained.project.mlflow_globals() as mlflow:
        model = mlflow.pytorch.load_model(f"models:/{trained.name}/{trained.version}")
    assert isinstance(model, torch.nn.Module)
    assert "penultimate" in dict(model.named_modules())
