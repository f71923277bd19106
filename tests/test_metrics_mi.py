"""Known-answer tests for the shared discretisation and MI helpers (metrics/_mi.py; disentanglement_lib utils.py)."""
import json
import math

import numpy as np
import pytest
from metric_cases import GRID, C
from sklearn.metrics import mutual_info_score

from welavae.data import polar_factors
from welavae.metrics import discretize_factors, factor_entropy, histogram_discretize, mutual_info_matrix


# --------------------------------------------------------------- discretisation
def test_histogram_discretize_matches_disentanglement_lib():
    x = np.random.default_rng(0).normal(size=(500, 3))
    # disentanglement_lib: np.digitize(x, np.histogram(x, bins)[1][:-1]), 1-based.
    ref = np.stack([np.digitize(col, np.histogram(col, 20)[1][:-1]) - 1 for col in x.T], 1)
    np.testing.assert_array_equal(histogram_discretize(x, bins=20), ref)
    # 20 bins over [0, 63] have width 3.15: c = 0..63 falls in floor(c / 3.15) (63 in the last bin).
    np.testing.assert_array_equal(histogram_discretize(C)[:, 0], np.minimum(np.floor(C / 3.15), 19))
    assert np.all(histogram_discretize(np.full((5, 1), 3.0)) == 0)


def test_discretize_factors_bins_only_the_named_columns_and_records_how():
    polar = polar_factors(GRID)
    mixed = np.stack([GRID[:, 0], polar[:, 1]], 1)  # c1 (discrete) and d (continuous)
    disc = discretize_factors(mixed, continuous=[1], bins=10)
    np.testing.assert_array_equal(disc.codes[:, 0], GRID[:, 0])
    np.testing.assert_array_equal(disc.codes[:, 1], histogram_discretize(polar[:, 1], bins=10)[:, 0])
    assert disc.binned == ({"factor": 1, "method": "equal-width", "bins": 10,
                            "min": 0.0, "max": pytest.approx(63 * math.sqrt(2))},)
    json.dumps(disc.binned)
    with pytest.raises(ValueError, match=r"column 1 is continuous.*continuous=\[1\]"):
        discretize_factors(mixed)
    with pytest.raises(ValueError, match="continuous must list"):
        discretize_factors(mixed, continuous=[2])




def test_mutual_information_is_sklearns_on_binned_latents():
    # disentanglement_lib's discrete_mutual_info is sklearn's mutual_info_score(factor, binned latent).
    mu = np.random.default_rng(1).normal(size=(4096, 2)) + GRID[:, :1] / 20
    b = histogram_discretize(mu)
    expected = [[mutual_info_score(GRID[:, j], b[:, i]) for j in range(2)] for i in range(2)]
    np.testing.assert_allclose(mutual_info_matrix(mu, GRID), expected, rtol=1e-12)
    np.testing.assert_allclose(factor_entropy(GRID), [math.log(64)] * 2)
