"""`trustops monitor` prints a no-op pass, which records no MLflow run, as one line and exits 0."""

import os

import pytest

import trustops.runs.monitoring
from trustops.cli import main
from trustops.monitoring.budget import PassOptions
from trustops.monitoring.records import PassReport


@pytest.fixture
def throwaway_project(tmp_path, monkeypatch):
    """A throw-away project; the variables `main` sets (ZenML's store, S3) are undone afterwards."""
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.setenv("TRUSTOPS_PROJECT_ROOT", str(tmp_path))
    saved = dict(os.environ)
    yield tmp_path
    os.environ.clear()
    os.environ.update(saved)


def test_a_no_op_pass_without_a_run_id_is_reported_with_the_pending_alerts(throwaway_project, monkeypatch, capsys):
    calls = []

    def no_op(name, version, options):
        calls.append((name, version, options))
        report = PassReport()
        report.pending_alerts = 2
        return report, None

    monkeypatch.setattr(trustops.runs.monitoring, "run_monitor", no_op)
    assert main(["monitor", "--model", "digits:3"]) == 0
    assert calls == [("digits", "3", PassOptions())]  # no flags: every monitor at the default budget
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "No new captured batches for digits; nothing to monitor.",
        "2 alert(s) not yet delivered stay in the outbox for the next run.",
    ]
