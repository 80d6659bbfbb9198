"""An MLflow tracking server for a team: ``mlflow server`` over the project's (or any) backend store.

By default it serves the project's own SQLite store (``.trustops/mlflow.db``, the store local
runs write), proxies artifacts to the storage setting's S3 ``mlartifacts/`` prefix (or
``.trustops/mlartifacts``), and binds to 127.0.0.1.  Clients then need no storage
credentials: they upload artifacts through the server.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
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
        return {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **base}

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
