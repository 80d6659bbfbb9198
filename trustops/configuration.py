"""Compose hydra-zen configs from command-line overrides, with clear errors for bad ones."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
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
    """What each config point returned, the errors of the points that failed, and the overrides launched."""

    results: list[Any]
    errors: list[Exception]
    overrides: list[str] = field(default_factory=list)

    def raise_first_error(self) -> None:
        if self.errors:
            raise self.errors[0]


class _JobFailed:
    def __init__(self, error: Exception) -> None:
        self.error = error


def launch_config(
    task: Callable[[Any], Any], overrides: Sequence[str], *, multirun: bool = False, config: Any = None
) -> LaunchOutcome:
    """Run ``task`` on the composed config, once or once per sweep point.

    ``config``: the training config by default, or a study's config (``configs.trust``): every
    job trustops launches goes through here, so a bad override reads the same everywhere.
    Every point runs even when another fails; failures come back in ``errors``.
    """
    from hydra.errors import ConfigCompositionException, OverrideParseException
    from hydra_zen import launch

    from configs.training import TrainConf, store

    store.add_to_hydra_store(overwrite_ok=True)
    study = config is not None and config is not TrainConf
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
        explained = _explain_study_override_error(error, config) if study else _explain_override_error(error, overrides)
        raise ConfigError(explained) from error
    values = [job.return_value for batch in batches for job in batch]
    return LaunchOutcome(
        results=[v for v in values if not isinstance(v, _JobFailed)],
        errors=[_readable(v.error) for v in values if isinstance(v, _JobFailed)],
        overrides=list(overrides),
    )


def compose_config(overrides: Sequence[str], *, return_hydra_config: bool = False) -> Any:
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
            return compose(config_name="train", overrides=list(overrides), return_hydra_config=return_hydra_config)
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
    text = "\n".join(_error_chain(error))
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    groups = group_options()
    unknown = re.search(r"Could not override '([^']+)'", text)
    if unknown and ("not in struct" in text or "Key '" in text or "No match" in text):
        key = unknown.group(1)
        group, _, field = key.rpartition(".")
        where = f"{group!r} has no field {field!r}" if group else f"{key!r} is neither a config group nor a key"
        known = _fields(group) if group else list(groups)
        return (
            f"Unknown config key {key!r}: {where}{_did_you_mean(field, known, prefix=f'{group}.' if group else '')}. "
            f"List the valid keys with `trustops config` (groups: {', '.join(groups)})."
        )
    missing = re.search(r"Could not (?:find|load) '([^'/]+)/([^']+)'", text)
    if missing and missing.group(1) in groups:
        group, option = missing.groups()
        options = groups[group]
        return (f"Unknown {group} option {option!r}{_did_you_mean(option, options, prefix=f'{group}=')}. "
                f"Options for {group}: {', '.join(options)} (all groups: `trustops train --info`).")  # fmt: skip
    if "Could not find" in text or "Could not load" in text:
        return f"{first_line} Available groups: {', '.join(groups)}; see `trustops train --info`."
    return f"Invalid override: {first_line}"


def _explain_study_override_error(error: Exception, config: Any) -> str:
    """A study's config has no groups: an unknown key is answered with the study's own keys."""
    text = "\n".join(_error_chain(error))
    keys = [f.name for f in dataclasses.fields(config) if f.name not in HYDRA_ZEN_KEYS]
    unknown = re.search(r"Could not override '([^']+)'", text)
    if unknown:
        key = unknown.group(1)
        return (f"Unknown config key {key!r}{_did_you_mean(key, keys)}. Valid keys: {', '.join(keys)}"
                f"{_nested_example(config)}.")  # fmt: skip
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"Invalid override: {first_line} Valid keys: {', '.join(keys)}."


def _nested_example(config: Any) -> str:
    """`` (and their fields, e.g. attack.epsilon)`` from the config's first nested group, ``""`` when it has none."""
    for outer in dataclasses.fields(config):
        default = outer.default_factory() if outer.default_factory is not dataclasses.MISSING else outer.default
        if dataclasses.is_dataclass(default):
            inner = next((f.name for f in dataclasses.fields(default) if f.name not in HYDRA_ZEN_KEYS), None)
            if inner:
                return f" (and their fields, e.g. {outer.name}.{inner})"
    return ""


def _error_chain(error: BaseException) -> list[str]:
    chain, cause = [], error
    while cause is not None:
        chain.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    return chain


def _did_you_mean(word: str, candidates: Sequence[str], *, prefix: str = "") -> str:
    """`` (did you mean 'cnn'?)`` for the closest candidates, ``""`` when none is close."""
    close = difflib.get_close_matches(word, list(candidates), n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(prefix + c) for c in close)}?)" if close else ""


def _fields(group: str) -> list[str]:
    """The keys of ``group`` in the default training config ([] when it is not a group)."""
    try:
        node = compose_config([]).get(group)
    except Exception:  # only ever a hint: never hide the error being explained
        return []
    return [k for k in node if k not in HYDRA_ZEN_KEYS] if hasattr(node, "keys") else []


# Keys hydra-zen adds for instantiation; they say nothing about the run.
HYDRA_ZEN_KEYS = frozenset({"_target_", "_convert_", "_partial_", "_recursive_", "_args_"})


def group_options() -> dict[str, list[str]]:
    """Every config group of the training config and its options, in the order they were stored."""
    from configs.training import store

    options: dict[str, list[str]] = {}
    for group in ("data", "model", "trainer", "dp", "tracking", "capture", *store.groups):
        if group and group not in options:
            options[group] = [name for _, name in store[group]]
    return options


def plain_config(cfg: Any) -> dict[str, Any]:
    """The resolved config as plain data, without hydra-zen's ``_target_``/``_convert_`` keys."""
    from omegaconf import OmegaConf

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in HYDRA_ZEN_KEYS}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(OmegaConf.to_container(cfg, resolve=True))


def config_yaml(cfg: Any) -> str:
    """``plain_config`` as YAML, in the config's own key order (what ``--cfg job`` prints)."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def short_lists(dumper: yaml.SafeDumper, data: list) -> Any:  # [1, 8, 8] on one line, as written in configs
        flow = all(not isinstance(v, (dict, list)) for v in data)
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)

    Dumper.add_representer(list, short_lists)
    return yaml.dump(plain_config(cfg), Dumper=Dumper, sort_keys=False, default_flow_style=False)


def describe_config(overrides: Sequence[str] = ()) -> str:
    """What ``--info`` prints: each group, the option these overrides choose, and the other options."""
    cfg = compose_config(overrides, return_hydra_config=True)
    choices = cfg.hydra.runtime.choices
    groups = group_options()
    width = max(map(len, groups))
    lines = ["Config groups (choose with group=option; set a field with group.field=value):"]
    for group, options in groups.items():
        chosen = choices.get(group)
        listed = ", ".join(f"{o} (chosen)" if o == chosen else o for o in options)
        lines.append(f"  {group.ljust(width)}  {listed}")
    lines.append("The chosen config: `trustops train --cfg job [overrides]`.")
    return "\n".join(lines) + "\n"


def params_file_overrides(path: str | Path) -> list[str]:
    """A DVC ``params.yaml`` (nested values) as Hydra overrides: ``{"dp": {"target_epsilon": 3}}`` ->
    ``["dp.target_epsilon=3"]``.  The DVC ``train`` stage passes its params this way, so
    ``dvc exp run -S dp.target_epsilon=3`` reaches the Hydra config."""
    import json

    import yaml

    file = Path(path)
    try:
        values = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"--params-file {file} does not exist.") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"--params-file {file} is not valid YAML: {str(error).splitlines()[0]}") from error
    if not isinstance(values, dict):
        raise ConfigError(f"--params-file {file} must hold a mapping (group: {{field: value}}). Got: {type(values).__name__}")

    def flat(node: dict, prefix: str = "") -> list[str]:
        out = []
        for key, value in node.items():
            if isinstance(value, dict):
                out.extend(flat(value, f"{prefix}{key}."))
            else:
                # JSON is valid Hydra override syntax for numbers, booleans, null, lists and quoted strings.
                out.append(f"{prefix}{key}={json.dumps(value)}")
        return out

    return flat(values)
