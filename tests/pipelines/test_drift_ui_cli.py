"""`trustops drift-ui`: its help, and one clear line when there is no Evidently workspace yet."""

from __future__ import annotations

import sys

import pytest

from trustops.cli import build_parser
from trustops.monitoring.evidently_workspace import WORKSPACE_ENV
from trustops.server import evidently_ui_command


def test_drift_ui_has_help_and_defaults_to_port_8000(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["drift-ui", "--help"])
    assert exit_info.value.code == 0 and "usage: trustops drift-ui" in capsys.readouterr().out
    args = build_parser().parse_args(["drift-ui"])
    assert (args.command, args.port, args.timeout) == ("drift-ui", 8000, 60.0)


def test_without_a_workspace_it_says_what_to_run_and_exits_2(tmp_path, monkeypatch, capsys):
    from trustops import commands

    monkeypatch.setenv(WORKSPACE_ENV, str(tmp_path / "none"))
    assert commands.drift_ui(8000) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert str(tmp_path / "none") in line and "trustops monitor" in line and "--drift-report always" in line
    assert captured.out == ""


def test_the_server_is_evidentlys_own_ui_over_the_workspace(tmp_path):
    command = evidently_ui_command(tmp_path, host="127.0.0.1", port=8123)
    assert command[:3] == [sys.executable, "-m", "evidently.cli"]
    assert command[3:] == ["ui", "--workspace", str(tmp_path), "--host", "127.0.0.1", "--port", "8123"]


def test_a_drift_ui_server_that_exits_is_named_in_the_error(tmp_path):
    import subprocess

    from trustops.errors import ServiceError
    from trustops.server import wait_until_serving

    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(ServiceError, match=r"The Evidently server exited \(code 3\)"):
        wait_until_serving("http://127.0.0.1:9/", process, timeout=30, interval=0.1, service="Evidently")
