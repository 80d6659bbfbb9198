"""The stratified split: complete, disjoint, stratified, seeded."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustops.data.split import stratified_split
from trustops.errors import ConfigError

label_arrays = st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=300).map(np.array)
fractions = st.tuples(st.floats(0.0, 0.45), st.floats(0.0, 0.45))


@given(labels=label_arrays, fractions=fractions, seed=st.integers(0, 2**16))
def test_every_sample_gets_exactly_one_known_split(labels, fractions, seed):
    split = stratified_split(labels, val_fraction=fractions[0], test_fraction=fractions[1], seed=seed)
    assert split.shape == labels.shape  # complete: one assignment per sample, so splits are disjoint
    assert set(split) <= {"train", "val", "test"}


@given(labels=label_arrays, fractions=fractions, seed=st.integers(0, 2**16))
def test_each_class_keeps_a_training_sample_and_its_share(labels, fractions, seed):
    val_fraction, test_fraction = fractions
    split = stratified_split(labels, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    for label in np.unique(labels):
        members = split[labels == label]
        assert (members == "train").sum() >= 1
        # Stratified: each class's share of a split is its fraction, up to rounding (one sample)
        # the at-least-one rule for non-zero fractions, and a tiny class keeping one training sample.
        for name, fraction in (("val", val_fraction), ("test", test_fraction)):
            assert abs((members == name).sum() - fraction * len(members)) <= 1.0 + 1e-9


def test_same_seed_same_split_and_other_seed_differs():
    labels = np.repeat(np.arange(10), 50)
    first = stratified_split(labels, val_fraction=0.2, test_fraction=0.2, seed=3)
    assert (first == stratified_split(labels, val_fraction=0.2, test_fraction=0.2, seed=3)).all()
    assert (first != stratified_split(labels, val_fraction=0.2, test_fraction=0.2, seed=4)).any()


@pytest.mark.parametrize("val,test", [(-0.1, 0.2), (0.2, 1.0), (0.6, 0.5)])
def test_rejects_fractions_that_leave_no_training_data(val, test):
    with pytest.raises(ConfigError, match="fraction"):
        stratified_split(np.zeros(10), val_fraction=val, test_fraction=test, seed=0)
