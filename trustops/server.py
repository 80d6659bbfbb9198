"""An MLflow tracking server for a team: ``mlflow server`` over the project's (or any) backend store.

By default it serves the project's own SQLite store (``.trustops/mlflow.db``, the store local
runs write), proxies artifacts to the storage setting's S3 ``mlartifacts/`` prefix (or
``.trustops/mlartifacts``), and binds to 127.0.0.1.  Clients then need no storage
credentials: they upload artifacts through the server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from trustops.capture.store import redact_url
from trustops.paths import default_artifact_root, state_dir
from trustops.storage import check_s3_location, load_storage


@dataclass(frozen=True)
class ServerPlan:
    backend_store_uri: str
    artifacts_destination: str
    host: str
    port: int
    workers: int

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", self.backend_store_uri,
            "--serve-artifacts", "--artifacts-destination", self.artifacts_destination,
            "--host", self.host, "--port", str(self.port), "--workers", str(self.workers),
        ]  # fmt: skip

    def environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """The server's environment: MLflow's background job runner (GenAI evaluation jobs,
        three more processes) is off unless the caller turned it on; trustops needs none."""
        return server_environment(base)

    def describe(self) -> str:
        return (f"MLflow tracking server on {self.url} (backend {redact_url(self.backend_store_uri)}, "
                f"artifacts proxied to {self.artifacts_destination})")  # fmt: skip


def plan_server(
    *,
    backend_store_uri: str | None = None,
    artifacts_destination: str | None = None,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 2,
    root: Path | None = None,
) -> ServerPlan:
    """Resolve the defaults, and check an S3 artifact destination answers before the server starts."""
    from trustops.errors import ConfigError

    if not 0 < port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535. Got: {port}")
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1. Got: {workers}")
    storage = load_storage(root)
    backend = backend_store_uri or f"sqlite:///{state_dir(root) / 'mlflow.db'}"
    if backend.startswith(("http://", "https://")):
        raise ConfigError(f"--backend-store-uri must be a database (SQLAlchemy URL) or a folder, not a server. Got: {redact_url(backend)}")
    destination = artifacts_destination or (storage.artifact_root if storage.is_s3 else default_artifact_root(root))
    if destination.startswith("s3://"):
        check_s3_location(destination, stores="the tracking server's artifact store", endpoint_url=storage.endpoint_url)
    return ServerPlan(backend, destination, host, port, workers)


# MLflow's background job runner (huey consumers for GenAI evaluation jobs): on by default in
# MLflow 3, three more processes that trustops never uses.
JOB_EXECUTION_ENV = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"


def server_environment(base: Mapping[str, str], *, jobs: bool | None = None) -> dict[str, str]:
    """``base`` with MLflow's job runner off; ``jobs=True`` turns it on, ``None`` keeps what ``base`` says."""
    env = {JOB_EXECUTION_ENV: "false", **base}
    if jobs is not None:
        env[JOB_EXECUTION_ENV] = "true" if jobs else "false"
    return env


def ui_command(tracking_uri: str, artifact_root: str, *, host: str, port: int, workers: int = 1) -> list[str]:
    """``mlflow server`` for one user's UI: the given store, one worker (each MLflow worker holds
    the whole app, a few hundred MB; on a small machine several were killed in a loop)."""
    return [
        sys.executable, "-m", "mlflow", "server", "--backend-store-uri", tracking_uri,
        "--default-artifact-root", artifact_root, "--host", host, "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip


def evidently_ui_command(workspace: str | Path, *, host: str, port: int) -> list[str]:
    """``evidently ui`` over the Evidently workspace ``workspace``."""
    return [sys.executable, "-m", "evidently.cli", "ui", "--workspace", str(workspace), "--host", host, "--port", str(port)]


def wait_until_serving(url: str, process: subprocess.Popen, *, timeout: float, interval: float = 0.5,
                       service: str = "MLflow") -> float:
    """Block until ``url`` answers HTTP 200; the seconds it took.

    Raises :class:`~trustops.errors.ServiceError` when the server process exits first (a port
    in use, a bad store) or when ``timeout`` seconds pass without an answer.  ``service`` names
    the server in those messages.
    """
    from trustops.errors import ServiceError

    start = time.monotonic()
    while True:
        code = process.poll()
        if code is not None:
            raise ServiceError(f"The {service} server exited (code {code}) before {url} answered; its log is above "
                               "(is the port already in use? try --port).")  # fmt: skip
        try:
            with urllib.request.urlopen(url, timeout=max(interval, 2.0)) as response:
                if response.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() - start > timeout:
            raise ServiceError(f"The {service} UI did not answer at {url} within {timeout:g} s; the server was stopped "
                               "(raise --timeout on a slow machine).")  # fmt: skip
        time.sleep(interval)


def stop(process: subprocess.Popen, *, grace: float = 10.0) -> None:
    """SIGTERM to the server's process group (``mlflow server`` runs uvicorn as a child); what is
    left of the group after ``grace`` seconds gets SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break  # the whole group is gone
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    process.wait()


def serve_ui(command: Sequence[str], env: Mapping[str, str], url: str, *, timeout: float, announce=print,
             service: str = "MLflow") -> int:
    """Start the server, announce ``url`` once it answers, then wait for it; stop it on any way out.

    ``service`` names the server (``"MLflow"``, ``"Evidently"``) in the announcement and the errors."""
    # Its own process group, so stopping it stops its workers too; Ctrl-C reaches trustops, whose
    # way out (KeyboardInterrupt, or Terminated on SIGTERM) stops the group.
    process = subprocess.Popen(list(command), env=dict(env), start_new_session=True)
    try:
        seconds = wait_until_serving(url, process, timeout=timeout, service=service)
        announce(f"{service} UI on {url} (answered after {seconds:.1f} s; Ctrl-C to stop)")
        return process.wait()
    finally:
        stop(process)
