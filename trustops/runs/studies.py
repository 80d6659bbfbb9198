"""The trust studies as tracked jobs: a hydra-zen multirun, one MLflow run per point, and a summary run.

- :func:`run_robustness`: accuracy under PGD against ε for several model variants (experiment
  ``trustops-robustness``): one run per (variant, ε) point, tagged ``trustops_job=robustness``,
  then a ``robustness_summary`` run with the curves (PNG) and the table (CSV).
- :func:`run_reproducibility`: prediction difference between models trained on different data
  orders (experiment ``trustops-reproducibility``): one run per activation variant, tagged
  ``trustops_job=reproducibility``, then a ``reproducibility_summary`` run with a bar plot and CSV.

Every run of one invocation carries the same ``trustops_sweep`` tag.  Each trained model is
cached for the length of one invocation, so the ε points of a variant attack the same model.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from trustops.configuration import LaunchOutcome
from trustops.errors import ConfigError, DataError
from trustops.files import save_png
from trustops.lifecycle import owner_tags

ROBUSTNESS_COLUMNS = ("variant", "activation", "beta", "dp", "epsilon", "clean_accuracy", "adversarial_accuracy", "attack_success_rate")
REPRODUCIBILITY_COLUMNS = ("variant", "pairs", "relative_pd_mean", "relative_pd_std", "tv_pd_mean", "tv_pd_std", "accuracy_mean")


class MissingDataError(ConfigError, DataError):
    """The study's data file does not exist (catch as either a config or a data problem)."""


# ---------------------------------------------------------------------------------------------
# A study is a multirun of trustops' one launcher (trustops.configuration.launch_config).


def launch_study(
    config: Any,
    task: Callable[[Any], Any],
    overrides: Sequence[str],
    *,
    default_sweep: Mapping[str, Sequence[Any]],
    check: Callable[[Any], Any] | None = None,
) -> LaunchOutcome:
    """Run ``task`` once per sweep point of ``config``; keys of ``default_sweep`` the user did not set are swept over its values.

    With ``check``, every point is first composed and checked (no training, nothing logged), and
    the first point's error is raised: a bad value anywhere in the sweep fails before any run.
    Otherwise every point runs even when another fails; failures come back in ``errors``.
    """
    from trustops.configuration import launch_config

    overrides = [*overrides, *_default_sweep_overrides(overrides, default_sweep)]
    if check is not None:
        checked = launch_config(check, overrides, multirun=True, config=config)
        if checked.errors:
            total = len(checked.errors) + len(checked.results)
            if total > 1:
                print(f"{len(checked.errors)} of {total} sweep points are invalid; nothing was run. The first error follows.")
            raise checked.errors[0]
    return launch_config(task, overrides, multirun=True, config=config)


def _default_sweep_overrides(overrides: Sequence[str], default_sweep: Mapping[str, Sequence[Any]]) -> list[str]:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except OverrideParseException as error:
        raise ConfigError(f"Invalid override: {str(error).splitlines()[0]}") from error
    given = {o.key_or_group for o in parsed}
    return [f"{key}={','.join(f'{v:g}' if isinstance(v, float) else str(v) for v in values)}"
            for key, values in default_sweep.items() if key not in given]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Data and models, shared by the points of one invocation.

_DATA: dict[tuple[str, str], tuple[pd.DataFrame, Any]] = {}
_MODELS: dict[str, Any] = {}


def _data_path(data) -> Path:
    from trustops.paths import project_root

    path = Path(data.path)
    path = path if path.is_absolute() else project_root() / path
    if not path.is_file():
        raise MissingDataError(
            f"Data file not found: {path}. Run `trustops prepare` to export the default digits data "
            f"(or `dvc pull {path}` to fetch it from the DVC remote)."
        )
    return path


def _load_data(data) -> tuple[pd.DataFrame, Any]:
    from trustops.data.loading import load_configured

    path = _data_path(data)
    key = (str(path), json.dumps(dataclasses.asdict(data), sort_keys=True, default=str))
    if key not in _DATA:
        # Every data option (classes, categorical and dropped columns) as `trustops train` reads them.
        _DATA[key] = load_configured(path, data)
    return _DATA[key]


def _test_tensors(frame: pd.DataFrame, info):
    from trustops.training.tensors import split_dataset

    test = split_dataset(
        frame, "test", feature_columns=info.feature_columns, label_column=info.label_column,
        split_column=info.split_column, input_shape=info.input_shape, classes=info.classes,
    )  # fmt: skip
    if len(test) == 0:
        raise DataError(f"The robustness study needs a non-empty test split. Got sizes {info.split_sizes}.")
    return test.tensors




def _clear_caches() -> None:
    _DATA.clear()
    _MODELS.clear()


# ---------------------------------------------------------------------------------------------
# MLflow


def _experiment_id(name: str) -> str:
    import mlflow

    from trustops.paths import default_tracking_uri, project_root
    from trustops.tracking import ensure_experiment

    root = project_root()
    uri = default_tracking_uri(root)
    mlflow.set_tracking_uri(uri)
    return ensure_experiment(name, uri, root)


def _resolved_yaml(cfg: Any) -> str:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(cfg, resolve=True)


def _sweep_point() -> str:
    from hydra.core.hydra_config import HydraConfig

    return " ".join(o for o in HydraConfig.get().overrides.task if not o.startswith("hydra"))


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def _print_table(title: str, table: pd.DataFrame) -> None:
    print(title)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


# ---------------------------------------------------------------------------------------------
# Robustness


def _check_robustness_point(cfg: Any) -> None:
    from configs.trust import robustness_point_from_config

    _data_path(robustness_point_from_config(cfg).base.data)


def _robustness_task(cfg: Any, *, sweep_id: str) -> dict[str, Any]:
    import mlflow

    from configs.trust import robustness_point_from_config
    from trustops.settings import TrackingSettings, TrainSettings
    from trustops.tracking import log_batch
    from trustops.training.trainer import train_classifier
    from trustops.trust.robustness import robustness_point

    point = robustness_point_from_config(cfg)
    frame, info = _load_data(point.base.data)
    variant = point.variant
    settings = TrainSettings(
        data=point.base.data,
        model=dataclasses.replace(point.base.model, activation=variant.activation, beta=variant.beta),
        trainer=point.base.trainer,
        dp=point.base.dp if variant.dp else dataclasses.replace(point.base.dp, enabled=False),
        tracking=TrackingSettings(experiment_name=point.experiment_name),
    )
    key = info.data_hash + json.dumps(settings.to_dict(), sort_keys=True, default=str)
    if key not in _MODELS:
        trained = train_classifier(frame, info, settings)
        _MODELS[key] = (trained, trained.model)
    trained, model = _MODELS[key]
    x, y = _test_tensors(frame, info)
    metrics = robustness_point(model, x, y, epsilon=point.epsilon, attack=point.attack)

    experiment_id = _experiment_id(point.experiment_name)
    run_name = f"robustness-{point.variant_name}-eps{point.epsilon:g}-{_stamp()}"
    attack = point.attack
    params = {
        "variant": point.variant_name, "activation": variant.activation, "beta": variant.beta, "dp": variant.dp,
        "epsilon": point.epsilon, "norm": attack.norm, "steps": attack.steps,
        "step_size": attack.step_size_for(point.epsilon) if point.epsilon > 0 else 0.0,
        "clamp": list(attack.clamp), "random_start": attack.random_start, "attack_seed": attack.seed,
        "n_samples": metrics.n, "model_family": settings.model.family, "max_epochs": settings.trainer.max_epochs,
        "train_seed": settings.trainer.seed,
    }  # fmt: skip
    if variant.dp:
        params["dp_target_epsilon"] = settings.dp.target_epsilon
    values = {
        "clean_accuracy": metrics.clean_accuracy,
        "adversarial_accuracy": metrics.adversarial_accuracy,
        "attack_success_rate": metrics.attack_success_rate,
    }
    if trained.dp_epsilon is not None:
        values["dp_epsilon"] = trained.dp_epsilon
    tags = {
        "trustops_job": "robustness", "activation": variant.activation, "dp": str(variant.dp).lower(),
        "data_hash": info.data_hash, "trustops_sweep": sweep_id, "sweep_point": _sweep_point(),
    }  # fmt: skip
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=owner_tags()) as run:
        log_batch(params=params, metrics=values, tags=tags)
        mlflow.log_text(_resolved_yaml(cfg), "config/resolved.yaml")
    return {
        "variant": point.variant_name, "activation": variant.activation, "beta": variant.beta, "dp": variant.dp,
        "epsilon": point.epsilon, **{k: values[k] for k in ("clean_accuracy", "adversarial_accuracy", "attack_success_rate")},
        "run_id": run.info.run_id, "experiment_name": point.experiment_name, "norm": attack.norm,
        "data_hash": info.data_hash, "config": cfg,
    }  # fmt: skip


def _run_sweep(conf: Any, default_sweep: Any, overrides: Sequence[str], *, task: Callable[..., dict[str, Any]],
               check: Callable[..., None], summary: Callable[[LaunchOutcome, str], Any]) -> int:
    """Launch one study's points under a fresh sweep id, summarise those that succeeded, then raise the first failure.

    Returns 0 when every point succeeded.  Raises the first point's error otherwise (after the summary of the points
    that succeeded), and :class:`ConfigError` for a bad override.
    """
    from functools import partial

    sweep_id = uuid.uuid4().hex[:12]
    try:
        outcome = launch_study(conf, partial(task, sweep_id=sweep_id), overrides, default_sweep=default_sweep, check=check)
    finally:
        _clear_caches()
    if outcome.results:
        summary(outcome, sweep_id)
    _report_failures(outcome)
    return 0


def run_robustness(overrides: Sequence[str]) -> int:
    """Robustness curves: one MLflow run per (variant, ε) point, then a summary run with the plot and table.

    Parameters
    ----------
    overrides
        Hydra overrides of :data:`configs.trust.RobustnessConf`, e.g. ``epsilon=0,1,2``,
        ``variant=standard,smelu``, ``trainer.max_epochs=3``, ``attack.steps=20``.

    Returns 0, or raises as :func:`_run_sweep` says.
    """
    from configs.trust import ROBUSTNESS_SWEEP, RobustnessConf

    return _run_sweep(RobustnessConf, ROBUSTNESS_SWEEP, overrides, task=_robustness_task,
                      check=_check_robustness_point, summary=_robustness_summary)  # fmt: skip


def _robustness_summary(outcome: LaunchOutcome, sweep_id: str) -> str:
    from functools import partial

    from omegaconf import OmegaConf

    from trustops.trust.robustness import plot_robustness_curves

    rows = outcome.results
    table = pd.DataFrame([{k: r[k] for k in (*ROBUSTNESS_COLUMNS, "run_id")} for r in rows])
    order = {name: i for i, name in enumerate(dict.fromkeys(table["variant"]))}
    table = table.sort_values(["variant", "epsilon"], key=lambda c: c.map(order) if c.name == "variant" else c, ignore_index=True)
    sweep_config = OmegaConf.create(OmegaConf.to_container(rows[0]["config"], resolve=True))
    sweep_config.variant = list(dict.fromkeys(table["variant"]))
    sweep_config.epsilon = sorted(set(table["epsilon"]))
    return _log_study_summary(
        "robustness", outcome, sweep_id, table, sweep_config,
        plot=partial(plot_robustness_curves, norm=rows[0]["norm"]), plot_name="robustness_curves.png",
        params={"variants": ",".join(sweep_config.variant), "epsilons": ",".join(f"{e:g}" for e in sweep_config.epsilon),
                "n_points": len(table)},
        title="Robustness (accuracy under PGD",
    )  # fmt: skip


def _log_study_summary(study: str, outcome: LaunchOutcome, sweep_id: str, table: pd.DataFrame, sweep_config: Any, *,
                       plot: Callable[[pd.DataFrame, Path], Path], plot_name: str, params: dict[str, Any], title: str) -> str:
    """One summary run of a study: its table (CSV), plot and sweep config, beside the points' runs; the table printed."""
    import mlflow
    from omegaconf import OmegaConf

    from trustops.tracking import log_batch

    rows = outcome.results
    experiment_id = _experiment_id(rows[0]["experiment_name"])
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{study}-summary-{_stamp()}", tags=owner_tags()) as run, \
            tempfile.TemporaryDirectory() as folder:  # fmt: skip
        csv = Path(folder) / f"{study}.csv"
        table.to_csv(csv, index=False)
        mlflow.log_artifact(str(csv), study)
        mlflow.log_artifact(str(plot(table, Path(folder) / plot_name)), study)
        mlflow.log_text(OmegaConf.to_yaml(sweep_config), "config/resolved.yaml")
        log_batch(
            params={**params, "overrides": " ".join(outcome.overrides)},
            tags={"trustops_job": f"{study}_summary", "trustops_sweep": sweep_id, "data_hash": rows[0]["data_hash"]},
        )  # fmt: skip
    _print_table(f"{title}; MLflow experiment {rows[0]['experiment_name']!r}, summary run {run.info.run_id}):",
                 table.drop(columns=["run_id"]))  # fmt: skip
    return run.info.run_id


# ---------------------------------------------------------------------------------------------
# Reproducibility


def _check_reproducibility_point(cfg: Any) -> None:
    from configs.trust import reproducibility_point_from_config

    _data_path(reproducibility_point_from_config(cfg).base.data)


def _reproducibility_task(cfg: Any, *, sweep_id: str) -> dict[str, Any]:
    import mlflow

    from configs.trust import reproducibility_point_from_config
    from trustops.settings import TrackingSettings, TrainSettings
    from trustops.tracking import log_batch
    from trustops.trust.reproducibility import Variant, summarize, train_pair

    point = reproducibility_point_from_config(cfg)
    frame, info = _load_data(point.base.data)
    base = TrainSettings(
        data=point.base.data, model=point.base.model, trainer=point.base.trainer, dp=point.base.dp,
        tracking=TrackingSettings(experiment_name=point.experiment_name),
    )  # fmt: skip
    variant = Variant(point.activation, point.beta)
    pairs = [train_pair(frame, info, base, variant, pair) for pair in range(point.n_pairs)]
    summary = summarize(pairs).iloc[0].to_dict()
    values = {k: float(summary[k]) for k in REPRODUCIBILITY_COLUMNS[2:]}

    experiment_id = _experiment_id(point.experiment_name)
    params = {
        "variant": point.variant_name, "activation": point.activation, "beta": point.beta, "n_pairs": point.n_pairs,
        "epochs": base.trainer.max_epochs, "dp": base.dp.enabled, "model_family": base.model.family,
        "hidden": list(base.model.hidden), "batch_size": base.trainer.batch_size, "lr": base.learning_rate,
    }  # fmt: skip
    if base.dp.enabled:
        params["dp_target_epsilon"] = base.dp.target_epsilon
    tags = {
        "trustops_job": "reproducibility", "activation": point.activation, "dp": str(base.dp.enabled).lower(),
        "data_hash": info.data_hash, "trustops_sweep": sweep_id, "sweep_point": _sweep_point(),
    }  # fmt: skip
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"reproducibility-{point.variant_name}-{_stamp()}", tags=owner_tags()) as run:
        log_batch(params=params, metrics=values, tags=tags)
        for pair in pairs:  # per pair, at the pair index as the step, to see the spread in the UI
            log_batch(metrics={"pair_relative_pd": pair.relative_pd, "pair_tv_pd": pair.total_variation_pd,
                               "pair_accuracy_a": pair.accuracy_a, "pair_accuracy_b": pair.accuracy_b}, step=pair.pair)  # fmt: skip
        mlflow.log_text(_resolved_yaml(cfg), "config/resolved.yaml")
    return {"variant": point.variant_name, "pairs": point.n_pairs, **values, "run_id": run.info.run_id,
            "experiment_name": point.experiment_name, "data_hash": info.data_hash, "config": cfg}  # fmt: skip


def run_reproducibility(overrides: Sequence[str]) -> int:
    """The reproducibility study: one MLflow run per activation variant, then a summary run with a bar plot and table.

    Parameters
    ----------
    overrides
        Hydra overrides of :data:`configs.trust.ReproducibilityConf`, e.g. ``variant=relu,smelu-1``,
        ``n_pairs=5``, ``trainer.max_epochs=5``, ``dp.enabled=true``.

    Returns 0, or raises as :func:`_run_sweep` says.
    """
    from configs.trust import REPRODUCIBILITY_SWEEP, ReproducibilityConf

    return _run_sweep(ReproducibilityConf, REPRODUCIBILITY_SWEEP, overrides, task=_reproducibility_task,
                      check=_check_reproducibility_point, summary=_reproducibility_summary)  # fmt: skip


def plot_prediction_difference(table: pd.DataFrame, path: str | Path) -> Path:
    """Bars of mean ± std (over pairs) of both PD forms, one bar per variant, to a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 3.8))
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 2)
    positions = range(len(table))
    for ax, form, title in ((axes[0], "relative_pd", "relative PD (true class)"), (axes[1], "tv_pd", "total variation PD")):
        ax.bar(positions, table[f"{form}_mean"], yerr=table[f"{form}_std"], capsize=4, color="tab:blue", alpha=0.8)
        ax.set_xticks(list(positions), [str(v) for v in table["variant"]], rotation=20)
        ax.set_title(title)
        ax.set_ylabel("mean ± std over pairs")
        ax.grid(axis="y", alpha=0.3)
    figure.suptitle("Prediction difference between models trained on different data orders")
    figure.tight_layout()
    return save_png(figure, path, dpi=100)


def _reproducibility_summary(outcome: LaunchOutcome, sweep_id: str) -> str:
    from omegaconf import OmegaConf

    rows = outcome.results
    table = pd.DataFrame([{k: r[k] for k in (*REPRODUCIBILITY_COLUMNS, "run_id")} for r in rows])
    sweep_config = OmegaConf.create(OmegaConf.to_container(rows[0]["config"], resolve=True))
    sweep_config.variant = [str(v) for v in table["variant"]]
    return _log_study_summary(
        "reproducibility", outcome, sweep_id, table, sweep_config,
        plot=plot_prediction_difference, plot_name="prediction_difference.png",
        params={"variants": ",".join(sweep_config.variant), "n_variants": len(table)},
        title="Reproducibility (prediction difference",
    )  # fmt: skip


def _report_failures(outcome: LaunchOutcome) -> None:
    if outcome.errors and len(outcome.errors) + len(outcome.results) > 1:
        print(f"{len(outcome.errors)} of {len(outcome.errors) + len(outcome.results)} sweep points failed; the first error follows.")
    if outcome.errors:
        raise outcome.errors[0]
