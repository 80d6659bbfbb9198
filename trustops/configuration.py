"""Compose hydra-zen configs from command-line overrides, with clear errors for bad ones."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


def launch_config(
    task: Callable[[Any], Any], overrides: Sequence[str], *, multirun: bool = False, config_name: str = "train"
) -> list[Any]:
    """Run ``task`` on the composed config (once, or once per sweep point); returns each return value."""
    from hydra.errors import ConfigCompositionException, OverrideParseException
    from hydra_zen import launch

    from configs.training import TrainConf, store

    store.add_to_hydra_store(overwrite_ok=True)
    if not multirun:
        _reject_sweeps(overrides)
    try:
        # Always launched as a multirun (of one job when nothing sweeps): a failed job then
        # comes back as a value to report, where a single run would print Hydra's traceback.
        result = launch(
            TrainConf,
            task,
            overrides=hydra_overrides(overrides),
            multirun=True,
            version_base="1.3",
            with_log_configuration=False,
        )
    except (ConfigCompositionException, OverrideParseException) as error:
        raise ConfigError(_explain_override_error(error, overrides)) from error
    return [_unwrap_job(job) for batch in result for job in batch]


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


def _unwrap_job(job: Any) -> Any:
    import contextlib
    import io

    from hydra.errors import InstantiationException

    try:
        with contextlib.redirect_stderr(io.StringIO()):
            return job.return_value
    except InstantiationException as error:
        cause = error.__cause__ or error
        raise (cause if isinstance(cause, ConfigError) else ConfigError(str(error))) from error


def _explain_override_error(error: Exception, overrides: Sequence[str]) -> str:
    message = str(error).strip()
    cause = error.__cause__
    if cause is not None and "not in struct" in str(cause) or "not in struct" in message:
        key = next((o.split("=", 1)[0].lstrip("+~") for o in overrides if o.split("=", 1)[0] in message), None)
        where = f" {key!r}" if key else ""
        return (
            f"Unknown config key{where}. See the valid keys with `trustops config --show`; "
            f"groups are data, model, trainer, dp, tracking. ({message.splitlines()[0]})"
        )
    if "Could not find" in message or "Could not load" in message:
        return f"{message.splitlines()[0]}. See the available options with `trustops config --help`."
    return f"Invalid override: {message.splitlines()[0]}"
