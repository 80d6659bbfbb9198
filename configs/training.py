"""The training configuration: one hydra-zen store group per swappable part.

Groups and their options (choose with ``group=option``; set fields with ``group.field=value``):

- ``data``:    ``digits`` (default, the embedded data set), ``table`` (a user's CSV/Parquet), ``images`` (a user's .npz)
- ``model``:   ``mlp`` (default), ``cnn``
- ``trainer``: ``default``, ``smoke`` (one quick epoch, for tests and trying things out)
- ``dp``:      ``on`` (default: DP-SGD with a target epsilon of 8), ``off``
- ``tracking``: ``default``
- ``capture``: ``native`` (default), ``smdebug`` (SageMaker Debugger's trial format), ``off``
"""

from __future__ import annotations

from hydra_zen import ZenStore, builds, make_config

from trustops.settings import (
    CaptureSettings,
    DataSettings,
    DPSettings,
    ModelSettings,
    TrackingSettings,
    TrainerSettings,
    TrainSettings,
)

# The embedded digits' layout, as trustops.data.digits defines it (a test checks they agree);
# repeated here because importing that module loads pandas and scikit-learn, and composing
# a config must stay cheap.
DIGITS_IMAGE_SHAPE = (1, 8, 8)
DIGITS_VALUE_RANGE = (0.0, 16.0)

store = ZenStore(name="trustops", deferred_to_config=True, deferred_hydra_store=True)

DataConf = builds(DataSettings, populate_full_signature=True, hydra_convert="all")
ModelConf = builds(ModelSettings, populate_full_signature=True, hydra_convert="all")
TrainerConf = builds(TrainerSettings, populate_full_signature=True, hydra_convert="all")
DPConf = builds(DPSettings, populate_full_signature=True, hydra_convert="all")
TrackingConf = builds(TrackingSettings, populate_full_signature=True, hydra_convert="all")
CaptureConf = builds(CaptureSettings, populate_full_signature=True, hydra_convert="all")

data_store = store(group="data")
data_store(
    DataConf(
        path="data/digits.parquet",
        image_shape=list(DIGITS_IMAGE_SHAPE),
        value_range=list(DIGITS_VALUE_RANGE),
        classes=list(range(10)),
    ),
    name="digits",
)
data_store(DataConf(path="???", range_margin=0.1), name="table")
data_store(DataConf(path="???", format="npz", range_margin=0.1), name="images")

model_store = store(group="model")
model_store(ModelConf(family="mlp"), name="mlp")
model_store(ModelConf(family="cnn", hidden=[32]), name="cnn")

trainer_store = store(group="trainer")
trainer_store(TrainerConf(), name="default")
trainer_store(TrainerConf(max_epochs=1), name="smoke")

dp_store = store(group="dp")
dp_store(DPConf(enabled=True, target_epsilon=8.0), name="on")
dp_store(DPConf(enabled=False, target_epsilon=None), name="off")

store(group="tracking")(TrackingConf(registered_model_name="trustops-digits"), name="default")

capture_store = store(group="capture")
capture_store(CaptureConf(), name="native")
capture_store(CaptureConf(backend="smdebug"), name="smdebug")
capture_store(CaptureConf(enabled=False), name="off")

TrainConf = make_config(
    hydra_defaults=[
        "_self_",
        {"data": "digits"},
        {"model": "mlp"},
        {"trainer": "default"},
        {"dp": "on"},
        {"tracking": "default"},
        {"capture": "native"},
    ],
    data=None,
    model=None,
    trainer=None,
    dp=None,
    tracking=None,
    capture=None,
)
store(TrainConf, name="train")


def settings_from_config(cfg) -> TrainSettings:
    """Instantiate a composed config into validated :class:`TrainSettings`."""
    from hydra_zen import instantiate

    return TrainSettings(
        data=instantiate(cfg.data),
        model=instantiate(cfg.model),
        trainer=instantiate(cfg.trainer),
        dp=instantiate(cfg.dp),
        tracking=instantiate(cfg.tracking),
        capture=instantiate(cfg.capture),
    )
