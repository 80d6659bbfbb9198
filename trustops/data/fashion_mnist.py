"""Fashion-MNIST, trustops' second built-in data set, from Debian's ``dataset-fashion-mnist`` package.

Zalando's 70,000 grey 28x28 images of clothing in 10 balanced classes (Xiao, Rasul & Vollgraf,
2017), as the four original gzipped IDX files the package installs under
:data:`DEFAULT_SOURCE_DIR`.  Nothing is downloaded: without the package the reader says which
``apt-get install`` gives it.  :func:`export_fashion_mnist` is the command behind the
``prepare_fashion_mnist`` stage in ``dvc.yaml``.

The exported ``.npz`` is what ``data=images`` (and ``data=fashion_mnist``) reads: ``images``,
shape-(70000, 1, 28, 28) uint8 pixels 0-255, ``labels``, shape-(70000,) int64 classes 0-9, and
``split``, shape-(70000,) ``train``/``val``/``test``.  The official 10,000 test images are the
``test`` split, so test accuracies compare with published ones; a seeded, stratified
``val_size`` of the official 60,000 training images (500 per class by default) is ``val``.
Pixels stay uint8 on disk and while reading (55 MB for all 70,000 images, not 440 MB of float64).
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trustops.data.split import stratified_split
from trustops.errors import DataError

DEFAULT_SOURCE_DIR = Path("/usr/share/datasets/fashion-mnist")
INSTALL_HINT = "Install Debian's package with `apt-get install dataset-fashion-mnist`"
IMAGE_SHAPE = (1, 28, 28)
VALUE_RANGE = (0.0, 255.0)
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
#: IDX magic numbers: 0x0000 + data type 0x08 (unsigned byte) + the number of dimensions.
IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
#: part -> (images file, labels file, number of images), as Zalando publishes them.
PARTS = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60_000),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10_000),
}
DEFAULT_VAL_SIZE = 5_000


@dataclass(frozen=True)
class FashionMNISTPart:
    """One of the two published parts: ``images`` shape-(N, 28, 28) uint8, ``labels`` shape-(N,) uint8."""

    images: np.ndarray
    labels: np.ndarray


def _read_gzip(path: Path) -> bytes:
    if not path.is_file():
        raise DataError(
            f"Fashion-MNIST file not found: {path}. {INSTALL_HINT}, or point --source-dir at a folder holding "
            f"the four IDX files ({', '.join(name for part in PARTS.values() for name in part[:2])})."
        )
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except EOFError:
        raise DataError(f"{path} is truncated: its gzip stream ends early. {INSTALL_HINT} again (`--reinstall`).") from None
    except (OSError, zlib.error) as error:  # gzip raises BadGzipFile (an OSError) or zlib.error for damaged bytes
        raise DataError(f"{path} is not a readable gzip file ({error}). {INSTALL_HINT} again (`--reinstall`).") from None


def _read_idx(path: Path, *, magic: int, dims: int) -> tuple[tuple[int, ...], np.ndarray]:
    """The header's sizes and the body as a flat uint8 array (a view of the decompressed bytes)."""
    raw = _read_gzip(path)
    header_bytes = 4 * (1 + dims)
    if len(raw) < header_bytes:
        raise DataError(f"{path} is truncated: {len(raw)} bytes, shorter than the {header_bytes}-byte IDX header.")
    header = np.frombuffer(raw, dtype=">u4", count=1 + dims)
    if int(header[0]) != magic:
        kinds = {IMAGES_MAGIC: "an IDX image file", LABELS_MAGIC: "an IDX label file"}
        found = kinds.get(int(header[0]), "not an IDX file of unsigned bytes")
        raise DataError(f"{path} has magic number {int(header[0])}, expected {magic} ({kinds[magic]}); it is {found}.")
    shape = tuple(int(size) for size in header[1:])
    body = np.frombuffer(raw, dtype=np.uint8, offset=header_bytes)
    expected = int(np.prod(shape))
    if len(body) != expected:
        problem = "is truncated" if len(body) < expected else "has trailing bytes"
        raise DataError(f"{path} {problem}: its header says shape {shape} ({expected:,} bytes) but {len(body):,} bytes follow.")
    return shape, body


def read_part(part: str, source_dir: Path = DEFAULT_SOURCE_DIR) -> FashionMNISTPart:
    """Read and check one published part (``train`` or ``test``) from its two IDX files.

    Raises :class:`DataError` naming the file and what is wrong: missing, not gzip, truncated,
    a wrong magic number, image size or count, or a label outside 0-9.
    """
    if part not in PARTS:
        raise DataError(f"Fashion-MNIST has parts {', '.join(PARTS)}. Got: {part!r}")
    images_name, labels_name, count = PARTS[part]
    source_dir = Path(source_dir)
    images_path, labels_path = source_dir / images_name, source_dir / labels_name
    images_shape, pixels = _read_idx(images_path, magic=IMAGES_MAGIC, dims=3)
    if images_shape != (count, *IMAGE_SHAPE[1:]):
        raise DataError(f"{images_path} holds images of shape {images_shape}, expected ({count}, 28, 28) for the {part} part.")
    (n_labels,), labels = _read_idx(labels_path, magic=LABELS_MAGIC, dims=1)
    if n_labels != count:
        raise DataError(f"{labels_path} holds {n_labels:,} labels, expected {count:,} (one per image of the {part} part).")
    if labels.max(initial=0) >= len(CLASS_NAMES):
        bad = np.flatnonzero(labels >= len(CLASS_NAMES))
        raise DataError(f"{labels_path} has label {int(labels[bad[0]])} at position {int(bad[0])}; Fashion-MNIST's classes are 0-9.")
    return FashionMNISTPart(images=pixels.reshape(images_shape), labels=labels)


def fashion_mnist_arrays(
    source_dir: Path = DEFAULT_SOURCE_DIR, *, seed: int = 0, val_size: int = DEFAULT_VAL_SIZE
) -> dict[str, np.ndarray]:
    """The exported arrays: ``images`` (N, 1, 28, 28) uint8, ``labels`` (N,) int64, ``split`` (N,) str.

    The 60,000 training images come first, in the published order, then the 10,000 test images.
    """
    train, test = read_part("train", source_dir), read_part("test", source_dir)
    if not 0 <= val_size < len(train.labels):
        raise DataError(f"val_size must satisfy 0 <= val_size < {len(train.labels):,}. Got: {val_size}")
    split = np.concatenate([
        stratified_split(train.labels, val_fraction=val_size / len(train.labels), test_fraction=0.0, seed=seed),
        np.full(len(test.labels), "test"),
    ]).astype("<U5")  # fixed-width text, so np.load needs no pickle
    images = np.concatenate([train.images, test.images])[:, None]
    labels = np.concatenate([train.labels, test.labels]).astype(np.int64)
    return {"images": images, "labels": labels, "split": split}


def export_fashion_mnist(
    out: Path, *, source_dir: Path = DEFAULT_SOURCE_DIR, seed: int = 0, val_size: int = DEFAULT_VAL_SIZE
) -> Path:
    """Write :func:`fashion_mnist_arrays` to ``out`` as a compressed ``.npz``, atomically.

    Byte for byte the same for the same inputs and seed (zip entries carry a fixed date), so
    DVC's hash in ``dvc.lock`` is reproducible.
    """
    out = Path(out)
    if out.suffix != ".npz":
        raise DataError(f"The Fashion-MNIST export is an .npz file (what data=images reads). Got: {out}")
    arrays = fashion_mnist_arrays(source_dir, seed=seed, val_size=val_size)  # read and check before writing anything
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with open(partial, "wb") as handle:  # a handle: np.savez would append .npz to a .partial name
        np.savez_compressed(handle, **arrays)
    partial.replace(out)
    return out
