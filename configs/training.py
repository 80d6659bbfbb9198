"""The training configuration: one hydra-zen store group per swappable part.

Groups and their options (choose with ``group=option``; set fields with ``group.field=value``):

- ``data``:    ``digits`` (default, the embedded data set), ``fashion_mnist`` (the second built-in data
               set, ``trustops prepare --dataset fashion_mnist``; it makes ``model=fashion_cnn`` the
               default), ``table`` (a user's CSV/Parquet; it makes ``model=tabular`` and
               ``trainer=tabular`` the defaults), ``images`` (a user's .npz)
- ``model``:   ``mlp`` (default), ``cnn``, ``fashion_cnn`` (pooled conv blocks for 28x28 images),
               ``tabular`` (per-column preprocessing inside the model)
- ``trainer``: ``default``, ``smoke`` (one quick epoch, for tests and trying things out), ``tabular``
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
# Likewise trustops.data.fashion_mnist's IMAGE_SHAPE and VALUE_RANGE (uint8 pixels), and its export's path.
FASHION_MNIST_IMAGE_SHAPE = (1, 28, 28)
FASHION_MNIST_VALUE_RANGE = (0.0, 255.0)
FASHION_MNIST_PATH = "data/fashion_mnist.npz"

# Tables: small, so many epochs are cheap; Adam copes with the mixed scales of one-hot and
# standardized columns.  First values tried; they meet bench.bench_tabular_baselines' targets (not tuned).
TABULAR_MODEL_DEFAULTS = {"family": "tabular", "hidden": [64, 32]}
TABULAR_TRAINER_DEFAULTS = {"max_epochs": 60, "batch_size": 32, "optimizer": "adam", "lr": 0.01}

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
# Tables: ranges learned per column (99% of rows within half a span of the training span, every row
# within 4 spans: a z-scored column at -4 passes, a unit error does not); the tabular model and trainer.
data_store(
    builds(DataSettings, populate_full_signature=True, hydra_convert="all", path="???", range_margin=0.5,
           hydra_defaults=["_self_", {"override /model@_global_.model": "tabular"}, {"override /trainer@_global_.trainer": "tabular"}]),
    name="table",
)
data_store(DataConf(path="???", format="npz", range_margin=0.1), name="images")
# The .npz carries its own split (official test set, seeded stratified val), so the fraction fields do
# not apply; data.max_train_rows=N trains on a class-balanced N of the 55,000, drawn with data.split_seed.
data_store(
    builds(DataSettings, populate_full_signature=True, hydra_convert="all", path=FASHION_MNIST_PATH, format="npz",
           image_shape=list(FASHION_MNIST_IMAGE_SHAPE), value_range=list(FASHION_MNIST_VALUE_RANGE), classes=list(range(10)),
           hydra_defaults=["_self_", {"override /model@_global_.model": "fashion_cnn"}]),
    name="fashion_mnist",
)

model_store = store(group="model")
model_store(ModelConf(family="mlp"), name="mlp")
model_store(ModelConf(family="cnn", hidden=[32]), name="cnn")
model_store(ModelConf(**TABULAR_MODEL_DEFAULTS), name="tabular")
# Three pooled blocks take 28x28 to 64 channels of 3x3; one hidden layer of 64 is the penultimate.
model_store(ModelConf(family="fashion_cnn", channels=[16, 32, 64], hidden=[64]), name="fashion_cnn")

trainer_store = store(group="trainer")
trainer_store(TrainerConf(), name="default")
trainer_store(TrainerConf(max_epochs=1), name="smoke")
trainer_store(TrainerConf(**TABULAR_TRAINER_DEFAULTS), name="tabular")

dp_store = store(group="dp")
dp_store(DPConf(enabled=True, target_epsilon=8.0), name="on")
dp_store(DPConf(enabled=False, target_epsilon=None), name="off")

# registered_model_name null: trustops-<data file stem> (trustops-digits for the default data)
store(group="tracking")(TrackingConf(registered_model_name=None), name="default")

capture_store = store(group="capture")
capture_store(CaptureConf(), name="native")
capture_store(CaptureConf(backend="smdebug"), name="smdebug")
capture_store(CaptureConf(enabled=False), name="off")

TrainConf = make_config(
    hydra_defaults=[
        "_self_",
        {"model": "mlp"},
        {"trainer": "default"},
        {"data": "digits"},  # after model and trainer: data=table overrides their defaults
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
