"""Known-answer tests for the Table-1 seed statistics (paper §4.4, Table 1)."""
import math

import numpy as np
import pytest

from welavae.metrics import seed_summary
from welavae.metrics.stats import SUCCESS_MSE, bootstrap_mean_ci, success_rate

# 12 seeds, one diverged (NaN).  The 11 finite scores are 1..11 in shuffled order.
VALUES = [5.0, 3.0, float("nan"), 1.0, 4.0, 2.0, 9.0, 8.0, 7.0, 6.0, 10.0, 11.0]


def test_known_summary_with_a_nan_seed():
    s = seed_summary(VALUES)
    assert s["n"] == 11 and s["excluded"] == 1
    assert s["lowest"] == 1.0 and s["argmin"] == 3  # index into VALUES, NaN included
    assert s["mean"] == pytest.approx(66 / 11)  # (1 + … + 11)/11 = 6
    assert s["best_k"] == 2  # ceil(0.1·11) = 2
    assert s["best_mean"] == pytest.approx(1.5)  # mean of 1 and 2
    assert s["median"] == 6.0  # the middle of 1..11


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


def test_median_of_an_even_count_is_the_mean_of_the_middle_two():
    assert seed_summary([4.0, 1.0, 3.0, 2.0])["median"] == 2.5
    assert math.isnan(seed_summary([float("nan")])["median"])


# ------------------------------------------------------------ bootstrap CI ---
def test_bootstrap_of_a_constant_sample_is_that_constant():
    # Every resample of (7, 7, 7, 7, 7) has mean 7, so both percentiles are exactly 7.
    assert bootstrap_mean_ci([7.0] * 5) == (7.0, 7.0)
    assert bootstrap_mean_ci([3.5]) == (3.5, 3.5)  # one seed: the only resample is itself
    assert all(math.isnan(x) for x in bootstrap_mean_ci([float("nan")]))


def test_bootstrap_of_two_values_spans_them():
    # Resamples of (a, b) of size 2 have mean a, (a+b)/2 or b with probabilities 1/4, 1/2, 1/4.
    # The 2.5 % and 97.5 % percentiles fall inside the a and b masses (each holds ~2,500 of
    # 10,000 draws; missing the 250th draw has probability < 1e-300), so the interval is (a, b).
    assert bootstrap_mean_ci([10.0, 30.0]) == (10.0, 30.0)
    # At level 0.4 both ends lie inside the middle mass (25 %…75 %): the interval is the midpoint.
    assert bootstrap_mean_ci([10.0, 30.0], level=0.4) == (20.0, 20.0)


def test_bootstrap_matches_the_normal_approximation_for_a_large_sample():
    # For n = 400 the bootstrap distribution of the mean is close to N(mean, s²/n) (CLT), so the
    # 95 % interval ≈ mean ± 1.96·s/√n with s the plug-in (ddof=0) standard deviation.
    x = np.random.default_rng(123).exponential(50.0, size=400)
    lo, hi = bootstrap_mean_ci(x, seed=1)
    half = 1.959964 * x.std() / math.sqrt(x.size)
    assert lo == pytest.approx(x.mean() - half, abs=0.1 * half)
    assert hi == pytest.approx(x.mean() + half, abs=0.1 * half)
    assert lo < x.mean() < hi


def test_bootstrap_is_determined_by_its_seed():
    x = [120.0, 80.0, 300.0, 45.0, 700.0, 60.0]
    assert bootstrap_mean_ci(x, seed=3) == bootstrap_mean_ci(list(x), seed=3)
    assert bootstrap_mean_ci(x, seed=3) != bootstrap_mean_ci(x, seed=4)
    assert bootstrap_mean_ci(x + [float("inf")]) == bootstrap_mean_ci(x)  # non-finite dropped first
    with pytest.raises(ValueError, match="level"):
        bootstrap_mean_ci(x, level=95)


# ------------------------------------------------------------ success rate ---
def test_success_rate_counts_diverged_seeds_as_failures():
    assert SUCCESS_MSE == 100.0  # a sixth of a perfect Cartesian code's polar MSE, 668.8
    # 5 finished seeds: 40 and 99.9 are below 100; 100 is not (strict); NaN and the masked seed fail.
    values = [40.0, 99.9, 100.0, float("nan"), 10.0]
    assert success_rate(values, valid=[True, True, True, True, False]) == pytest.approx(2 / 5)
    assert success_rate(values, 50.0) == pytest.approx(2 / 5)  # 40 and 10
    assert math.isnan(success_rate([]))
