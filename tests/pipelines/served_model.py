"""A model trained and served through the real CLI, and the trustops UIs a user opens over its project.

Shared by the end-to-end tests that serve and monitor a registered model (each in its own copy
of the session's smoke-model project) and look at the result in a UI server started as a user
starts it.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from tests.pipelines.conftest import Project
from trustops.capture import ActivationCapture

if TYPE_CHECKING:
    from trustops.registry import RegisteredModel


@dataclass(frozen=True)
class ServedModel:
    """A registered model loaded from MLflow, and the digits test split to serve through it."""

    found: RegisteredModel
    module: torch.nn.Module
    images: torch.Tensor  # shape-(N, 1, 8, 8): the test split of the project's digits data

    def serve(self, batch: torch.Tensor) -> None:
        """One prediction on ``batch`` with capture on, as a served model writes its activations."""
        with ActivationCapture(self.module, self.found.capture_uri, mode="predict"), torch.no_grad():
            self.module(batch)


def load_served(project: Project, name: str) -> ServedModel:
    """The latest registered version of ``name`` in ``project``, loaded, with the project's digits test split."""
    import pandas as pd

    from trustops.registry import resolve_registered_model

    found = resolve_registered_model(name, "latest", project.client())
    with project.mlflow_globals() as mlflow:
        module = mlflow.pytorch.load_model(found.model_uri).eval()
    test = pd.read_parquet(project.root / "data" / "digits.parquet").query("split == 'test'")
    images = torch.from_numpy(test.filter(like="pixel_").to_numpy("float32")).reshape(-1, 1, 8, 8)
    return ServedModel(found, module, images)


def health_answers(url: str, log: str) -> bool:
    """Ready when ``<url>/health`` answers 200 (MLflow's server and UI)."""
    with contextlib.suppress(OSError):
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            return response.status == 200
    return False


@contextlib.contextmanager
def trustops_ui(project: Project, command: str, *args: str, ready: Callable[[str, str], bool] = health_answers,
                env: dict[str, str] | None = None, timeout: float = 120) -> Iterator[str]:
    """``trustops <command> --port <free port> *args`` on loopback, as a user starts it; yields its URL.

    Waits until ``ready(url, log so far)`` holds; fails with the log's tail if the command exits
    first, or if it is not ready within ``timeout`` seconds.  Stopped with its process group.
    """
    from tests.team.conftest import free_port, stop_process_group

    port = free_port()
    log = project.root / f"{command}-{port}.log"
    with open(log, "wb") as output:
        process = subprocess.Popen([str(Path(sys.executable).parent / "trustops"), command, "--port", str(port), *args],
                                   cwd=project.root, env={**project.env, **(env or {})}, stdout=output,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)  # its own process group: stopping it stops the server too
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while not ready(url, log.read_text(errors="replace")):
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, f"trustops {command} was not ready within {timeout:.0f} s"
            time.sleep(0.5)
        yield url
    finally:
        stop_process_group(process)
