"""The classifier families: an MLP, a small CNN, a pooled CNN for 28x28 images and a tabular MLP.

All expose the same seams, which activation capture and the adversarial detector rely on:
``features`` (everything up to the representation), ``penultimate`` (the layer whose output
is the representation) and ``head`` (the linear classifier).  Only layers Opacus can compute
per-sample gradients for are used (Linear, Conv2d, GroupNorm; no BatchNorm).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import nn

from trustops.errors import ConfigError
from trustops.models.activations import make_activation

MODEL_FAMILIES = ("mlp", "cnn", "fashion_cnn", "tabular")


class Standardize(nn.Module):
    """``(x - mean) / std`` with constants fixed from the training split.

    Inside the model, so the model takes raw inputs: attacks clamp to the raw valid
    range and captures record what callers actually sent.
    """

    def __init__(self, mean: float = 0.0, std: float = 1.0) -> None:
        super().__init__()
        if not std > 0:
            raise ConfigError(f"Input standardization needs std > 0. Got: {std}")
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class TabularPreprocess(nn.Module):
    """Per-column standardization and one-hot categories, fitted on the training split.

    Takes raw rows, shape-(N, D), in the data's column order: numeric columns as they are,
    categorical columns as integer codes into their training vocabulary (-1: a value the
    training split never had, which becomes an all-zero one-hot block).  Returns
    shape-(N, n_numeric + sum of the vocabulary sizes).  Everything is a buffer, so the
    registered model carries its own preprocessing and every caller (serving, ``predict``,
    capture, attacks) sends raw rows.  Gradients flow through the numeric columns only.

    Parameters
    ----------
    center, scale
        shape-(n_numeric,) ``(x - center) / scale`` per numeric column.
    numeric_index, categorical_index
        positions of the numeric and categorical columns in a row.
    cardinalities
        vocabulary size of each categorical column.
    categories
        the vocabularies themselves, by column name (metadata for callers; not used in ``forward``).
    """

    def __init__(
        self,
        center: Sequence[float],
        scale: Sequence[float],
        *,
        numeric_index: Sequence[int],
        categorical_index: Sequence[int] = (),
        cardinalities: Sequence[int] = (),
        categories: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__()
        if not len(center) == len(scale) == len(numeric_index):
            raise ConfigError(f"Need one center and scale per numeric column. Got {len(center)}, {len(scale)}, {len(numeric_index)}.")
        if len(categorical_index) != len(cardinalities):
            raise ConfigError("Need one vocabulary size per categorical column.")
        if not all(float(s) > 0 for s in scale):
            raise ConfigError(f"Column scales must be > 0. Got: {list(scale)}")
        self.register_buffer("center", torch.tensor([float(c) for c in center], dtype=torch.float32))
        self.register_buffer("scale", torch.tensor([float(s) for s in scale], dtype=torch.float32))
        self.register_buffer("numeric_index", torch.tensor(list(numeric_index), dtype=torch.long))
        self.register_buffer("categorical_index", torch.tensor(list(categorical_index), dtype=torch.long))
        self.cardinalities = [int(k) for k in cardinalities]
        #: categorical column -> vocabulary (code = position), for callers turning raw values into codes
        self.categories = {str(k): [str(v) for v in vocabulary] for k, vocabulary in (categories or {}).items()}

    @property
    def out_features(self) -> int:
        return len(self.numeric_index) + sum(self.cardinalities)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(len(x), -1)
        parts = [(x.index_select(1, self.numeric_index) - self.center) / self.scale]
        for position, size in zip(self.categorical_index.tolist(), self.cardinalities):
            codes = x[:, position].round().long()
            known = (codes >= 0) & (codes < size)
            parts.append(nn.functional.one_hot(codes.clamp(0, size - 1), size).to(x.dtype) * known.unsqueeze(1).to(x.dtype))
        return torch.cat(parts, dim=1)


class Classifier(nn.Module):
    """``head(penultimate(features(standardize(x))))``; ``forward`` returns logits of shape-(N, n_classes)."""

    def __init__(self, features: nn.Module, penultimate: nn.Module, head: nn.Linear) -> None:
        super().__init__()
        self.standardize = Standardize()
        self.features = features
        self.penultimate = penultimate
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations, shape-(N, D)."""
        return self.penultimate(self.features(self.standardize(x)))

    def set_input_statistics(self, mean: float, std: float) -> None:
        self.standardize = Standardize(mean, std)


def build_mlp(
    input_shape: Sequence[int], n_classes: int, *, hidden: Sequence[int], activation: str, beta: float
) -> Classifier:
    if not hidden:
        raise ConfigError("model.hidden must list at least one layer width for the MLP.")
    widths = [math.prod(input_shape), *hidden]
    layers: list[nn.Module] = [nn.Flatten()]
    for width_in, width_out in zip(widths[:-2], widths[1:-1]):
        layers += [nn.Linear(width_in, width_out), make_activation(activation, beta=beta)]
    penultimate = nn.Sequential(nn.Linear(widths[-2], widths[-1]), make_activation(activation, beta=beta))
    return Classifier(nn.Sequential(*layers), penultimate, nn.Linear(widths[-1], n_classes))


def build_cnn(
    input_shape: Sequence[int], n_classes: int, *, channels: Sequence[int], hidden: Sequence[int], activation: str, beta: float
) -> Classifier:
    if len(input_shape) != 3:
        raise ConfigError(
            f"model.family=cnn needs image data of shape (channels, height, width). Got input shape {tuple(input_shape)}; "
            "use model.family=mlp for tabular data or set data.image_shape."
        )
    if not channels or not hidden:
        raise ConfigError("model.channels and model.hidden must each list at least one width for the CNN.")
    in_channels, height, width = input_shape
    layers: list[nn.Module] = []
    for c_in, c_out in zip([in_channels, *channels[:-1]], channels):
        # GroupNorm, not BatchNorm: Opacus cannot give per-sample gradients through batch statistics.
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(min(4, c_out), c_out), make_activation(activation, beta=beta)]
    layers += [nn.AdaptiveAvgPool2d((max(1, height // 2), max(1, width // 2))), nn.Flatten()]
    flat = channels[-1] * max(1, height // 2) * max(1, width // 2)
    widths = [flat, *hidden]
    for width_in, width_out in zip(widths[:-2], widths[1:-1]):
        layers += [nn.Linear(width_in, width_out), make_activation(activation, beta=beta)]
    penultimate = nn.Sequential(nn.Linear(widths[-2], widths[-1]), make_activation(activation, beta=beta))
    return Classifier(nn.Sequential(*layers), penultimate, nn.Linear(widths[-1], n_classes))


def build_fashion_cnn(
    input_shape: Sequence[int], n_classes: int, *, channels: Sequence[int], hidden: Sequence[int], activation: str, beta: float
) -> Classifier:
    """One block per entry of ``channels`` (3x3 conv, GroupNorm, activation, 2x2 average pool), then
    ``hidden`` fully connected layers, the last of them ``penultimate``.

    Made for Fashion-MNIST (``model=fashion_cnn``: blocks of 16, 32 and 64 channels take 28x28 to
    3x3), usable on any C x H x W images that are at least ``2 ** len(channels)`` pixels on a side.
    Halving the resolution in every block keeps the convolutions cheap, which matters more under
    DP-SGD: Opacus materialises an unfolded copy of each conv input per sample.  Average pooling,
    not max pooling: it adds no kink of its own to the smooth activations (SmeLU) the prediction
    difference study compares.  GroupNorm, not BatchNorm, so Opacus gets per-sample gradients.
    """
    if len(input_shape) != 3:
        raise ConfigError(
            f"model.family=fashion_cnn needs image data of shape (channels, height, width). Got input shape {tuple(input_shape)}."
        )
    if not channels or not hidden:
        raise ConfigError("model.channels and model.hidden must each list at least one width for fashion_cnn.")
    in_channels, height, width = (int(size) for size in input_shape)
    side = 2 ** len(channels)
    if height < side or width < side:
        raise ConfigError(
            f"model.family=fashion_cnn halves the image {len(channels)} time(s) (model.channels={list(channels)}), so it needs "
            f"images of at least {side}x{side} pixels. Got {height}x{width}; use fewer channels entries or model=cnn."
        )
    layers: list[nn.Module] = []
    for c_in, c_out in zip([in_channels, *channels[:-1]], channels):
        layers += [
            nn.Conv2d(c_in, c_out, 3, padding=1),
            nn.GroupNorm(min(4, c_out), c_out),
            make_activation(activation, beta=beta),
            nn.AvgPool2d(2),
        ]
        height, width = height // 2, width // 2
    layers.append(nn.Flatten())
    widths = [channels[-1] * height * width, *hidden]
    for width_in, width_out in zip(widths[:-2], widths[1:-1]):
        layers += [nn.Linear(width_in, width_out), make_activation(activation, beta=beta)]
    penultimate = nn.Sequential(nn.Linear(widths[-2], widths[-1]), make_activation(activation, beta=beta))
    return Classifier(nn.Sequential(*layers), penultimate, nn.Linear(widths[-1], n_classes))


def build_tabular(
    preprocess: TabularPreprocess, n_classes: int, *, hidden: Sequence[int], activation: str, beta: float
) -> Classifier:
    """An MLP over :class:`TabularPreprocess`'d rows; the preprocessing is the ``standardize`` seam."""
    model = build_mlp((preprocess.out_features,), n_classes, hidden=hidden, activation=activation, beta=beta)
    model.standardize = preprocess
    return model


def build_classifier(
    family: str,
    input_shape: Sequence[int],
    n_classes: int,
    *,
    hidden: Sequence[int] = (64, 32),
    channels: Sequence[int] = (16, 32),
    activation: str = "relu",
    beta: float = 1.0,
    preprocess: TabularPreprocess | None = None,
) -> Classifier:
    """Build a classifier of the given family for inputs of ``input_shape`` (without the batch axis).

    ``tabular`` needs ``preprocess`` (fitted on the training split); its copy goes into the model.
    """
    if family == "tabular":
        if preprocess is None:
            raise ConfigError("model.family=tabular needs the per-column preprocessing fitted on the training split.")
        return build_tabular(copy.deepcopy(preprocess), n_classes, hidden=hidden, activation=activation, beta=beta)
    if family == "mlp":
        return build_mlp(input_shape, n_classes, hidden=hidden, activation=activation, beta=beta)
    if family == "cnn":
        return build_cnn(input_shape, n_classes, channels=channels, hidden=hidden, activation=activation, beta=beta)
    if family == "fashion_cnn":
        return build_fashion_cnn(input_shape, n_classes, channels=channels, hidden=hidden, activation=activation, beta=beta)
    raise ConfigError(f"Unknown model family {family!r}. Choose one of: {', '.join(MODEL_FAMILIES)}.")
