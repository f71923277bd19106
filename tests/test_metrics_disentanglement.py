"""Known-answer tests for MIG, DCI, SAP and modularity (disentanglement_lib style)."""
import math

import numpy as np
import pytest
import torch

from welavae.data import polar_factors
from welavae.metrics import (
    all_metrics,
    dci,
    dci_from_importance,
    dci_importance,
    histogram_discretize,
    mig,
    modularity,
    modularity_from_mi,
    mutual_info_matrix,
    sap,
)

C = np.arange(64.0)
GRID = np.stack(np.meshgrid(C, C, indexing="ij"), axis=-1).reshape(-1, 2)  # independent (c1, c2)
KEYS = {"mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "sap", "modularity"}


def _bin_of(c):
    # 20 equal-width bins over [0, 63] have width 3.15; k·3.15 is an integer only at
    # k = 20, so floor(c / 3.15) (clipped) is unambiguous for integer c.
    return np.minimum(np.floor(c / 3.15), 19).astype(int)


# --------------------------------------------------------------- discretisation
def test_histogram_discretize_matches_disentanglement_lib():
    x = np.random.default_rng(0).normal(size=(500, 3))
    # disentanglement_lib: np.digitize(x, np.histogram(x, bins)[1][:-1]), 1-based.
    ref = np.stack([np.digitize(col, np.histogram(col, 20)[1][:-1]) - 1 for col in x.T], 1)
    np.testing.assert_array_equal(histogram_discretize(x, bins=20), ref)
    np.testing.assert_array_equal(histogram_discretize(GRID)[:, 0], _bin_of(GRID[:, 0]))
    assert np.all(histogram_discretize(np.full((5, 1), 3.0)) == 0)


def test_mutual_information_of_identity_is_the_binned_entropy():
    # I(bin(c1); bin(c1)) = H(bin(c1)); on the full grid bin(c1) ⟂ bin(c2) so I = 0.
    p = np.bincount(_bin_of(C)) / 64
    h = -np.sum(p * np.log(p))
    mi = mutual_info_matrix(GRID, GRID)
    np.testing.assert_allclose(mi, [[h, 0], [0, h]], atol=1e-12)


# ------------------------------------------------------------------------- MIG
def test_identity_representation_is_perfect():
    # Factors are independent on the grid and the latents are binned exactly like
    # the factors, so every off-diagonal MI, η² and correlation is exactly 0.
    m = all_metrics(GRID, GRID)
    assert set(m) == KEYS and all(isinstance(v, float) for v in m.values())
    for key in ("mig", "dci_disentanglement", "dci_completeness", "sap", "modularity"):
        assert m[key] == pytest.approx(1.0, abs=1e-12), key
    assert m["dci_informativeness"] >= 0.99


def test_constant_representation_scores_zero():
    m = all_metrics(np.ones((4096, 3)), GRID)
    assert m == {k: 0.0 for k in KEYS}


def test_duplicated_latent_has_zero_gap():
    # μ = (c1, c1): both latents tie on c1 and neither knows c2 → every gap is 0.
    assert mig(GRID[:, [0, 0]], GRID) == pytest.approx(0.0, abs=1e-12)
    assert sap(GRID[:, [0, 0]], GRID) == pytest.approx(0.0, abs=1e-12)


def test_random_representation_scores_near_zero():
    m = all_metrics(np.random.default_rng(1).normal(size=(4096, 3)), GRID)
    assert m["mig"] < 0.01 and m["sap"] < 0.01 and m["dci_informativeness"] < 0.01
    assert m["dci_disentanglement"] < 0.2 and m["dci_completeness"] < 0.2  # flat chance-level η²


def test_constant_latent_beside_a_perfect_pair():
    # The dead latent has no MI → modularity 0 for it (disentanglement_lib's rule):
    # mean(1, 1, 0) = 2/3.  It gets zero DCI weight and never beats the runner-up.
    mu = np.concatenate([GRID, np.full((4096, 1), 7.0)], 1)
    m = all_metrics(mu, GRID)
    assert m["modularity"] == pytest.approx(2 / 3)
    for key in ("mig", "dci_disentanglement", "dci_completeness", "sap"):
        assert m[key] == pytest.approx(1.0, abs=1e-12), key


def test_cartesian_code_scores_higher_on_cartesian_than_on_polar_factors():
    polar = polar_factors(GRID)
    assert mig(GRID, GRID) == pytest.approx(1.0)
    assert mig(GRID, polar) < 0.05  # c1 and c2 each carry as much about φ and about d
    assert mig(polar, polar) > 0.9  # and a polar code is disentangled w.r.t. polar factors


def test_constant_factor_gives_no_nan():
    factors = np.stack([GRID[:, 0], np.zeros(4096)], 1)
    m = all_metrics(GRID, factors)
    assert all(np.isfinite(v) for v in m.values())
    assert m["mig"] == pytest.approx(0.5)  # factor 1: gap/H = 1; constant factor: 0


# ------------------------------------------------------------------------- DCI
def test_identity_importance_is_the_hand_computed_correlation_ratio():
    # η² = SS_between / SS_total of c grouped into its 20 bins, computed from the bin means.
    b = _bin_of(C)
    means = np.array([C[b == k].mean() for k in range(20)])
    eta2 = np.sum(np.bincount(b) * (means - C.mean()) ** 2) / np.sum((C - C.mean()) ** 2)
    r = dci_importance(GRID, GRID)
    np.testing.assert_allclose(r, [[eta2, 0], [0, eta2]], atol=1e-12)
    res = dci(GRID, GRID)
    assert res.disentanglement == pytest.approx(1.0) and res.completeness == pytest.approx(1.0)
    # The held-out R² of the additive ridge fit reproduces the in-sample η² (≈ 0.9975).
    assert res.informativeness == pytest.approx(eta2, abs=2e-3)


def test_importance_sees_a_monotone_nonlinear_latent():
    mu = np.stack([np.exp(GRID[:, 0] / 16), GRID[:, 1] ** 3], 1)
    res = dci(mu, GRID)
    assert res.disentanglement > 0.99 and res.completeness > 0.99 and res.informativeness > 0.9


@pytest.mark.parametrize(
    "matrix, expected",
    [
        (np.eye(2), (1.0, 1.0)),
        (np.diag([5.0, 1.0, 2.0]), (1.0, 1.0)),
        (np.ones((2, 2)), (0.0, 0.0)),
        (np.ones((3, 3)), (0.0, 0.0)),
        (np.zeros((2, 2)), (0.0, 0.0)),
        # Rows [3, 1] and [0, 2]: code 0 has p = (3/4, 1/4), code 1 is pure; weights 4/6, 2/6.
        # Columns [3, 0] (pure) and [1, 2] with p = (1/3, 2/3); weights 3/6, 3/6.
        (
            np.array([[3.0, 1.0], [0.0, 2.0]]),
            (
                4 / 6 * (1 + 0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)) + 2 / 6,
                3 / 6 + 3 / 6 * (1 + 1 / 3 * math.log2(1 / 3) + 2 / 3 * math.log2(2 / 3)),
            ),
        ),
    ],
)
def test_dci_from_hand_built_importance(matrix, expected):
    assert dci_from_importance(matrix) == pytest.approx(expected, abs=1e-12)


def _dlib_dci(r):
    """disentanglement_lib dci.disentanglement / completeness with scipy.stats.entropy inlined."""
    def entropy(p, base):  # scipy.stats.entropy: normalises along axis 0
        p = p / p.sum(axis=0)
        return -np.sum(p * np.log(p), axis=0) / np.log(base)

    per_code = 1 - entropy(r.T + 1e-11, r.shape[1])
    per_factor = 1 - entropy(r + 1e-11, r.shape[0])
    return (np.sum(per_code * r.sum(1) / r.sum()), np.sum(per_factor * r.sum(0) / r.sum()))


def test_dci_from_importance_matches_disentanglement_lib():
    r = np.random.default_rng(2).random((5, 3)) ** 3
    r[1, 2] = 0.0  # exercise 0·log 0
    assert dci_from_importance(r) == pytest.approx(_dlib_dci(r), abs=1e-8)


def test_dci_rejects_bad_importance():
    with pytest.raises(ValueError, match="non-negative"):
        dci_from_importance([[1.0, -1.0]])
    with pytest.raises(ValueError, match="2-D"):
        dci_from_importance([1.0, 2.0])


def test_informativeness_is_seeded():
    mu = GRID + np.random.default_rng(3).normal(scale=3.0, size=GRID.shape)
    a, b = dci(mu, GRID, seed=5), dci(mu, GRID, seed=5)
    assert a.informativeness == b.informativeness
    assert dci(mu, GRID, seed=6).informativeness == pytest.approx(a.informativeness, abs=0.02)


# ------------------------------------------------------------------ SAP, modularity
def test_sap_linear_and_binned_scores():
    # μ = (c1², c2): squared correlation of c with c² over 0..63 is < 1, η² of the
    # binned monotone map is ≈ 1 — the binned score sees the non-linear relation.
    mu = np.stack([GRID[:, 0] ** 2, GRID[:, 1]], 1)
    r2 = np.corrcoef(C, C**2)[0, 1] ** 2
    assert sap(mu, GRID) == pytest.approx((r2 + 1) / 2, abs=1e-12)
    assert sap(mu, GRID, fit="binned") > sap(mu, GRID)
    with pytest.raises(ValueError, match="fit must be"):
        sap(mu, GRID, fit="trees")


@pytest.mark.parametrize(
    "mi, expected",
    [
        (np.eye(2), 1.0),
        (np.ones((2, 2)), 0.0),
        # code 0: squares (4, 1), δ = 1/(4·1) → 0.75; code 1 carries nothing → 0.
        (np.array([[2.0, 1.0], [0.0, 0.0]]), 0.375),
        (np.array([[3.0], [1.0]]), 1.0),  # one factor: every informative code is modular
    ],
)
def test_modularity_from_hand_built_mi(mi, expected):
    assert modularity_from_mi(mi) == pytest.approx(expected, abs=1e-12)


def test_modularity_of_identity():
    assert modularity(GRID, GRID) == pytest.approx(1.0)


# ------------------------------------------------------------------------ scale and inputs
def test_paper_scale_representation():
    # K = 5, N = 102 400: planted noisy (c1, c2) plus three noise channels.
    rng = np.random.default_rng(4)
    factors = np.repeat(GRID, 25, axis=0)
    noise = rng.normal(size=(len(factors), 3))
    mu = np.concatenate([factors + rng.normal(size=factors.shape), noise], 1)
    m = all_metrics(torch.tensor(mu, dtype=torch.float32), factors)
    assert m["dci_disentanglement"] > 0.99 and m["dci_completeness"] > 0.99
    assert m["dci_informativeness"] > 0.99 and m["sap"] > 0.99 and m["mig"] > 0.5


@pytest.mark.parametrize(
    "mu, factors, match",
    [
        (GRID[:10], GRID, "must match"),
        (np.where(GRID == 5, np.nan, GRID), GRID, "NaN"),
        (np.zeros((2, 2, 2)), GRID, "2-D array"),
        (GRID[:1], GRID[:1], "at least 2 samples"),
    ],
)
def test_bad_input_gets_a_clear_error(mu, factors, match):
    for fn in (mig, sap, modularity, all_metrics, dci):
        with pytest.raises(ValueError, match=match):
            fn(mu, factors)


def test_bad_bins_and_split():
    with pytest.raises(ValueError, match="bins must be"):
        mig(GRID, GRID, bins=1)
    with pytest.raises(ValueError, match="train_fraction"):
        dci(GRID, GRID, train_fraction=1.0)
