"""Fashion-MNIST from Debian's dataset-fashion-mnist: the IDX reader on the real files, the exported
split, and each kind of bad file as one clear line.

The package is a test requirement (.ci/run installs it), so a missing package fails, never skips.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from trustops import cli
from trustops.data.fashion_mnist import (
    DEFAULT_SOURCE_DIR,
    IMAGE_SHAPE,
    PARTS,
    VALUE_RANGE,
    export_fashion_mnist,
    fashion_mnist_arrays,
    read_part,
)
from trustops.data.loading import load_dataset
from trustops.errors import DataError

TRAIN_IMAGES, TRAIN_LABELS, _ = PARTS["train"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    return export_fashion_mnist(tmp_path_factory.mktemp("fashion") / "fashion_mnist.npz", seed=0)


def test_the_debian_files_read_as_the_published_parts():
    train, test = read_part("train"), read_part("test")
    assert train.images.shape == (60_000, 28, 28) and test.images.shape == (10_000, 28, 28)
    assert train.images.dtype == test.images.dtype == np.uint8
    # Zalando's published sets are exactly balanced: 6,000 and 1,000 images per class.
    assert np.bincount(train.labels, minlength=10).tolist() == [6_000] * 10
    assert np.bincount(test.labels, minlength=10).tolist() == [1_000] * 10
    # The first labels as Zalando lists them (9 = ankle boot): a header offset off by one byte would scramble them.
    assert train.labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert test.labels[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert (int(train.images.min()), int(train.images.max())) == VALUE_RANGE
    # Real images, not noise: the mean ankle boot is brighter in the bottom half (the sole) than in the top rows.
    boots = train.images[train.labels == 9].astype(np.float64).mean(axis=0)
    assert boots[20:].mean() > 2 * boots[:8].mean()


def test_the_export_keeps_the_official_test_set_and_a_seeded_stratified_val_split():
    arrays = fashion_mnist_arrays(seed=0)
    images, labels, split = arrays["images"], arrays["labels"], arrays["split"]
    assert images.shape == (70_000, *IMAGE_SHAPE) and images.dtype == np.uint8  # 55 MB, not float64's 440 MB
    assert (split[60_000:] == "test").all() and not (split[:60_000] == "test").any()
    assert np.array_equal(images[60_000:, 0], read_part("test").images)
    for name, per_class in (("train", 5_500), ("val", 500), ("test", 1_000)):
        assert np.bincount(labels[split == name], minlength=10).tolist() == [per_class] * 10, name
    again = fashion_mnist_arrays(seed=0)["split"]
    other = fashion_mnist_arrays(seed=1)["split"]
    assert np.array_equal(again, split)
    assert not np.array_equal(other, split)
    assert (other == "val").sum() == 5_000 and 0 < ((other == "val") & (split == "val")).sum() < 5_000


def test_the_npz_is_what_data_images_reads_and_is_reproducible(exported, tmp_path):
    frame, info = load_dataset(exported)
    assert info.image_shape == list(IMAGE_SHAPE) and len(info.feature_columns) == 784
    assert info.split_sizes == {"train": 55_000, "val": 5_000, "test": 10_000}  # the file's split, not a new one
    assert info.classes == list(range(10))
    assert frame[info.feature_columns[0]].dtype == np.float32
    pixels = frame[info.feature_columns].to_numpy()
    assert pixels.min() == 0.0 and pixels.max() == 255.0

    capped, capped_info = load_dataset(exported, max_train_rows=1_000)
    assert capped_info.split_sizes == {"train": 1_000, "val": 5_000, "test": 10_000}
    train_labels = capped.loc[capped["split"] == "train", "label"]
    assert np.bincount(train_labels, minlength=10).tolist() == [100] * 10

    # The same source and seed give the same bytes, so the hash DVC records in dvc.lock is reproducible.
    second = export_fashion_mnist(tmp_path / "again.npz", seed=0)
    assert hashlib.md5(second.read_bytes()).digest() == hashlib.md5(exported.read_bytes()).digest()


def _idx(magic: int, sizes: tuple[int, ...], body: bytes) -> bytes:
    return struct.pack(f">{1 + len(sizes)}I", magic, *sizes) + body


def _source(folder: Path, *, images: bytes | None = None, labels: bytes | None = None, gzipped: bool = True) -> Path:
    """A source folder: the real training files, with ``images`` or ``labels`` replaced by these bytes."""
    folder.mkdir(exist_ok=True)
    for name, replacement in ((TRAIN_IMAGES, images), (TRAIN_LABELS, labels)):
        if replacement is None:
            (folder / name).symlink_to(DEFAULT_SOURCE_DIR / name)
        else:
            (folder / name).write_bytes(gzip.compress(replacement, mtime=0) if gzipped else replacement)
    return folder


def _truncated_gzip(folder: Path) -> Path:
    folder.mkdir()
    (folder / TRAIN_IMAGES).write_bytes((DEFAULT_SOURCE_DIR / TRAIN_IMAGES).read_bytes()[:100_000])
    return folder


LABELS_OK = _idx(2049, (60_000,), bytes(60_000))

BAD_SOURCES = {
    "missing package": (lambda d: d / "absent", r"not found: .*train-images-idx3-ubyte\.gz\. .*apt-get install dataset-fashion-mnist"),
    "not gzip": (lambda d: _source(d, images=b"P5 28 28 255\n", gzipped=False), r"train-images-idx3-ubyte\.gz is not a readable gzip file"),
    "truncated gzip stream": (_truncated_gzip, r"train-images-idx3-ubyte\.gz is truncated: its gzip stream ends early"),
    "truncated header": (lambda d: _source(d, images=b"\x00\x00\x08\x03\x00"), r"is truncated: 5 bytes, shorter than the 16-byte IDX header"),
    "labels where images belong": (lambda d: _source(d, images=LABELS_OK),
                                   r"train-images-idx3-ubyte\.gz has magic number 2049, expected 2051 \(an IDX image file\); it is an IDX label file"),
    "wrong magic": (lambda d: _source(d, images=_idx(2052, (1, 28, 28), bytes(784))), r"magic number 2052, expected 2051"),
    "truncated pixels": (lambda d: _source(d, images=_idx(2051, (60_000, 28, 28), bytes(1_000))),
                         r"images-idx3-ubyte\.gz is truncated: its header says shape \(60000, 28, 28\) \(47,040,000 bytes\) but 1,000 bytes follow"),
    "trailing bytes": (lambda d: _source(d, labels=LABELS_OK + b"\x00"), r"labels-idx1-ubyte\.gz has trailing bytes"),
    "wrong image count": (lambda d: _source(d, images=_idx(2051, (100, 28, 28), bytes(78_400))),
                          r"holds images of shape \(100, 28, 28\), expected \(60000, 28, 28\) for the train part"),
    "wrong image size": (lambda d: _source(d, images=_idx(2051, (60_000, 8, 8), bytes(60_000 * 64))), r"shape \(60000, 8, 8\), expected"),
    "wrong label count": (lambda d: _source(d, labels=_idx(2049, (10,), bytes(10))), r"holds 10 labels, expected 60,000"),
    "label outside 0-9": (lambda d: _source(d, labels=_idx(2049, (60_000,), bytes(59_999) + b"\x0a")),
                          r"has label 10 at position 59999; Fashion-MNIST's classes are 0-9"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_SOURCES))
def test_a_bad_source_is_one_line_naming_the_file_and_the_problem(case, tmp_path):
    make, expected = BAD_SOURCES[case]
    source = make(tmp_path / "source")
    with pytest.raises(DataError, match=expected) as raised:
        read_part("train", source)
    assert "\n" not in str(raised.value)


def test_prepare_without_the_package_exits_2_with_the_install_hint_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "data" / "fashion_mnist.npz"
    code = cli.main(["prepare", "--dataset", "fashion_mnist", "--source-dir", str(tmp_path / "absent"), "--out", str(out)])
    error = capsys.readouterr().err
    assert code == 2
    assert error.count("\n") == 1 and error.startswith("trustops: error: Fashion-MNIST file not found: ")
    assert "apt-get install dataset-fashion-mnist" in error
    assert not (tmp_path / "data").exists()  # nothing half-written for DVC to hash


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--dataset", "digits", "--source-dir", "/x"], "--source-dir is for --dataset fashion_mnist"),
        (["--dataset", "fashion_mnist", "--out", "fashion.parquet"], "is an .npz file"),
    ],
)
def test_prepare_refuses_options_that_do_not_fit_the_dataset(argv, expected, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["prepare", *argv]) == 2
    error = capsys.readouterr().err
    assert expected in error and error.count("\n") == 1
    assert [p.name for p in tmp_path.iterdir() if p.name != ".trustops"] == []  # .trustops: every command's state folder
