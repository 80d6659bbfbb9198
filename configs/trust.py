"""Configs of the trust studies, each run as a hydra-zen multirun (one job, and one MLflow run, per point).

``RobustnessConf``: one point is a model variant and a PGD radius, swept by default over
``variant=standard,dp,smelu`` and ``epsilon=0,0.5,1,2,4``.  Variants are defined in
``variants`` (``variants.smelu.beta=2``; add one with ``+variants.mine={activation:gelu,beta:1,dp:false}``);
``dp`` holds the DP-SGD settings of the variants that have ``dp: true``.

``ReproducibilityConf``: one point is an activation variant, swept by default over
``variant=relu,smelu-0.5,smelu-1,smelu-2,gelu`` (``smelu-<beta>`` sets the SmeLU width);
each trains ``n_pairs`` pairs of models that differ only in data order.  DP is off unless
``dp.enabled=true``.

Data, model and trainer fields are those of the training config (``trainer.max_epochs=2``,
``data.path=...``, ``model.hidden=[32]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hydra_zen import builds, make_config

from configs.training import DIGITS_IMAGE_SHAPE, DIGITS_VALUE_RANGE, DataConf, DPConf, ModelConf, TrainerConf
from trustops.errors import ConfigError
from trustops.settings import DataSettings, DPSettings, ModelSettings, TrainerSettings
from trustops.trust.robustness import DEFAULT_EPSILONS, DEFAULT_VARIANTS, AttackSettings, RobustnessVariant, check_epsilon

ROBUSTNESS_SWEEP = {"variant": tuple(DEFAULT_VARIANTS), "epsilon": DEFAULT_EPSILONS}
REPRODUCIBILITY_SWEEP = {"variant": ("relu", "smelu-0.5", "smelu-1", "smelu-2", "gelu")}

AttackConf = builds(AttackSettings, populate_full_signature=True, hydra_convert="all")

_digits = DataConf(
    path="data/digits.parquet",
    image_shape=list(DIGITS_IMAGE_SHAPE),
    value_range=list(DIGITS_VALUE_RANGE),
    classes=list(range(10)),
)

RobustnessConf = make_config(
    variant="standard",
    epsilon=0.0,
    variants={name: {"activation": v.activation, "beta": v.beta, "dp": v.dp} for name, v in DEFAULT_VARIANTS.items()},
    attack=AttackConf(),
    data=_digits,
    model=ModelConf(family="mlp"),
    trainer=TrainerConf(),
    dp=DPConf(enabled=True, target_epsilon=8.0),
    experiment_name="trustops-robustness",
)

ReproducibilityConf = make_config(
    variant="relu",
    n_pairs=3,
    data=_digits,
    model=ModelConf(family="mlp"),
    trainer=TrainerConf(),
    # Off by default; target_epsilon is kept so that dp.enabled=true alone is a valid DP setting.
    dp=DPConf(enabled=False, target_epsilon=8.0),
    experiment_name="trustops-reproducibility",
)


@dataclass(frozen=True)
class StudyModel:
    """The data, model, trainer and DP settings a study trains with (DP enabled or not per point)."""

    data: DataSettings
    model: ModelSettings
    trainer: TrainerSettings
    dp: DPSettings


@dataclass(frozen=True)
class RobustnessPoint:
    variant_name: str
    variant: RobustnessVariant
    epsilon: float
    attack: AttackSettings
    base: StudyModel
    experiment_name: str


@dataclass(frozen=True)
class ReproducibilityPoint:
    variant_name: str
    activation: str
    beta: float
    n_pairs: int
    base: StudyModel
    experiment_name: str


def _study_model(cfg: Any) -> StudyModel:
    from hydra_zen import instantiate

    return StudyModel(data=instantiate(cfg.data), model=instantiate(cfg.model), trainer=instantiate(cfg.trainer), dp=instantiate(cfg.dp))


def _experiment(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"experiment_name must be a non-empty string. Got: {name!r}")
    return name


def robustness_point_from_config(cfg: Any) -> RobustnessPoint:
    """Instantiate and validate one composed robustness point."""
    from hydra_zen import instantiate
    from omegaconf import OmegaConf

    variants = OmegaConf.to_container(cfg.variants, resolve=True)
    name = cfg.variant
    if name not in variants:
        raise ConfigError(f"Unknown robustness variant {name!r}. Defined variants: {', '.join(variants)}.")
    try:
        variant = RobustnessVariant(**variants[name])
    except TypeError as error:
        raise ConfigError(
            f"Variant {name!r} must have only the fields activation, beta, dp. Got: {variants[name]!r}"
        ) from error
    return RobustnessPoint(
        variant_name=name,
        variant=variant,
        epsilon=check_epsilon(cfg.epsilon),
        attack=instantiate(cfg.attack),
        base=_study_model(cfg),
        experiment_name=_experiment(cfg.experiment_name),
    )


def parse_reproducibility_variant(name: Any) -> tuple[str, float]:
    """``relu`` -> ("relu", 1.0); ``smelu-0.5`` -> ("smelu", 0.5)."""
    from trustops.models.activations import ACTIVATIONS

    text = str(name)
    activation, _, beta_text = text.partition("-")
    allowed = f"{', '.join(a for a in ACTIVATIONS if a != 'smelu')}, smelu-<beta> (e.g. smelu-0.5)"
    if activation not in ACTIVATIONS or (beta_text and activation != "smelu"):
        raise ConfigError(f"Unknown reproducibility variant {text!r}. Allowed: {allowed}.")
    if activation != "smelu":
        return activation, 1.0
    try:
        beta = float(beta_text) if beta_text else 1.0
    except ValueError:
        raise ConfigError(f"Unknown reproducibility variant {text!r}: the SmeLU width must be a number. Allowed: {allowed}.") from None
    if not beta > 0:
        raise ConfigError(f"The SmeLU width in {text!r} must be > 0.")
    return activation, beta


def reproducibility_point_from_config(cfg: Any) -> ReproducibilityPoint:
    """Instantiate and validate one composed reproducibility point."""
    activation, beta = parse_reproducibility_variant(cfg.variant)
    n_pairs = cfg.n_pairs
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, int) or n_pairs < 2:
        raise ConfigError(f"n_pairs must be an integer >= 2 (a spread needs two pairs). Got: {n_pairs!r}")
    return ReproducibilityPoint(
        variant_name=str(cfg.variant),
        activation=activation,
        beta=beta,
        n_pairs=n_pairs,
        base=_study_model(cfg),
        experiment_name=_experiment(cfg.experiment_name),
    )
