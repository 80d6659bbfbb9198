"""Compose hydra-zen configs from command-line overrides, with clear errors for bad ones."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from trustops.errors import ConfigError
from trustops.paths import state_dir


def hydra_overrides(overrides: Sequence[str]) -> list[str]:
    """User overrides plus where Hydra may write its own run records (inside the project state)."""
    base = state_dir() / "hydra"
    return [
        *overrides,
        f"hydra.run.dir={base}/runs/${{now:%Y-%m-%d_%H-%M-%S}}",
        f"hydra.sweep.dir={base}/multirun/${{now:%Y-%m-%d_%H-%M-%S}}",
        "hydra.job.chdir=False",
        # trustops configures logging itself; Hydra's defaults would add a second format.
        "hydra/job_logging=none",
        "hydra/hydra_logging=none",
    ]


@dataclass(frozen=True)
class LaunchOutcome:
    """What each config point returned, and the errors of the points that failed."""

    results: list[Any]
    errors: list[Exception]

    def raise_first_error(self) -> None:
        if self.errors:
            raise self.errors[0]


class _JobFailed:
    def __init__(self, error: Exception) -> None:
        self.error = error


def launch_config(
    task: Callable[[Any], Any], overrides: Sequence[str], *, multirun: bool = False, config: Any = None
) -> LaunchOutcome:
    """Run ``task`` on the composed config (default: training), once or once per sweep point.

    Every point runs even when another fails; failures come back in ``errors``.
    """
    from hydra.errors import ConfigCompositionException, OverrideParseException
    from hydra_zen import launch

    from configs.training import TrainConf, store

    store.add_to_hydra_store(overwrite_ok=True)
    config = TrainConf if config is None else config
    if not multirun:
        _reject_sweeps(overrides)

    def capture_failure(cfg: Any) -> Any:
        # Hydra would print and re-raise a failed job; trustops reports it as one line instead.
        try:
            return task(cfg)
        except Exception as error:
            return _JobFailed(error)

    try:
        batches = launch(
            config,
            capture_failure,
            overrides=hydra_overrides(overrides),
            multirun=True,  # a single run is a sweep of one point
            version_base="1.3",
            with_log_configuration=False,
        )
    except (ConfigCompositionException, OverrideParseException) as error:
        raise ConfigError(_explain_override_error(error, overrides)) from error
    values = [job.return_value for batch in batches for job in batch]
    return LaunchOutcome(
        results=[v for v in values if not isinstance(v, _JobFailed)],
        errors=[_readable(v.error) for v in values if isinstance(v, _JobFailed)],
    )


def compose_config(overrides: Sequence[str]) -> Any:
    """The training config composed with ``overrides``, without launching a Hydra job.

    No run folder and no sweeper: composing once costs a third of :func:`launch_config`'s
    one-point sweep, which is what ``trustops config`` and the checks before slow work need.
    A sweep (``a=1,2``) is refused as in :func:`launch_config`.
    """
    from hydra import compose, initialize
    from hydra.errors import ConfigCompositionException, OverrideParseException

    from configs.training import store

    store.add_to_hydra_store(overwrite_ok=True)
    _reject_sweeps(overrides)
    try:
        with initialize(version_base="1.3", config_path=None):
            return compose(config_name="train", overrides=list(overrides))
    except (ConfigCompositionException, OverrideParseException) as error:
        raise ConfigError(_explain_override_error(error, overrides)) from error


def validate_config(check: Callable[[Any], Any], overrides: Sequence[str], *, multirun: bool = False) -> list[Any]:
    """Compose the training config (every sweep point with ``multirun``) and run ``check`` on each.

    For a job that would otherwise find a bad value only after slow work (DVC, earlier sweep
    points), and for ``trustops config``.  Returns what ``check`` returned for each point;
    raises the first error, as the job itself would report it.
    """
    if multirun:
        outcome = launch_config(check, overrides, multirun=True)
        outcome.raise_first_error()
        return outcome.results
    cfg = compose_config(overrides)
    try:
        return [check(cfg)]
    except Exception as error:
        raise _readable(error) from error


def _reject_sweeps(overrides: Sequence[str]) -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except OverrideParseException as error:
        raise ConfigError(f"Invalid override: {str(error).splitlines()[0]}") from error
    sweeps = [o.input_line for o in parsed if o.is_sweep_override()]
    if sweeps:
        raise ConfigError(f"{', '.join(sweeps)} lists several values: add -m (--multirun) to run one pipeline per value.")


def _readable(error: Exception) -> Exception:
    """A settings class's own ConfigError instead of Hydra's instantiation wrapper."""
    from hydra.errors import InstantiationException
    from omegaconf.errors import MissingMandatoryValue

    if isinstance(error, InstantiationException):
        cause = error.__cause__
        if isinstance(cause, MissingMandatoryValue):
            return _readable(cause)
        return cause if isinstance(cause, ConfigError) else ConfigError(str(error).splitlines()[0])
    if isinstance(error, MissingMandatoryValue):
        key = getattr(error, "full_key", None) or "a config value"
        return ConfigError(f"{key} has no value (it is '???' in the chosen config): set it, e.g. {key}=...")
    return error


def _explain_override_error(error: Exception, overrides: Sequence[str]) -> str:
    chain, cause = [], error
    while cause is not None:
        chain.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    text = "\n".join(chain)
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    unknown = re.search(r"Could not override '([^']+)'", text)
    if unknown and ("not in struct" in text or "Key '" in text):
        key = unknown.group(1)
        group, _, field = key.rpartition(".")
        where = f"{group!r} has no field {field!r}" if group else f"{key!r} is neither a config group nor a key"
        return (
            f"Unknown config key {key!r}: {where}. "
            "List the valid keys with `trustops config` (groups: data, model, trainer, dp, tracking)."
        )
    if "Could not find" in text or "Could not load" in text:
        return f"{first_line} Available groups: data, model, trainer, dp, tracking; see `trustops config --help`."
    return f"Invalid override: {first_line}"
