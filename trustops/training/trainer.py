"""Train a classifier from a split table: seeded, deterministic, optionally differentially private."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import lightning as L
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from trustops.capture.hooks import CAPTURE_LAYERS_ATTR
from trustops.data.loading import DatasetInfo
from trustops.errors import DataError
from trustops.models.networks import Classifier, TabularPreprocess, build_classifier
from trustops.settings import TrainSettings
from trustops.training.lightning_module import ClassifierModule
from trustops.training.preprocessing import fit_preprocess
from trustops.training.privacy import make_private, unwrap
from trustops.training.tensors import split_dataset

logger = logging.getLogger(__name__)
LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric")


@dataclass
class TrainingResult:
    model: Classifier
    history: list[dict[str, float]] = field(default_factory=list)
    dp_epsilon: float | None = None
    dp_delta: float | None = None
    noise_multiplier: float | None = None


class _EpochHistory(L.Callback):
    """Collects the logged epoch metrics, so callers can send them to any tracker."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._record(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._record(trainer)
        privacy = getattr(module, "privacy", None)
        if privacy is not None:
            self.rows[-1]["dp_epsilon"] = privacy.epsilon()

    def _record(self, trainer: L.Trainer) -> None:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        if self.rows and self.rows[-1].get("epoch") == trainer.current_epoch:
            self.rows[-1].update(metrics)
        else:
            self.rows.append({"epoch": trainer.current_epoch, **metrics})


class _EpochProgress(L.Callback):
    """A bar over the epochs showing the last epoch's loss, validation accuracy and ε spent.

    Reads what ``history`` recorded (it runs first), so ε is not computed twice.
    """

    def __init__(self, history: _EpochHistory, *, desc: str) -> None:
        self.history = history
        self.desc = desc
        self.bar = None

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        from trustops.progress import progress_bar

        self.bar = progress_bar(desc=self.desc, total=trainer.max_epochs, unit="epoch", leave=True)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.bar is None or not self.history.rows:
            return
        row = self.history.rows[-1]
        shown = {"loss": row.get("train_loss"), "val_acc": row.get("val_accuracy"), "ε": row.get("dp_epsilon")}
        self.bar.set_postfix({k: f"{v:.3f}" for k, v in shown.items() if v is not None}, refresh=False)
        self.bar.update(1)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._close()

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException) -> None:
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@contextlib.contextmanager
def _deterministic_fit() -> Iterator[None]:
    """Deterministic algorithms for the fit (Lightning's ``deterministic=True``), minus the memory fill, then as before.

    Under ``torch.use_deterministic_algorithms(True)`` PyTorch also fills every newly allocated
    tensor with NaN (``torch.utils.deterministic.fill_uninitialized_memory``), so that a kernel
    reading memory it never wrote gives a repeatable wrong answer.  Correct kernels overwrite
    that memory, so the fill cannot change a result (a test checks DP CNN weights are identical),
    but Opacus allocates per-sample copies of activations and gradients, and filling them cost a
    DP step on ``fashion_cnn`` about 14% (bench.bench_fashion_dp, issue #13).  Lightning leaves the
    flags set for the rest of the process, slowing later attacks and evaluations; they are put back here.
    """
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.utils.deterministic.fill_uninitialized_memory,
        torch.backends.cudnn.benchmark,
    )
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.utils.deterministic.fill_uninitialized_memory = before[2]
        torch.backends.cudnn.benchmark = before[3]


def set_capture_layers(model: Classifier, names: Sequence[str] | None) -> None:
    """Record on ``model`` the further layers every capture of it records (``capture.layers``, resolved to
    module names): pickled with the model, so the training reference and the served traffic hold the same
    layers, and the monitor can combine them.  A name the model lacks fails here, before any epoch."""
    if not names:
        return
    from trustops.detection.layers import hooked_layers, resolve_layers

    resolved = resolve_layers(model, names, setting="capture.layers", allowed=hooked_layers(model))
    setattr(model, CAPTURE_LAYERS_ATTR, tuple(name for name in resolved if name != "penultimate"))


def _build(settings: TrainSettings, info: DatasetInfo, preprocess: TabularPreprocess | None = None) -> Classifier:
    return build_classifier(
        settings.model.family,
        info.input_shape,
        len(info.classes),
        hidden=settings.model.hidden,
        channels=settings.model.channels,
        activation=settings.model.activation,
        beta=settings.model.beta,
        preprocess=preprocess,
    )


def fit_input_preprocess(frame: pd.DataFrame, info: DatasetInfo, settings: TrainSettings) -> TabularPreprocess | None:
    """The tabular family's per-column preprocessing, fitted on the ``train`` rows (``None`` for other families)."""
    if settings.model.family != "tabular":
        return None
    return fit_preprocess(
        frame[frame[info.split_column] == "train"], info.feature_columns, categories=info.categories,
        feature_ranges=settings.data.feature_ranges, private=settings.dp.enabled,
    )


def _fresh_copy(trained: nn.Module, settings: TrainSettings, info: DatasetInfo) -> Classifier:
    """The trained weights in a newly built network, in eval mode.

    After DP training the module still carries Opacus's per-sample-gradient hooks and
    buffers; any later backward pass (a PGD attack) would trip over them, and pickling
    would carry them into the registry.
    """
    preprocess = trained.standardize if isinstance(trained.standardize, TabularPreprocess) else None
    clean = _build(settings, info, preprocess)
    clean.load_state_dict(trained.state_dict())
    set_capture_layers(clean, getattr(trained, CAPTURE_LAYERS_ATTR, None))
    return clean.eval()


def build_optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    if settings.trainer.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    return torch.optim.SGD(model.parameters(), lr=settings.learning_rate, momentum=settings.trainer.momentum)


def train_classifier(
    frame: pd.DataFrame, info: DatasetInfo, settings: TrainSettings, *, callbacks: Sequence[L.Callback] = ()
) -> TrainingResult:
    """Train on the ``train`` split, validating each epoch on ``val``.

    ``callbacks`` are extra Lightning callbacks (the benchmarks time epochs with one).

    The same settings and seed give identical weights: initialisation and DP noise draw from
    generators seeded by ``trainer.seed``, batch order (or Poisson sampling) from
    ``trainer.data_order_seed`` (default: the same seed).
    """
    seed = settings.trainer.seed
    L.seed_everything(seed, workers=True, verbose=False)
    columns = dict(
        feature_columns=info.feature_columns,
        label_column=info.label_column,
        split_column=info.split_column,
        input_shape=info.input_shape,
        classes=info.classes,
    )
    train_set = split_dataset(frame, "train", **columns)
    val_set = split_dataset(frame, "val", **columns)
    if len(train_set) == 0 or len(val_set) == 0:
        raise DataError(f"Training needs non-empty train and val splits. Got sizes {info.split_sizes}.")

    preprocess = fit_input_preprocess(frame, info, settings)
    model = _build(settings, info, preprocess)
    set_capture_layers(model, settings.capture.layers if settings.capture.enabled else None)
    if preprocess is None:  # images: one mean and std for all pixels, as they share one scale
        model.set_input_statistics(float(train_set.tensors[0].mean()), float(train_set.tensors[0].std().clamp_min(1e-6)))
    optimizer = build_optimizer(model, settings)
    data_order_seed = seed if settings.trainer.data_order_seed is None else settings.trainer.data_order_seed
    loader_generator = torch.Generator().manual_seed(data_order_seed)
    train_loader = DataLoader(train_set, batch_size=settings.trainer.batch_size, shuffle=True, generator=loader_generator)
    val_loader = DataLoader(val_set, batch_size=512)

    privacy = None
    if settings.dp.enabled:
        privacy = make_private(
            model,
            optimizer,
            train_loader,
            settings.dp,
            epochs=settings.trainer.max_epochs,
            n_train=len(train_set),
            generator=torch.Generator().manual_seed(seed + 1),
        )
        model, optimizer, train_loader = privacy.module, privacy.optimizer, privacy.loader

    # Lightning's device banners and tips are noise here; set at call time because
    # Lightning (and ZenML's step logging) reset these levels after import.
    for name in LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    module = ClassifierModule(model, optimizer, privacy=privacy)
    history = _EpochHistory()
    privacy_label = " DP" if settings.dp.enabled else ""
    epochs = _EpochProgress(history, desc=f"train {settings.model.family}/{settings.model.activation}{privacy_label}")
    trainer_callbacks: list[L.Callback] = [history, epochs, *callbacks]
    if settings.capture.enabled and settings.capture.uri:
        from trustops.capture.callback import ActivationCaptureCallback

        writer_options = {"endpoint_url": settings.capture.endpoint_url} if settings.capture.endpoint_url else {}
        trainer_callbacks.append(
            ActivationCaptureCallback(
                settings.capture.uri, backend=settings.capture.backend, include=settings.capture.include, **writer_options
            )
        )
    with _deterministic_fit():
        trainer = L.Trainer(
            accelerator="cpu",
            devices=1,
            max_epochs=settings.trainer.max_epochs,
            deterministic=True,
            logger=False,
            callbacks=trainer_callbacks,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            use_distributed_sampler=False,
        )
        with warnings.catch_warnings():
            # Lightning suggests worker processes for the loaders; the data is tiny and in memory.
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            # Opacus's reminder; trustops seeds its generators on purpose, for reproducible runs.
            warnings.filterwarnings("ignore", message=".*Secure RNG turned off.*")
            trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader)

    result = TrainingResult(model=_fresh_copy(unwrap(model), settings, info), history=history.rows)
    if privacy is not None:
        result.dp_epsilon = privacy.epsilon()
        result.dp_delta = privacy.delta
        result.noise_multiplier = privacy.noise_multiplier
        if privacy.target_epsilon is not None and result.dp_epsilon > privacy.target_epsilon:
            raise RuntimeError(  # the calibration promises this never happens; stop rather than register it
                f"DP training spent epsilon={result.dp_epsilon:.4f}, above the target {privacy.target_epsilon}."
            )
    return result
