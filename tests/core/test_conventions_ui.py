"""`trustops ui` announces its URL only once the server answers, and says why when it never does."""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
import time

import pytest

from trustops.errors import ServiceError
from trustops.server import JOB_EXECUTION_ENV, serve_ui, server_environment, ui_command, wait_until_serving


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)


def test_the_ui_command_runs_one_worker_and_the_job_runner_only_when_asked():
    command = ui_command("sqlite:///x.db", "file:///a", host="127.0.0.1", port=5001)
    assert command[1:4] == ["-m", "mlflow", "server"]
    assert command[command.index("--workers") + 1] == "1"
    assert server_environment({})[JOB_EXECUTION_ENV] == "false"
    assert server_environment({}, jobs=True)[JOB_EXECUTION_ENV] == "true"
    assert server_environment({JOB_EXECUTION_ENV: "true"})[JOB_EXECUTION_ENV] == "true"  # the user asked in the environment


def test_a_server_that_exits_is_reported_with_its_code():
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(ServiceError, match=r"exited \(code 3\).*--port"):
        wait_until_serving(f"http://127.0.0.1:{free_port()}/", process, timeout=30, interval=0.05)


def test_a_server_that_never_answers_times_out_and_is_stopped():
    url = f"http://127.0.0.1:{free_port()}/"
    announced = []
    start = time.monotonic()
    with pytest.raises(ServiceError, match=r"did not answer at .* within 1 s.*--timeout"):
        serve_ui([sys.executable, "-c", "import time; time.sleep(60)"], {}, url, timeout=1, announce=announced.append)
    assert announced == [] and time.monotonic() - start < 15


def test_the_url_is_announced_after_the_first_answer():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    process = sleeper()
    try:
        threading.Timer(0.5, server.serve_forever).start()  # answers only after a moment
        waited = wait_until_serving(url, process, timeout=30, interval=0.1)
        assert 0.4 < waited < 30
        assert process.poll() is None
    finally:
        server.shutdown()
        process.kill()
        process.wait()


def test_the_cli_takes_the_ui_options():
    from trustops.cli import build_parser

    args = build_parser().parse_args(["ui"])
    assert (args.workers, args.jobs, args.timeout) == (1, False, 60.0)
    assert build_parser().parse_args(["ui", "--jobs", "--timeout", "5"]).jobs is True
