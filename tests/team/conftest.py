"""Team set-ups with real servers: an MLflow tracking server (``trustops server``) and S3 (SeaweedFS)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pipelines.conftest import REPO_ROOT, Project

TRUSTOPS = str(Path(sys.executable).parent / "trustops")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(project: Project, *args: str, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """The real CLI in a child process, with extra environment variables."""
    return subprocess.run([TRUSTOPS, *args], cwd=project.root, env={**project.env, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM to a server started with ``start_new_session=True`` and its workers; SIGKILL after 20 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.contextmanager
def tracking_server(project: Project, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Iterator[str]:
    """``trustops server`` on a free loopback port until the block ends; yields its URL."""
    port = free_port()
    log_path = project.root / f"mlflow-server-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [TRUSTOPS, "server", "--port", str(port), "--workers", "1", *args],
            cwd=project.root, env={**project.env, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,  # its own process group: stopping it stops its workers too
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if process.poll() is not None:
                    raise AssertionError(f"trustops server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
                assert time.monotonic() < deadline, f"the tracking server did not answer within {timeout:.0f} s"
                time.sleep(0.5)
            yield url
        finally:
            stop_process_group(process)


def new_project(root: Path, *, dvc: bool = False) -> Project:
    """A project folder with the digits data; ``dvc=True`` makes it a DVC repository (as a clone is)."""
    from trustops.data.digits import export_digits  # imports scikit-learn: not at collection

    root.mkdir(parents=True, exist_ok=True)
    if dvc:
        for name in ("dvc.yaml", "dvc.lock", ".dvc/config", ".dvcignore", "data/.gitignore", "trustops/data/digits.py",
                     "trustops/data/split.py"):  # the prepare stage's dependencies, as in a clone
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((REPO_ROOT / name).read_bytes())
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    else:
        (root / "dvc.yaml").write_text("stages: {}\n")
    export_digits(root / "data" / "digits.parquet")
    return Project(root)


@pytest.fixture(scope="module")
def team_project(tmp_path_factory) -> Project:
    return new_project(tmp_path_factory.mktemp("team"))


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests leave files for people to look at (screenshots): ``TRUSTOPS_TEST_ARTIFACTS`` or .trustops/test-artifacts."""
    path = Path(os.environ.get("TRUSTOPS_TEST_ARTIFACTS", REPO_ROOT / ".trustops" / "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path
