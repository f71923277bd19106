"""Known-answer tests for the Table-1 seed statistics (paper §4.4, Table 1)."""
import math

import numpy as np
import pytest

from welavae.metrics import seed_summary

# 12 seeds, one diverged (NaN).  The 11 finite scores are 1..11 in shuffled order.
VALUES = [5.0, 3.0, float("nan"), 1.0, 4.0, 2.0, 9.0, 8.0, 7.0, 6.0, 10.0, 11.0]


def test_known_summary_with_a_nan_seed():
    s = seed_summary(VALUES)
    assert s["n"] == 11 and s["excluded"] == 1
    assert s["lowest"] == 1.0 and s["argmin"] == 3  # index into VALUES, NaN included
    assert s["mean"] == pytest.approx(66 / 11)  # (1 + … + 11)/11 = 6
    assert s["best_k"] == 2  # ceil(0.1·11) = 2
    assert s["best_mean"] == pytest.approx(1.5)  # mean of 1 and 2


def test_valid_mask_and_inf_are_excluded():
    valid = np.ones(12, bool)
    valid[3] = False  # drop the best seed
    values = list(VALUES)
    values[6] = float("inf")  # and an overflowed one (was 9)
    s = seed_summary(values, valid=valid)
    assert s["n"] == 9 and s["excluded"] == 3
    assert s["lowest"] == 2.0 and s["argmin"] == 5
    assert s["mean"] == pytest.approx((66 - 1 - 9) / 9)
    assert s["best_k"] == 1 and s["best_mean"] == 2.0  # ceil(0.9) = 1


def test_best_k_is_ceil_of_ten_percent_without_float_creep():
    # 0.1·30 = 3.0000000000000004 in floating point; Table 1's "best 10 %" of 30 seeds is 3.
    s = seed_summary(np.arange(30.0)[::-1])
    assert s["best_k"] == 3 and s["best_mean"] == pytest.approx(1.0)  # mean(0, 1, 2)
    assert s["argmin"] == 29
    assert seed_summary(np.arange(50.0))["best_k"] == 5  # paper: 50 seeds → best 5
    assert seed_summary([4.0])["best_k"] == 1
    assert seed_summary(np.arange(10.0), best_fraction=0.25)["best_k"] == math.ceil(2.5)


def test_no_seed_left_gives_nan_and_minus_one():
    s = seed_summary([float("nan"), 3.0], valid=[True, False])
    assert s["n"] == 0 and s["excluded"] == 2 and s["argmin"] == -1 and s["best_k"] == 0
    assert all(math.isnan(s[k]) for k in ("lowest", "mean", "best_mean"))


def test_valid_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="valid has shape"):
        seed_summary([1.0, 2.0], valid=[True])
