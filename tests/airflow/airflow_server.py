"""A real Apache Airflow on loopback for the tests: its own virtualenv, SQLite, LocalExecutor.

Airflow's virtualenv is installed from ``requirements/airflow-lock.txt`` with uv, once per lock
(``.trustops/airflow-venv-<lock digest>`` in the checkout, so a re-run reuses it; a clean clone,
as in CI, pays the install). The three services run as ``airflow standalone`` would run them,
minus its log servers, which bind every interface: the API server on 127.0.0.1 (the tasks report
to it), the DAG processor (rescanning the DAG folder every few seconds instead of 300), and the
scheduler with ``--skip-serve-logs``. Each service gets its own session; stopping kills every
process of those sessions and every descendant, task subprocesses included.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCK = REPO_ROOT / "requirements" / "airflow-lock.txt"
UV = Path(sys.executable).parent / "uv"


def airflow_virtualenv(cache_root: Path = REPO_ROOT / ".trustops") -> Path:
    """Airflow's virtualenv for the current lock, installed on first use; returns its folder."""
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:12]
    venv = cache_root / f"airflow-venv-{digest}"
    done = venv / ".installed"
    cache_root.mkdir(parents=True, exist_ok=True)
    with open(cache_root / f".airflow-venv-{digest}.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # two test processes never install into one folder
        if done.is_file():
            return venv
        shutil.rmtree(venv, ignore_errors=True)  # a half-made one from an interrupted install
        # The interpreter trustops' own virtualenv was made from: Python 3.11, as the lock is.
        base_python = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([str(UV), "venv", "--quiet", "--python", base_python, str(venv)], check=True, timeout=120)
        # Bytecode compiled once here: with PYTHONDONTWRITEBYTECODE (CI) every Airflow process,
        # every task included, would otherwise compile Airflow's modules again at start.
        subprocess.run([str(UV), "pip", "sync", "--quiet", "--compile-bytecode", "--python", str(venv / "bin" / "python"),
                        str(LOCK)], check=True, timeout=900)
        done.write_text(digest)
    return venv


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Airflow:
    venv: Path
    home: Path
    dag_folder: Path
    port: int
    env: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.venv / "bin" / "airflow"), *args], env=self.env, cwd=self.home,
                              capture_output=True, text=True, timeout=timeout)

    def start(self, name: str, *args: str) -> None:
        log = open(self.home / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(
            [str(self.venv / "bin" / "airflow"), *args], env=self.env, cwd=self.home, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def log(self, name: str, tail: int = 4000) -> str:
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.is_file() else ""

    def logs(self) -> str:
        return "\n".join(f"--- {name}.log ---\n{self.log(name)}" for name in self.processes)

    def wait_until_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise AssertionError(f"airflow {name} exited with {process.returncode}:\n{self.log(name)}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/monitor/health", timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"Airflow's API server did not answer within {timeout:.0f} s:\n{self.logs()}")
            time.sleep(1)

    def task_logs(self, dag_id: str) -> list[Path]:
        return sorted((self.home / "logs").glob(f"dag_id={dag_id}/**/*.log"))

    def stop(self) -> list[str]:
        """SIGTERM every process of the services' sessions and their descendants, SIGKILL what is left; returns survivors."""
        import psutil

        targets: dict[int, psutil.Process] = {}
        for process in self.processes.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                root = psutil.Process(process.pid)
                targets[root.pid] = root
                targets.update({child.pid: child for child in root.children(recursive=True)})
        # Task subprocesses may have started sessions of their own; the session ids catch the rest.
        sessions = {os.getsid(p.pid) for p in self.processes.values() if p.poll() is None}
        for candidate in psutil.process_iter():
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                if os.getsid(candidate.pid) in sessions:
                    targets[candidate.pid] = candidate
        for target in targets.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                target.send_signal(signal.SIGTERM)
        _, alive = psutil.wait_procs(list(targets.values()), timeout=20)
        for target in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                target.kill()
        psutil.wait_procs(alive, timeout=10)
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        survivors = []
        for target in targets.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                if target.is_running() and target.status() != psutil.STATUS_ZOMBIE:
                    survivors.append(f"{target.pid} {' '.join(target.cmdline())[:200]}")
        return survivors


def dag_folder_of(home: Path) -> Path:
    folder = home / "dags"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def running_airflow(home: Path, *, extra_env: dict[str, str] | None = None, timeout: float = 180) -> Iterator[Airflow]:
    """Airflow's API server, DAG processor and scheduler on loopback until the block ends (DAG folder: ``home/dags``)."""
    venv = airflow_virtualenv()
    dag_folder = dag_folder_of(home)
    port = free_port()
    # Nothing of the test's own environment that could steer Airflow's interpreter or stores.
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "MLFLOW_", "ZENML_", "TRUSTOPS_", "PYTHON", "VIRTUAL_ENV"))}
    env = {
        **base,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dag_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        # One secret for every service: the API server signs the tokens the tasks present.
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        # New DAG files are found within seconds, not Airflow's default 5 minutes.
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    airflow = Airflow(venv=venv, home=home, dag_folder=dag_folder, port=port, env=env)
    migrated = airflow.command("db", "migrate", timeout=300)
    assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
    try:
        airflow.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(port))
        airflow.start("dag-processor", "dag-processor")
        airflow.start("scheduler", "scheduler", "--skip-serve-logs")
        airflow.wait_until_healthy(timeout)
        yield airflow
    finally:
        survivors = airflow.stop()
        assert not survivors, f"Airflow processes survived the teardown: {survivors}"
