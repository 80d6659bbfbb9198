"""Typed, validated settings for one training run.

Hydra-zen configs in ``configs/`` build these classes; each checks its values on
construction, so a bad value fails before any data is read or any run is created.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypeVar

from trustops.errors import ConfigError

RecordT = TypeVar("RecordT")

# The registered model of the embedded default data (``trustops-<data file stem>``): what commands
# that take a model use when none is named.
DEFAULT_MODEL_NAME = "trustops-digits"

# The allowed values live here, not in the modules that implement them, so that validating
# a config (``trustops config``, a rejected override) never imports torch or pandas.
# tests/core/test_cli_startup.py checks they equal trustops.data.loading.FORMATS,
# trustops.models.activations.ACTIVATIONS and trustops.models.networks.MODEL_FAMILIES.
FORMATS = ("auto", "parquet", "csv", "npz")
ACTIVATIONS = ("relu", "smelu", "gelu", "swish", "tanh")
MODEL_FAMILIES = ("mlp", "cnn", "fashion_cnn", "tabular")
OPTIMIZERS = ("sgd", "adam")
ACCOUNTANTS = ("rdp", "prv", "gdp")


MAX_NAME_LENGTH = 128
SAFE_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_NAME_LENGTH - 1}}}")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _choice(key: str, value: Any, allowed: tuple[str, ...]) -> None:
    _require(value in allowed, f"{key} must be one of {', '.join(allowed)}. Got: {value!r}")



@functools.lru_cache(maxsize=None)
def _adapter(record_type: type) -> Any:
    """pydantic's validator for ``record_type``, built once per type: building it walks every nested class."""
    from pydantic import TypeAdapter

    return TypeAdapter(record_type)


def rebuild(record_type: type[RecordT], values: Mapping[str, Any]) -> RecordT:
    """A settings dataclass (or a record holding them) rebuilt from plain values, nested ones too, the way ZenML
    rebuilds a step's typed parameters: validated by pydantic, each class's own checks run, and keys it does
    not have (Hydra's ``_target_`` in a saved config) ignored."""
    from pydantic import ValidationError

    try:
        return _adapter(record_type).validate_python(values)
    except ValidationError as invalid:
        first = invalid.errors()[0]
        if isinstance(original := first.get("ctx", {}).get("error"), ConfigError):
            raise original from None  # a class's own check: its one-line message as it wrote it
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{where}: {first['msg'].lower()}. Got: {first['input']!r}") from None


@dataclass(frozen=True)
class DataSettings:
    path: str = "data/digits.parquet"
    format: str = "auto"
    label_column: str = "label"
    split_column: str = "split"
    feature_columns: list[str] | None = None
    image_shape: list[int] | None = None
    value_range: list[float] | None = None
    classes: list[Any] | None = None
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    split_seed: int = 0
    min_rows: int = 100
    max_class_kl: float = 0.05
    range_margin: float = 0.0
    categorical_columns: list[str] | None = None  # one-hot encoded in the model; vocabulary from the training split
    drop_columns: list[str] | None = None  # left out of the features (IDs, free text, leaks)
    # Public per-column [low, high] bounds.  Under DP a tabular model scales its columns by these
    # (statistics of the private rows would spend privacy); they are also the validation ranges.
    feature_ranges: dict[str, list[float]] | None = None
    # At most this many training rows (a seeded sample keeping the class mix; val and test untouched),
    # for quick runs on a large data set: data=fashion_mnist data.max_train_rows=1000.  None: all.
    max_train_rows: int | None = None

    @property
    def stem(self) -> str:
        """The data file's name without folder and extension (``data/iris.csv`` -> ``iris``)."""
        name = self.path.replace("\\", "/").rsplit("/", 1)[-1]
        return name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name

    @property
    def name(self) -> str:
        """:attr:`stem` made safe for run and model names (letters, digits, '.', '_', '-')."""
        return re.sub(r"[^A-Za-z0-9._-]+", "-", self.stem).strip("-.").replace("..", ".")[:64] or "data"

    def __post_init__(self) -> None:
        _choice("data.format", self.format, FORMATS)
        for column, bounds in (self.feature_ranges or {}).items():
            _require(
                len(bounds) == 2 and float(bounds[0]) < float(bounds[1]),
                f"data.feature_ranges.{column} must be [low, high] with low < high. Got: {list(bounds)}",
            )
        _require(self.min_rows >= 1, f"data.min_rows must be >= 1. Got: {self.min_rows}")
        _require(self.max_train_rows is None or self.max_train_rows >= 1,
                 f"data.max_train_rows must be >= 1 (or null for all rows). Got: {self.max_train_rows}")
        _require(self.max_class_kl > 0, f"data.max_class_kl must be > 0. Got: {self.max_class_kl}")
        _require(self.range_margin >= 0, f"data.range_margin must be >= 0. Got: {self.range_margin}")
        if self.value_range is not None:
            _require(
                len(self.value_range) == 2 and self.value_range[0] < self.value_range[1],
                f"data.value_range must be [low, high] with low < high. Got: {self.value_range}",
            )
        if self.image_shape is not None:
            _require(
                len(self.image_shape) == 3 and all(int(s) > 0 for s in self.image_shape),
                f"data.image_shape must be [channels, height, width] of positive sizes. Got: {self.image_shape}",
            )


@dataclass(frozen=True)
class ModelSettings:
    family: str = "mlp"
    activation: str = "relu"
    beta: float = 1.0
    hidden: list[int] = field(default_factory=lambda: [64, 32])
    channels: list[int] = field(default_factory=lambda: [16, 32])

    def __post_init__(self) -> None:
        _choice("model.family", self.family, MODEL_FAMILIES)
        _choice("model.activation", self.activation, ACTIVATIONS)
        _require(self.beta > 0, f"model.beta (the SmeLU half-width) must be > 0. Got: {self.beta}")
        _require(all(int(w) > 0 for w in self.hidden), f"model.hidden widths must be positive. Got: {self.hidden}")
        _require(all(int(c) > 0 for c in self.channels), f"model.channels must be positive. Got: {self.channels}")


@dataclass(frozen=True)
class TrainerSettings:
    max_epochs: int = 15
    batch_size: int = 64
    lr: float | None = None  # None: 0.5 with DP-SGD (clipped, noisy gradients want larger steps), 0.1 without
    optimizer: str = "sgd"
    momentum: float = 0.0
    seed: int = 0
    data_order_seed: int | None = None  # None: same as seed. Differs alone for reproducibility pairs.

    def __post_init__(self) -> None:
        _require(self.max_epochs >= 1, f"trainer.max_epochs must be >= 1. Got: {self.max_epochs}")
        _require(self.batch_size >= 1, f"trainer.batch_size must be >= 1. Got: {self.batch_size}")
        _require(self.lr is None or self.lr > 0, f"trainer.lr must be > 0 (or null for the default). Got: {self.lr}")
        _require(0 <= self.momentum < 1, f"trainer.momentum must satisfy 0 <= momentum < 1. Got: {self.momentum}")
        _choice("trainer.optimizer", self.optimizer, OPTIMIZERS)


@dataclass(frozen=True)
class DPSettings:
    """DP-SGD: give either ``noise_multiplier`` or ``target_epsilon`` (with ``target_delta``, default 1/n_train)."""

    enabled: bool = True
    target_epsilon: float | None = 8.0
    target_delta: float | None = None
    noise_multiplier: float | None = None
    max_grad_norm: float = 1.0
    accountant: str = "rdp"

    def __post_init__(self) -> None:
        if not self.enabled:
            return
        _choice("dp.accountant", self.accountant, ACCOUNTANTS)
        _require(self.max_grad_norm > 0, f"dp.max_grad_norm must be > 0. Got: {self.max_grad_norm}")
        _require(
            (self.target_epsilon is None) != (self.noise_multiplier is None),
            "Differential privacy needs exactly one of dp.target_epsilon or dp.noise_multiplier "
            f"(set the other to null). Got: target_epsilon={self.target_epsilon}, noise_multiplier={self.noise_multiplier}",
        )
        if self.target_epsilon is not None:
            _require(self.target_epsilon > 0, f"dp.target_epsilon must be > 0. Got: {self.target_epsilon}")
        if self.noise_multiplier is not None:
            _require(self.noise_multiplier > 0, f"dp.noise_multiplier must be > 0. Got: {self.noise_multiplier}")
        if self.target_delta is not None:
            _require(0 < self.target_delta < 1, f"dp.target_delta must satisfy 0 < delta < 1. Got: {self.target_delta}")

    def delta_for(self, n_train: int) -> float:
        return self.target_delta if self.target_delta is not None else 1.0 / n_train


CAPTURE_BACKENDS = ("native", "smdebug")


@dataclass(frozen=True)
class CaptureSettings:
    """Penultimate-layer capture during the validation passes: the reference for adversarial detection.

    ``uri`` is a local folder or ``s3://bucket/prefix``; ``None`` means a folder per run under
    ``.trustops/captures``.  ``include`` is a regex of further module names to capture.
    ``layers``: further layers captured in the reference *and* in the served traffic, by the names
    ``detect.combine_layers`` accepts (``block<k>`` or ``features.<i>``), so that the monitor can
    combine them with the penultimate layer (``trustops monitor --combine-layers block2 penultimate``).
    """

    enabled: bool = True
    uri: str | None = None
    backend: str = "native"
    include: str | None = None
    endpoint_url: str | None = None
    layers: list[str] | None = None

    def __post_init__(self) -> None:
        _choice("capture.backend", self.backend, CAPTURE_BACKENDS)
        _require(self.layers is None or (not isinstance(self.layers, str) and all(isinstance(n, str) and n for n in self.layers)),
                 f"capture.layers must be null or a list of layer names (e.g. [block2]). Got: {self.layers!r}")
        if self.include is not None:
            try:
                re.compile(self.include)
            except re.error as error:
                raise ConfigError(f"capture.include must be a regular expression. Got: {self.include!r} ({error})") from None


@dataclass(frozen=True)
class TrackingSettings:
    experiment_name: str = "trustops"
    registered_model_name: str | None = None  # None: ``trustops-<data file stem>`` (see TrainSettings)
    run_name: str | None = None
    register: bool = True

    def __post_init__(self) -> None:
        _require(bool(self.experiment_name.strip()), "tracking.experiment_name must not be empty.")
        _require(self.registered_model_name is None or bool(self.registered_model_name.strip()),
                 "tracking.registered_model_name must not be empty.")
        # Names become folder names and S3 keys (captures, monitor state): data, never paths.
        for field_name in ("registered_model_name", "run_name"):
            value = getattr(self, field_name)
            _require(value is None or bool(SAFE_NAME.fullmatch(value)) and ".." not in value,
                     f"tracking.{field_name} must be 1-{MAX_NAME_LENGTH} letters, digits, '.', '_' or '-' "
                     f"(no '..' and no '/'), because it names folders and storage keys. Got: {value!r}")


@dataclass(frozen=True)
class TrainSettings:
    data: DataSettings = field(default_factory=DataSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    trainer: TrainerSettings = field(default_factory=TrainerSettings)
    dp: DPSettings = field(default_factory=DPSettings)
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    capture: CaptureSettings = field(default_factory=CaptureSettings)

    def __post_init__(self) -> None:
        if self.tracking.registered_model_name is None:
            # Named after the data, so two data sets never overwrite each other's model.
            name = f"trustops-{self.data.name}"
            object.__setattr__(self, "tracking", replace(self.tracking, registered_model_name=name))
        if self.model.family in ("cnn", "fashion_cnn") and self.data.image_shape is None and not self.data.path.endswith(".npz"):
            raise ConfigError(
                f"model.family={self.model.family} needs images: set data.image_shape=[C,H,W] for a table of pixels, "
                "use an .npz image file, or choose model.family=mlp."
            )
        if self.model.family == "tabular" and (self.data.image_shape is not None or self.data.path.endswith(".npz")):
            raise ConfigError("model.family=tabular is for tables of named columns; use model=mlp or model=cnn for images.")

    @property
    def learning_rate(self) -> float:
        if self.trainer.lr is not None:
            return self.trainer.lr
        return 0.5 if self.dp.enabled else 0.1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


NORMS = ("inf", "l2")


@dataclass(frozen=True)
class AttackSettings:
    """PGD on a data split; FGSM is ``steps=1``. ``step_size`` null means epsilon / 4."""

    norm: str = "inf"
    epsilon: float = 2.0
    step_size: float | None = None
    steps: int = 10
    split: str = "test"

    def __post_init__(self) -> None:
        _choice("attack.norm", self.norm, NORMS)
        _require(self.epsilon > 0, f"attack.epsilon must be > 0. Got: {self.epsilon}")
        _require(self.step_size is None or self.step_size > 0, f"attack.step_size must be > 0. Got: {self.step_size}")
        _require(self.steps >= 1, f"attack.steps must be >= 1. Got: {self.steps}")
        _choice("attack.split", self.split, ("train", "val", "test"))

    @property
    def effective_step_size(self) -> float:
        return self.step_size if self.step_size is not None else self.epsilon / 4

    def step_size_at(self, epsilon: float) -> float:
        """The step size for the same attack at another ``epsilon``: the same fraction of the radius."""
        return self.effective_step_size * epsilon / self.epsilon

    def batch_name(self, epsilon: float | None = None) -> str:
        """How tables and metrics name a batch attacked with this norm at ``epsilon`` (default: the attack's)."""
        norm = "linf" if self.norm == "inf" else self.norm
        return f"pgd {norm} eps={self.epsilon if epsilon is None else epsilon:g}"


@dataclass(frozen=True)
class DetectSettings:
    alpha: float = 0.05
    n_permutations: int = 100
    n_tests: int = 100
    n_samples: int = 100
    class_matching: bool = True
    top_k: int = 10
    seed: int = 0
    # null: a sweep around the attack's own epsilon, in its own norm (``layer_table_sweep``)
    layer_table_epsilons: list[float] | None = None
    # null: the penultimate layer alone.  Two or more layers (capturable names or block1, block2, ...)
    # tested together: one permutation-calibrated Fisher combination (trustops.detection.combination).
    combine_layers: list[str] | None = None

    def __post_init__(self) -> None:
        _require(0 < self.alpha < 1, f"detect.alpha must satisfy 0 < alpha < 1. Got: {self.alpha}")
        _require(self.n_permutations >= 1, f"detect.n_permutations must be >= 1. Got: {self.n_permutations}")
        if 0 < self.alpha < 1:  # checked here, before any attack or capture runs: the cross-field rule
            from trustops.monitoring.budget import resamples_for_level

            needed = resamples_for_level(self.alpha)
            _require(self.n_permutations >= needed,
                     f"detect.n_permutations={self.n_permutations} cannot reach detect.alpha={self.alpha:g} (a permutation "
                     f"p-value is at least 1/(n_permutations + 1)): use detect.n_permutations >= {needed}, or a larger alpha.")
        _require(self.n_tests >= 1, f"detect.n_tests must be >= 1. Got: {self.n_tests}")
        _require(self.n_samples >= 2, f"detect.n_samples must be >= 2. Got: {self.n_samples}")
        _require(self.top_k >= 1, f"detect.top_k must be >= 1. Got: {self.top_k}")
        _require(self.layer_table_epsilons is None or (len(self.layer_table_epsilons) > 0 and all(e > 0 for e in self.layer_table_epsilons)),
                 f"detect.layer_table_epsilons must be null or a non-empty list of values > 0. Got: {self.layer_table_epsilons}")
        _require(self.combine_layers is None or (len(self.combine_layers) >= 2 and all(isinstance(n, str) and n for n in self.combine_layers)),
                 f"detect.combine_layers must be null or a list of at least two layer names (e.g. [block2,penultimate]). Got: {self.combine_layers}")

    def layer_table_sweep(self, attack: AttackSettings) -> list[float]:
        """The epsilons of the layer table, ascending: the configured ones, else the attack's own
        epsilon with a quarter, half and twice it (radii mean different things in L∞ and L2, so a
        fixed list cannot fit both)."""
        epsilons = self.layer_table_epsilons or [attack.epsilon * factor for factor in (0.25, 0.5, 1.0, 2.0)]
        return sorted(set(float(e) for e in epsilons))


def check_combine_layers(names: Any, setting: str) -> tuple[str, ...] | None:
    """``names`` as a tuple, or ``None`` for the penultimate layer alone; a :class:`ConfigError` unless
    it is null or two or more distinct non-empty names (which ones a model has is checked against it)."""
    if names is None or (not isinstance(names, str) and len(names) == 0):
        return None
    valid = not isinstance(names, str) and len(names) >= 2 and all(isinstance(n, str) and n for n in names)
    _require(valid and len(set(names)) == len(names),
             f"{setting} must be null or at least two distinct layer names (e.g. block2 penultimate). Got: {names!r}")
    return tuple(names)


@dataclass(frozen=True)
class AdversarialSettings:
    """Attack a registered model and test whether its penultimate layer gives the attack away."""

    model_name: str = DEFAULT_MODEL_NAME
    model_version: str = "latest"
    experiment_name: str = "trustops-adversarial"
    attack: AttackSettings = field(default_factory=AttackSettings)
    detect: DetectSettings = field(default_factory=DetectSettings)

    def __post_init__(self) -> None:
        # `model_version=3` on the command line arrives as an int; a version is a name here ("latest", "3", "@champion").
        object.__setattr__(self, "model_version", str(self.model_version))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
