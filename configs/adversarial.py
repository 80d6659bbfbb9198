"""The adversarial-detection configuration: which registered model, the attack, the detector.

Override fields with ``attack.epsilon=1.0``, ``detect.n_tests=50``, ``model_version=3``.
"""

from __future__ import annotations

from hydra_zen import builds

from trustops.settings import AdversarialSettings, AttackSettings, DetectSettings

AttackConf = builds(AttackSettings, populate_full_signature=True, hydra_convert="all")
DetectConf = builds(DetectSettings, populate_full_signature=True, hydra_convert="all")
# Every default is AdversarialSettings' own: the config only says how to build it.
AdversarialConf = builds(AdversarialSettings, populate_full_signature=True, hydra_convert="all",
                         attack=AttackConf(), detect=DetectConf())


def settings_from_config(cfg) -> AdversarialSettings:
    from hydra_zen import instantiate

    return instantiate(cfg)
