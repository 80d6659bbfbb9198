"""Training is seeded and deterministic, and DP training spends no more than its target epsilon."""

import pytest
import torch

from trustops.data.digits import digits_frame, pixel_columns
from trustops.data.loading import DatasetInfo
from trustops.settings import DataSettings, DPSettings, ModelSettings, TrainerSettings, TrainSettings

pytestmark = pytest.mark.trains_model

INFO = DatasetInfo(
    path="digits", data_hash="-", dvc_tracked=False, feature_columns=pixel_columns(64), label_column="label",
    split_column="split", image_shape=[1, 8, 8], classes=list(range(10)), split_sizes={},
)


def train_classifier(*args, **kwargs):
    """``trustops.training.trainer.train_classifier``, imported when a test runs: Lightning takes seconds to import."""
    from trustops.training.trainer import train_classifier

    return train_classifier(*args, **kwargs)


@pytest.fixture(scope="module")
def frame():
    return digits_frame()


def settings(**overrides) -> TrainSettings:
    values = dict(
        data=DataSettings(image_shape=[1, 8, 8]),
        model=ModelSettings(family="mlp", activation="smelu", hidden=[32, 16]),
        trainer=TrainerSettings(max_epochs=3),
        dp=DPSettings(target_epsilon=2.0),
    )
    values.update(overrides)
    return TrainSettings(**values)


def weights(model) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


@pytest.mark.parametrize("dp", [DPSettings(target_epsilon=2.0), DPSettings(enabled=False, target_epsilon=None)], ids=["dp", "no-dp"])
def test_same_config_and_seed_give_identical_models(frame, dp):
    first = train_classifier(frame, INFO, settings(dp=dp))
    second = train_classifier(frame, INFO, settings(dp=dp))
    assert torch.equal(weights(first.model), weights(second.model))
    assert first.history == second.history


def test_another_seed_gives_another_model(frame):
    first = train_classifier(frame, INFO, settings())
    other = train_classifier(frame, INFO, settings(trainer=TrainerSettings(max_epochs=3, seed=1)))
    assert not torch.equal(weights(first.model), weights(other.model))


def test_dp_epsilon_grows_per_epoch_and_stays_within_target(frame):
    result = train_classifier(frame, INFO, settings(trainer=TrainerSettings(max_epochs=4)))
    epsilons = [row["dp_epsilon"] for row in result.history]
    assert len(epsilons) == 4
    assert all(later > earlier for earlier, later in zip(epsilons, epsilons[1:]))
    assert epsilons[-1] == pytest.approx(result.dp_epsilon)
    assert 0 < result.dp_epsilon <= 2.0
    assert result.dp_delta == pytest.approx(1 / int((frame["split"] == "train").sum()))


def test_cnn_trains_and_exposes_the_penultimate_layer(frame):
    result = train_classifier(frame, INFO, settings(model=ModelSettings(family="cnn", hidden=[16]), dp=DPSettings(enabled=False, target_epsilon=None)))
    embedding = result.model.embed(torch.zeros(2, 1, 8, 8))
    assert embedding.shape == (2, 16)
    assert result.history[-1]["val_accuracy"] > 0.5


def test_data_order_seed_alone_changes_the_model(frame):
    base = settings(dp=DPSettings(enabled=False, target_epsilon=None))
    a = train_classifier(frame, INFO, base)
    b = train_classifier(frame, INFO, settings(dp=base.dp, trainer=TrainerSettings(max_epochs=3, data_order_seed=7)))
    assert not torch.equal(weights(a.model), weights(b.model))


def test_reproducibility_pair_reports_both_pd_forms(frame):
    from trustops.trust.reproducibility import Variant, summarize, train_pair

    base = settings(dp=DPSettings(enabled=False, target_epsilon=None), trainer=TrainerSettings(max_epochs=2))
    results = [train_pair(frame, INFO, base, Variant("smelu", 1.0), pair) for pair in (0, 1)]
    assert all(0 < r.relative_pd <= 2 and 0 < r.total_variation_pd <= 1 for r in results)
    table = summarize(results)
    assert list(table["variant"]) == ["smelu(beta=1)"] and table.loc[0, "pairs"] == 2
    assert table.loc[0, "relative_pd_std"] > 0


def test_a_dp_trained_model_can_be_attacked(frame):
    """Opacus's per-sample-gradient hooks must not survive training (they break any later backward pass)."""
    from trustops.attacks import pgd_attack

    model = train_classifier(frame, INFO, settings(trainer=TrainerSettings(max_epochs=1))).model
    x = torch.from_numpy(frame.filter(like="pixel_").head(8).to_numpy("float32")).reshape(8, 1, 8, 8)
    y = torch.from_numpy(frame["label"].head(8).to_numpy())
    adversarial = pgd_attack(model, x, y, norm="inf", epsilon=1.0, step_size=0.25, steps=3, clamp=(0.0, 16.0))
    assert adversarial.shape == x.shape and not torch.equal(adversarial, x)
    assert not any(hasattr(p, "grad_sample") for p in model.parameters())


def test_the_fit_runs_deterministic_algorithms_without_the_memory_fill_and_restores_the_global_flags(frame):
    """Lightning's ``deterministic=True`` is process-wide and also NaN-fills new memory, which costs DP training time and
    changes no result of a correct kernel; trustops keeps the former for the fit only and skips the latter."""
    import lightning as L

    seen = []

    class Probe(L.Callback):
        def on_train_batch_start(self, *args) -> None:
            seen.append((torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory))

    flags = (torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory)
    train_classifier(frame, INFO, settings(trainer=TrainerSettings(max_epochs=1)), callbacks=[Probe()])
    assert seen and set(seen) == {(True, False)}
    assert (torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory) == flags


def test_skipping_the_memory_fill_leaves_dp_conv_training_bit_identical(frame, monkeypatch):
    import contextlib

    import trustops.training.trainer as trainer_module

    fashion = settings(model=ModelSettings(family="fashion_cnn", channels=[4, 8, 8], hidden=[16]),
                       trainer=TrainerSettings(max_epochs=2, batch_size=64))  # fmt: skip
    without_fill = train_classifier(frame, INFO, fashion)
    skipping = trainer_module._deterministic_fit

    @contextlib.contextmanager
    def with_fill():
        with skipping():
            torch.utils.deterministic.fill_uninitialized_memory = True
            yield

    monkeypatch.setattr(trainer_module, "_deterministic_fit", with_fill)
    with_nan_fill = train_classifier(frame, INFO, fashion)
    assert torch.equal(weights(without_fill.model), weights(with_nan_fill.model))
    assert without_fill.history == with_nan_fill.history
