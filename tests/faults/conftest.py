"""Fault injection: real ``trustops`` processes stopped by a real signal at a named failpoint.

A test starts ``trustops`` as a child process with ``TRUSTOPS_FAILPOINT=<name>``; when the job
reaches :func:`trustops.failpoints.failpoint` with that name it writes its ready file and waits
there, and the test sends SIGKILL or SIGTERM.  Several processes may wait at once (each has its
own ready file), so one module can stop a job at every stage boundary in parallel.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.pipelines.conftest import Project, project  # noqa: F401  (the same fresh project per module)

TRUSTOPS = str(Path(sys.executable).parent / "trustops")


@dataclass(frozen=True)
class Stopped:
    """How a process ended after its signal."""

    failpoint: str
    signal: signal.Signals
    pid: int
    returncode: int
    seconds_to_ready: float  # from start to reaching the failpoint
    seconds_to_exit: float  # from the signal to the process's exit
    output: str  # stdout and stderr together


class FailpointProcess:
    """``trustops *args`` in ``project``, started now, that waits at ``failpoint`` to be signalled."""

    def __init__(self, project: Project, failpoint: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.failpoint = failpoint
        folder = project.root / ".faults"
        folder.mkdir(exist_ok=True)
        stem = f"{failpoint}-{time.monotonic_ns()}"
        self.ready_file = folder / f"{stem}.ready"
        self.log = folder / f"{stem}.log"
        self.started = time.monotonic()
        self.ready_at: float | None = None
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [TRUSTOPS, *args], cwd=project.root, stdout=log, stderr=subprocess.STDOUT,
                env={**project.env, **(env or {}), "TRUSTOPS_FAILPOINT": failpoint,
                     "TRUSTOPS_FAILPOINT_READY": str(self.ready_file)},
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def is_ready(self) -> bool:
        """True once the process waits at its failpoint; fails the test if it ended before reaching it."""
        if self.ready_at is None and self.ready_file.exists():
            self.ready_at = time.monotonic()
        if self.ready_at is None and self.process.poll() is not None:
            pytest.fail(f"trustops exited with {self.process.returncode} before failpoint {self.failpoint}:\n"
                        f"{self.output()[-3000:]}")
        return self.ready_at is not None

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not self.is_ready():
            if time.monotonic() > deadline:
                self.process.kill()
                pytest.fail(f"trustops did not reach failpoint {self.failpoint} in {timeout:.0f} s:\n{self.output()[-3000:]}")
            time.sleep(0.05)

    def stop(self, sig: signal.Signals, timeout: float = 60) -> Stopped:
        """Send ``sig`` (the process must be waiting at its failpoint) and wait for it to exit."""
        self.wait_ready()
        sent = time.monotonic()
        self.process.send_signal(sig)
        try:
            returncode = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"trustops was still running {timeout:.0f} s after {sig.name} at {self.failpoint}")
        return Stopped(self.failpoint, sig, self.process.pid, returncode, self.ready_at - self.started, time.monotonic() - sent, self.output())

    def cleanup(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def stop_all_when_ready(processes: dict[str, FailpointProcess], sig: signal.Signals, timeout: float = 300) -> dict[str, Stopped]:
    """Signal each process the moment it reaches its failpoint (so the others get the CPU); returns them by failpoint."""
    stopped: dict[str, Stopped] = {}
    deadline = time.monotonic() + timeout
    while len(stopped) < len(processes):
        for name, process in processes.items():
            if name not in stopped and process.is_ready():
                stopped[name] = process.stop(sig)
        if time.monotonic() > deadline:
            pytest.fail(f"not every process reached its failpoint in {timeout:.0f} s: waiting for "
                        f"{sorted(set(processes) - set(stopped))}")
        time.sleep(0.05)
    return stopped


@pytest.fixture
def failpoint_processes():
    """Start :class:`FailpointProcess` es through this; any left running are killed at teardown."""
    started: list[FailpointProcess] = []

    def start(project: Project, failpoint: str, *args: str, env: dict[str, str] | None = None) -> FailpointProcess:
        process = FailpointProcess(project, failpoint, *args, env=env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.cleanup()
