"""A failed ZenML step's error comes back from what ZenML recorded: a trustops error as itself, any other named."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from trustops.errors import ConfigError, DataError
from trustops.runs import zenml_runs
from trustops.runs.zenml_runs import PipelineRunFailed


def failed_run(*errors: BaseException | None):
    """A pipeline run whose steps raised ``errors`` in order (``None``: the step completed), recorded as ZenML does."""
    from zenml.enums import ExecutionStatus
    from zenml.models import ExceptionInfo

    steps = {}
    for index, error in enumerate(errors):
        # ZenML's step runner records the class's import path, str(error) and the formatted traceback.
        info = None if error is None else ExceptionInfo(
            traceback=f"Traceback (most recent call last):\n  ...\n{type(error).__module__}.{type(error).__qualname__}: {error}\n",
            source=f"{type(error).__module__}.{type(error).__qualname__}", message=str(error) or None)
        status = ExecutionStatus.COMPLETED if error is None else ExecutionStatus.FAILED
        steps[f"step_{index}"] = SimpleNamespace(status=status, exception_info=info)
    return SimpleNamespace(steps=steps)


@pytest.fixture
def recorded(monkeypatch):
    """Set ``recorded.run`` to what ZenML's Client returns for any run name."""
    import zenml.client

    holder = SimpleNamespace(run=None)

    class FakeClient:
        def get_pipeline_run(self, name):
            if holder.run is None:
                raise KeyError(name)
            return holder.run

    monkeypatch.setattr(zenml.client, "Client", FakeClient)
    return holder


def test_a_trustops_error_comes_back_as_itself_with_its_whole_message(recorded):
    message = "`detect.n_permutations` must be >= 20 for alpha=0.05. Got: 10\nSet it in configs/detect.yaml."
    recorded.run = failed_run(None, ConfigError(message), DataError("later"))
    error = zenml_runs._failed_step_error("run-1")
    assert type(error) is ConfigError and str(error) == message


def test_another_error_is_named_with_its_step_and_message(recorded):
    recorded.run = failed_run(KeyError("weights"))
    error = zenml_runs._failed_step_error("run-1")
    assert isinstance(error, PipelineRunFailed)
    assert str(error) == "Step step_0 of pipeline run run-1 failed: KeyError: 'weights'"


def test_no_run_or_no_failed_step_gives_none(recorded):
    assert zenml_runs._failed_step_error("missing") is None
    recorded.run = failed_run(None, None)
    assert zenml_runs._failed_step_error("run-1") is None
