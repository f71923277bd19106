"""The seeded train/test splits of the classifier-based metrics (metrics/_split.py)."""
import numpy as np
import pytest

from welavae.metrics import split_indices


def test_split_sizes_shrink_in_proportion_and_are_disjoint():
    tr, te = split_indices(1000, num_train=10_000, num_test=5_000, seed=3)
    assert (len(tr), len(te)) == (666, 334) and not set(tr) & set(te)
    tr2, te2 = split_indices(1000, num_train=10_000, num_test=5_000, seed=3)
    np.testing.assert_array_equal(tr, tr2)
    tr, te = split_indices(1000, num_train=100, num_test=50)
    assert (len(tr), len(te)) == (100, 50)


def test_groups_stay_on_one_side_of_the_split():
    groups = np.repeat(np.arange(64), 16)  # e.g. 16 variants of each of 64 positions
    tr, te = split_indices(1024, num_train=600, num_test=400, seed=1, groups=groups)
    assert len(tr) == 600 and 0 < len(te) <= 400
    assert not set(groups[tr]) & set(groups[te])
    with pytest.raises(ValueError, match="no sample for the test split"):
        split_indices(32, num_train=31, num_test=1, groups=np.repeat([0, 1], 16))
