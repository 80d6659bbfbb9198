"""The adversarial-detection configuration: which registered model, the attack, the detector.

Override fields with ``attack.epsilon=1.0``, ``detect.n_tests=50``, ``model_version=3``.
"""

from __future__ import annotations

from hydra_zen import builds, make_config

from trustops.settings import AdversarialSettings, AttackSettings, DetectSettings

AttackConf = builds(AttackSettings, populate_full_signature=True, hydra_convert="all")
DetectConf = builds(DetectSettings, populate_full_signature=True, hydra_convert="all")

AdversarialConf = make_config(
    model_name="trustops-digits",
    model_version="latest",
    experiment_name="trustops-adversarial",
    attack=AttackConf(),
    detect=DetectConf(),
)


def settings_from_config(cfg) -> AdversarialSettings:
    from hydra_zen import instantiate

    return AdversarialSettings(
        model_name=cfg.model_name,
        model_version=str(cfg.model_version),
        experiment_name=cfg.experiment_name,
        attack=instantiate(cfg.attack),
        detect=instantiate(cfg.detect),
    )
