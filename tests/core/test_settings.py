"""Bad settings fail on construction with a message naming the key, the value and what is allowed."""

import pytest

from trustops.errors import ConfigError
from trustops.settings import DataSettings, DPSettings, ModelSettings, TrackingSettings, TrainerSettings, TrainSettings, rebuild

BAD = [
    (lambda: ModelSettings(activation="tanhh"), "model.activation"),
    (lambda: ModelSettings(family="transformer"), "model.family"),
    (lambda: ModelSettings(activation="smelu", beta=0), "model.beta"),
    (lambda: DPSettings(target_epsilon=-1.0), "dp.target_epsilon must be > 0"),
    (lambda: DPSettings(target_epsilon=0.0), "dp.target_epsilon must be > 0"),
    (lambda: DPSettings(target_delta=1.0), "dp.target_delta must satisfy 0 < delta < 1"),
    (lambda: DPSettings(target_delta=0.0), "dp.target_delta"),
    (lambda: DPSettings(target_epsilon=3.0, noise_multiplier=1.0), "exactly one of"),
    (lambda: DPSettings(target_epsilon=None, noise_multiplier=None), "exactly one of"),
    (lambda: DPSettings(max_grad_norm=0), "dp.max_grad_norm"),
    (lambda: TrainerSettings(lr=0), "trainer.lr"),
    (lambda: TrainerSettings(max_epochs=0), "trainer.max_epochs"),
    (lambda: DataSettings(format="xlsx"), "data.format"),
    (lambda: DataSettings(value_range=[16, 0]), "data.value_range"),
    (lambda: TrainSettings(model=ModelSettings(family="cnn")), "model.family=cnn needs images"),
    # Names become folder names and S3 keys: data, never paths.
    (lambda: TrackingSettings(run_name="../../../../elsewhere/escaped"), "tracking.run_name must be"),
    (lambda: TrackingSettings(run_name="/abs/path"), "tracking.run_name must be"),
    (lambda: TrackingSettings(run_name="a..b"), "no '..'"),
    (lambda: TrackingSettings(run_name="x" * 129), "tracking.run_name must be 1-128"),
    (lambda: TrackingSettings(registered_model_name="my model"), "tracking.registered_model_name must be"),
    (lambda: TrackingSettings(registered_model_name="team/model"), "tracking.registered_model_name must be"),
]


@pytest.mark.parametrize("build,message", BAD)
def test_bad_settings_raise_config_error(build, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        build()


def test_config_error_is_also_a_value_error():
    with pytest.raises(ValueError):
        DPSettings(target_epsilon=-1.0)


def test_disabled_dp_ignores_its_budget_fields():
    assert DPSettings(enabled=False, target_epsilon=-5).enabled is False


def test_delta_defaults_to_one_over_n_train():
    assert DPSettings().delta_for(1000) == pytest.approx(1e-3)
    assert DPSettings(target_delta=1e-5).delta_for(1000) == 1e-5


def test_settings_round_trip_through_plain_dicts():
    settings = TrainSettings(data=DataSettings(image_shape=[1, 8, 8]), model=ModelSettings(family="cnn", activation="smelu"))
    assert rebuild(TrainSettings, settings.to_dict()) == settings


def test_a_saved_hydra_config_rebuilds_the_settings_it_was_made_from():
    """The registry rebuilds a model's training settings from its run's config/resolved.yaml, `_target_` keys and all."""
    from omegaconf import OmegaConf

    from configs.training import settings_from_config
    from trustops.configuration import compose_config

    cfg = compose_config(["model.activation=smelu", "dp.target_epsilon=2", "capture.layers=[block1]"])
    saved = OmegaConf.to_container(cfg, resolve=True)
    assert "_target_" in saved["dp"]
    assert rebuild(TrainSettings, saved) == settings_from_config(cfg)


def test_a_bad_saved_value_is_one_clear_config_error():
    values = TrainSettings().to_dict()
    values["dp"]["target_epsilon"] = -1
    with pytest.raises(ConfigError, match=r"^dp.target_epsilon must be > 0. Got: -1"):  # the class's own message
        rebuild(TrainSettings, values)
    values["dp"]["target_epsilon"] = 3
    values["model"]["activation"] = 5
    with pytest.raises(ConfigError, match=r"^model.activation: input should be a valid string. Got: 5$"):
        rebuild(TrainSettings, values)


def test_a_registered_model_record_round_trips_through_json():
    import json

    from trustops.registry import RegisteredModel

    found = RegisteredModel(name="digits", version=3, run_id="r", model_uri="models:/digits/3", tags={"capture_uri": "/c"},
                            training=TrainSettings(model=ModelSettings(family="cnn"), data=DataSettings(image_shape=[1, 8, 8])))
    assert rebuild(RegisteredModel, json.loads(json.dumps(found.to_dict()))) == found


def test_ordinary_names_are_accepted():
    assert TrackingSettings(run_name="train-mlp-relu-dp-eps8-20261201-023603-bb42", registered_model_name="trustops.digits_v2")


def test_the_layer_table_sweeps_around_the_users_attack_in_its_norm_in_numeric_order():
    from trustops.settings import AttackSettings, DetectSettings

    l2 = AttackSettings(norm="l2", epsilon=8.0)
    sweep = DetectSettings().layer_table_sweep(l2)
    assert sweep == [2.0, 4.0, 8.0, 16.0]  # numeric order: 16 after 2, not before as text would sort
    assert [l2.batch_name(e) for e in sweep] == ["pgd l2 eps=2", "pgd l2 eps=4", "pgd l2 eps=8", "pgd l2 eps=16"]
    assert AttackSettings(norm="inf", epsilon=2.0).batch_name() == "pgd linf eps=2"
    assert l2.step_size_at(16.0) == pytest.approx(2 * l2.effective_step_size)  # the same fraction of the radius
    assert DetectSettings(layer_table_epsilons=[4.0, 0.5, 4.0]).layer_table_sweep(l2) == [0.5, 4.0]
    with pytest.raises(ConfigError, match="layer_table_epsilons"):
        DetectSettings(layer_table_epsilons=[1.0, -2.0])
    with pytest.raises(ConfigError, match="layer_table_epsilons"):
        DetectSettings(layer_table_epsilons=[])


def test_the_layer_table_keeps_the_callers_batch_order():
    import torch

    from trustops.detection.ladis import layer_table
    from trustops.settings import DetectSettings

    generator = torch.Generator().manual_seed(0)
    reference = {"penultimate": torch.randn(200, 4, generator=generator)}
    names = ["clean", "pgd l2 eps=2", "pgd l2 eps=16"]  # alphabetical order would put eps=16 first
    batches = {name: {"penultimate": torch.randn(100, 4, generator=generator) + shift}
               for shift, name in enumerate(names)}
    view = DetectSettings(alpha=0.05, n_permutations=20, n_tests=3, n_samples=20, class_matching=False, top_k=1, seed=0)
    assert list(layer_table(reference, batches, settings=view).columns) == names
