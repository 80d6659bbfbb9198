"""User data through the same loader: CSV, Parquet and NumPy images, with clear errors."""

import numpy as np
import pandas as pd
import pytest

from trustops.data.digits import digits_frame, export_digits
from trustops.data.loading import load_dataset
from trustops.errors import DataError
from trustops.lineage import file_md5


@pytest.fixture
def table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 4)), columns=["a", "b", "c", "d"])
    frame["species"] = rng.choice(["cat", "dog", "eel"], size=300)
    return frame


def test_csv_with_named_label_gets_a_stratified_split(tmp_path, table):
    path = tmp_path / "animals.csv"
    table.to_csv(path, index=False)
    frame, info = load_dataset(path, label_column="species")
    assert info.feature_columns == ["a", "b", "c", "d"]
    assert info.classes == ["cat", "dog", "eel"]
    assert sum(info.split_sizes.values()) == 300
    assert info.input_shape == (4,)
    assert info.data_hash == file_md5(path)


def test_parquet_with_its_own_split_column_keeps_it(tmp_path):
    path = export_digits(tmp_path / "digits.parquet")
    frame, info = load_dataset(path, image_shape=[1, 8, 8])
    expected = digits_frame()
    assert (frame["split"].to_numpy() == expected["split"].to_numpy()).all()
    assert info.input_shape == (1, 8, 8)
    assert info.classes == list(range(10))


def test_npz_images_are_flattened_with_their_shape(tmp_path):
    images = np.random.default_rng(1).integers(0, 255, size=(120, 6, 5)).astype(np.uint8)
    labels = np.arange(120) % 3
    path = tmp_path / "images.npz"
    np.savez(path, images=images, labels=labels)
    frame, info = load_dataset(path)
    assert info.image_shape == [1, 6, 5]
    assert len(info.feature_columns) == 30
    assert (frame[info.feature_columns].to_numpy()[0] == images[0].reshape(-1)).all()


def test_missing_file_names_the_path_and_suggests_dvc_pull(tmp_path):
    missing = tmp_path / "data" / "nope.parquet"
    with pytest.raises(DataError, match=r"nope\.parquet.*dvc pull"):
        load_dataset(missing)


def test_absent_label_column_lists_the_columns(tmp_path, table):
    path = tmp_path / "animals.csv"
    table.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"Label column 'label' is not in .*a, b, c, d, species"):
        load_dataset(path)


@pytest.mark.parametrize(
    "arrays,message",
    [({"x": np.zeros((3, 2, 2))}, "images"), ({"images": np.zeros((3, 2, 2)), "labels": np.zeros(2)}, "3 images but 2 labels")],
)
def test_bad_npz_layouts(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=message):
        load_dataset(path)


def test_unreadable_file_is_a_data_error(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="Could not read"):
        load_dataset(path)
