"""The check stage on forked workers decides exactly as one process does (trustops.monitoring.parallel)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from trustops.capture import CapturedStep
from trustops.monitoring.budget import DEFAULT_MONITORS, page_levels
from trustops.monitoring.batch_check import Traffic, batch_views, check_batch, fit_monitors
from trustops.monitoring.parallel import MIN_BATCHES_FOR_WORKERS, check_stream
from trustops.monitoring.reference import Reference
from trustops.monitoring.squeezing import squeezing_scores


class _Digitsish(nn.Module):
    """A small MLP with the ``penultimate``/``head`` layout the loop expects."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU())
        self.head = nn.Linear(8, 3)
        for parameter in self.parameters():
            parameter.data = torch.randn(parameter.shape, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _step(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, step: int) -> CapturedStep:
    with torch.no_grad():
        penultimate = model.body(inputs)
        outputs = model.head(penultimate)
    return CapturedStep("predict", step, {"inputs": inputs, "penultimate": penultimate, "outputs": outputs},
                        {"labels": labels.tolist()})


@pytest.fixture(scope="module")
def loop_inputs():
    return fitted_monitors_and_batches()


def fitted_monitors_and_batches():
    """The default monitors fitted on a seeded reference, and a dozen batches (every third shifted)."""
    model = _Digitsish().eval()
    generator = torch.Generator().manual_seed(1)
    reference_inputs = torch.randint(0, 17, (240, 16), generator=generator).float()
    reference_labels = torch.randint(0, 3, (240,), generator=generator)
    with torch.no_grad():
        penultimate = model.body(reference_inputs)
        probabilities = torch.softmax(model.head(penultimate), dim=1)
    reference = Reference(penultimate=penultimate, probabilities=probabilities, inputs=reference_inputs,
                          labels=reference_labels, value_range=(0.0, 16.0),
                          squeezing_scores=squeezing_scores(model, reference_inputs, (0.0, 16.0)).numpy())
    fitted, failures = fit_monitors(list(DEFAULT_MONITORS), reference, page_levels(list(DEFAULT_MONITORS), 500.0))
    assert not failures
    batches = []
    for step in range(MIN_BATCHES_FOR_WORKERS + 4):
        inputs = torch.randint(0, 17, (60, 16), generator=generator).float()
        if step % 3 == 2:
            inputs = (inputs * 1.5).clamp(0, 16)  # some shifted batches, so some p-values are small
        batches.append(Traffic(step=_step(model, inputs, torch.randint(0, 3, (60,), generator=generator), step),
                               model=model, value_range=(0.0, 16.0)))
    return fitted, batches


def _decisions(checks):
    return [(check.step, {name: (result.alarm, result.details.get("p_value")) for name, result in check.results.items()},
             check.failures) for _, check in checks]


def test_forked_workers_give_the_same_p_values_and_decisions_as_one_process(loop_inputs):
    fitted, batches = loop_inputs
    serial = _decisions(check_stream(fitted, iter(batches), batches=len(batches), workers=1))
    parallel = _decisions(check_stream(fitted, iter(batches), batches=len(batches), workers=2))
    assert parallel == serial
    assert [step for step, _, _ in serial] == list(range(len(batches)))  # in capture order
    assert all(set(scores) == set(DEFAULT_MONITORS) for _, scores, _ in serial)
    assert any(alarm for _, scores, _ in serial for alarm, _ in scores.values())  # the comparison covers alarms too


def test_a_batch_p_values_do_not_depend_on_the_batches_checked_before_it(loop_inputs):
    fitted, batches = loop_inputs
    last = batches[-1]
    alone = check_batch(fitted, last.step.step, batch_views(fitted, last))
    after_others = _decisions(check_stream(fitted, iter(batches), batches=len(batches), workers=1))[-1]
    assert _decisions([(None, alone)])[0] == after_others


def test_items_that_are_not_batches_pass_through_in_order(loop_inputs):
    fitted, batches = loop_inputs
    marker = object()
    items = [*batches[:MIN_BATCHES_FOR_WORKERS], marker, *batches[MIN_BATCHES_FOR_WORKERS:]]
    out = list(check_stream(fitted, iter(items), batches=len(items), workers=2))
    assert [item for item, _ in out] == items
    assert out[MIN_BATCHES_FOR_WORKERS][1] is None and all(check is not None for item, check in out if item is not marker)


def test_a_bad_worker_count_is_a_clear_configuration_error(monkeypatch):
    from trustops.errors import ConfigError
    from trustops.monitoring.parallel import monitor_workers

    monkeypatch.setenv("TRUSTOPS_MONITOR_WORKERS", "two")
    with pytest.raises(ConfigError, match="TRUSTOPS_MONITOR_WORKERS"):
        monitor_workers()
    monkeypatch.setenv("TRUSTOPS_MONITOR_WORKERS", "3")
    assert monitor_workers() == 3


# SIGTERM arrives while forked workers hold batches: the parent unwinds (cron, systemd and
# Kubernetes stop a pass this way) and takes its workers with it.
_TERMINATED_WHILE_CHECKING = """
import os, sys, time
from pathlib import Path
from tests.steps.test_parallel_checks import fitted_monitors_and_batches
from trustops.cli import _terminate_like_interrupt
from trustops.errors import Terminated
from trustops.monitoring.parallel import check_stream

fitted, batches = fitted_monitors_and_batches()

def slow_captures():
    yield from batches
    Path(sys.argv[1]).write_text(str(os.getpid()))  # every batch sent to the workers
    while True:
        time.sleep(0.05)  # a slow capture read; Python runs the SIGTERM handler between sleeps

_terminate_like_interrupt()
try:
    for _ in check_stream(fitted, slow_captures(), batches=len(batches), workers=2):
        pass
except Terminated:
    sys.exit(Terminated.exit_code)
"""


def test_sigterm_while_workers_check_ends_the_pass_and_its_workers(tmp_path):
    from trustops.errors import Terminated

    ready = tmp_path / "ready"
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen([sys.executable, "-c", _TERMINATED_WHILE_CHECKING, str(ready)], cwd=root,
                               start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert process.poll() is None, process.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "the pass never sent its batches"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        output = process.communicate(timeout=30)[0]
        assert process.returncode == Terminated.exit_code, output[-3000:]
        assert time.monotonic() - sent < 10, "the pass did not stop promptly on SIGTERM"
        # Its forked workers share its process group: none is left behind.
        gone_by = time.monotonic() + 5
        while True:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                break
            assert time.monotonic() < gone_by, "a check worker outlived the terminated pass"
            time.sleep(0.1)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def test_input_tables_name_the_data_columns_when_there_is_one_name_per_input():
    from trustops.monitoring.batch_check import input_table

    inputs = torch.zeros(3, 1, 2, 2)
    assert list(input_table(inputs, ("a", "b", "c", "d")).columns) == ["a", "b", "c", "d"]
    # No names, or names that do not match the flattened inputs: positional names, never a misnamed column.
    assert list(input_table(inputs).columns) == ["x0", "x1", "x2", "x3"]
    assert list(input_table(inputs, ("a", "b")).columns) == ["x0", "x1", "x2", "x3"]
