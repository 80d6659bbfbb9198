"""The Great Expectations suite catches each kind of corruption and names an example value."""

import numpy as np
import pytest

from trustops.data.digits import digits_frame, pixel_columns
from trustops.data.validation import ValidationRules, validate_frame

DIGITS_RULES = ValidationRules(value_range=(0.0, 16.0), classes=list(range(10)))


def run(frame, rules=DIGITS_RULES):
    return validate_frame(frame, feature_columns=pixel_columns(64), label_column="label", split_column="split", rules=rules)


@pytest.fixture(scope="module")
def clean():
    return digits_frame()


def test_clean_digits_pass(clean):
    report = run(clean)
    assert report.success, report.summary()
    assert report.evaluated > 64 * 3


@pytest.mark.parametrize(
    "corrupt,expectation,example",
    [
        (lambda f: f.loc.__setitem__((7, "pixel_3"), np.nan), "expect_column_values_to_not_be_null", "nan"),
        (lambda f: f.loc.__setitem__((7, "pixel_3"), 99.0), "expect_column_values_to_be_between", 99.0),
        (lambda f: f.loc.__setitem__((7, "pixel_3"), np.inf), "expect_column_values_to_be_between", float("inf")),
        (lambda f: f.loc.__setitem__((7, "label"), 42), "expect_column_values_to_be_in_set", 42),
    ],
    ids=["nan", "out-of-range", "inf", "unknown-label"],
)
def test_each_corruption_fails_with_an_example(clean, corrupt, expectation, example):
    frame = clean.copy()
    corrupt(frame)
    report = run(frame)
    assert not report.success
    failure = next(f for f in report.failed if f.expectation == expectation)
    shown = [str(v) for v in failure.examples]
    assert str(example) in shown
    assert expectation in report.summary()


def test_class_imbalance_and_too_few_rows_fail(clean):
    lopsided = clean[(clean["label"] != 3) | (clean.index % 10 == 0)]
    assert any(f.expectation == "expect_column_kl_divergence_to_be_less_than" for f in run(lopsided).failed)
    tiny = clean.head(50)
    assert any(f.expectation == "expect_table_row_count_to_be_between" for f in run(tiny).failed)


def test_learned_ranges_come_from_the_training_split(clean):
    frame = clean.copy()
    frame.loc[frame["split"] == "test", "pixel_10"] = 1000.0  # far outside what training saw
    report = run(frame, ValidationRules(range_margin=0.1))
    assert any(f.column == "pixel_10" and f.expectation == "expect_column_values_to_be_between" for f in report.failed)


@pytest.fixture(scope="module")
def clean_images():
    """2,000 seeded 28×28 images (784 pixel columns): wide enough to be checked as one pixel block."""
    import pandas as pd

    generator = np.random.default_rng(0)
    frame = pd.DataFrame(generator.integers(0, 256, size=(2000, 784)).astype("float32"), columns=pixel_columns(784))
    frame["label"] = np.arange(2000) % 10
    frame["split"] = np.where(np.arange(2000) % 5 == 0, "val", "train")
    return frame


IMAGE_RULES = ValidationRules(value_range=(0.0, 255.0), classes=list(range(10)))


def run_images(frame):
    return validate_frame(frame, feature_columns=pixel_columns(784), label_column="label", split_column="split", rules=IMAGE_RULES)


def test_wide_images_are_checked_as_one_pixel_block_and_pass_when_clean(clean_images):
    report = run_images(clean_images)
    assert report.success, report.summary()
    assert report.evaluated < 20  # a handful of block expectations, not three per pixel


@pytest.mark.parametrize(
    "corrupt,expectation,column",
    [
        (lambda f: f.loc.__setitem__((7, "pixel_300"), np.nan), "expect_column_values_to_not_be_null", "pixels_min"),
        (lambda f: f.loc.__setitem__((7, "pixel_300"), 256.0), "expect_column_values_to_be_between", "pixels_max"),
        (lambda f: f.loc.__setitem__((7, "pixel_0"), -1.0), "expect_column_values_to_be_between", "pixels_min"),
        (lambda f: f.insert(0, "row_id", range(len(f))), "expect_table_columns_to_match_set", None),
    ],
    ids=["missing pixel", "pixel above range", "pixel below range", "extra column"],
)
def test_the_pixel_block_still_catches_each_corruption(clean_images, corrupt, expectation, column):
    frame = clean_images.copy()
    corrupt(frame)
    report = run_images(frame)
    assert not report.success
    assert any(f.expectation == expectation and f.column == column for f in report.failed), report.summary()
