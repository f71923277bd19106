"""Known-answer tests for MIG, DCI, SAP, modularity and standard_metrics (disentanglement_lib).

Classifier-based metrics (DCI's gradient-boosted trees, SAP's linear SVM) are
fitted on an 8 × 8 grid of discrete factors with a few hundred points, so the
file runs in seconds; MIG and modularity use the full 64 × 64 Blobs grid.
"""
import json
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import mutual_info_score

from welavae.data import polar_factors
from welavae.metrics import (
    all_metrics,
    dci,
    dci_from_importance,
    discretize_factors,
    factor_entropy,
    gbt_importance,
    histogram_discretize,
    mig,
    modularity,
    modularity_from_mi,
    mutual_info_matrix,
    sap,
    sap_score_matrix,
    split_indices,
    standard_metrics,
)

C = np.arange(64.0)
GRID = np.stack(np.meshgrid(C, C, indexing="ij"), axis=-1).reshape(-1, 2)  # (4096, 2) independent (c1, c2)
# 8 × 8 grid, each cell 16 times: (1024, 2) discrete factors for the classifier-based metrics.
G8 = np.repeat(np.stack(np.meshgrid(np.arange(8), np.arange(8), indexing="ij"), -1).reshape(-1, 2), 16, 0)
SMALL = dict(num_train=400, num_test=200)  # keeps GradientBoostingClassifier to 400 points
TINY = dict(num_train=200, num_test=100)
KEYS = {"mig", "modularity", "dci_disentanglement", "dci_completeness", "dci_informativeness_train",
        "dci_informativeness_test", "sap", "factor_vae", "factor_vae_train", "params"}


def _jitter(x, seed=0, scale=0.3):
    """Code = factors + uniform noise smaller than half the spacing: still perfectly separable."""
    return x + np.random.default_rng(seed).uniform(-scale, scale, size=x.shape)


def _entropy_of(labels):
    p = np.unique(labels, return_counts=True)[1] / len(labels)
    return -np.sum(p * np.log(p))


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


def test_metrics_refuse_continuous_factors():
    for fn in (mig, modularity, sap, dci):
        with pytest.raises(ValueError, match=r"discretize_factors\(factors, continuous=\[0, 1\]\)"):
            fn(GRID, polar_factors(GRID))


# ------------------------------------------------------------------------- MIG
def test_mutual_information_is_sklearns_on_binned_latents():
    # disentanglement_lib's discrete_mutual_info is sklearn's mutual_info_score(factor, binned latent).
    mu = np.random.default_rng(1).normal(size=(4096, 2)) + GRID[:, :1] / 20
    b = histogram_discretize(mu)
    expected = [[mutual_info_score(GRID[:, j], b[:, i]) for j in range(2)] for i in range(2)]
    np.testing.assert_allclose(mutual_info_matrix(mu, GRID), expected, rtol=1e-12)
    np.testing.assert_allclose(factor_entropy(GRID), [math.log(64)] * 2)


def test_perfect_code_of_a_64_value_factor_has_mig_below_one():
    # I(bin(c); c) = H(bin(c)) because the bin is a function of c; the other latent is
    # independent of c on the full grid; H(c) = log 64.  So MIG = H(bin(c)) / H(c) ≈ 0.72.
    expected = _entropy_of(histogram_discretize(C)[:, 0]) / _entropy_of(C)
    assert expected == pytest.approx(0.7185, abs=1e-4)
    assert mig(GRID, GRID) == pytest.approx(expected, abs=1e-12)
    assert mig(GRID, GRID, bins=64) == pytest.approx(1.0, abs=1e-12)  # one bin per value


def test_duplicated_latent_has_zero_gap():
    # μ = (c1, c1): both latents tie on c1 and neither knows c2 → every gap is 0.
    assert mig(GRID[:, [0, 0]], GRID) == pytest.approx(0.0, abs=1e-12)


def test_constant_factor_contributes_zero():
    factors = np.stack([GRID[:, 0], np.zeros(4096)], 1)
    assert mig(GRID, factors, bins=64) == pytest.approx(0.5)  # factor 1: gap/H = 1; constant: 0


# ----------------------------------------------------------------- modularity
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


def test_copying_a_factor_into_two_latents_is_modular_but_not_complete():
    # μ = (c1, c1, c2): each latent knows one factor only (bin(c1) ⟂ c2 exactly on the
    # grid) → modularity 1; but c1 is spread over two latents → DCI completeness < 1,
    # while each latent still explains a single factor → disentanglement 1.
    assert modularity(GRID[:, [0, 0, 1]], GRID) == pytest.approx(1.0, abs=1e-12)
    res = dci(G8[:, [0, 0, 1]], G8, **SMALL)
    assert res.disentanglement == pytest.approx(1.0, abs=1e-6)
    # The trees split c1's importance between the copies (ties are broken by a random
    # feature order), so c1's completeness is 1 − H_3(p, 1 − p) < 1.
    assert 0.0 < res.importance[1, 0] and 0.0 < res.importance[0, 0]
    assert res.completeness < 0.9


def test_constant_latent_beside_a_perfect_pair():
    # The dead latent has no MI → modularity 0 for it (disentanglement_lib's rule): mean(1, 1, 0).
    mu = np.concatenate([GRID, np.full((4096, 1), 7.0)], 1)
    assert modularity(mu, GRID) == pytest.approx(2 / 3)


# ------------------------------------------------------------------------- DCI
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


def test_perfect_code_has_diagonal_tree_importance_and_full_accuracy(perfect_dci):
    res = perfect_dci
    assert (res.num_train, res.num_test) == (400, 200)
    np.testing.assert_allclose(res.importance, np.eye(2), atol=1e-9)
    assert res.disentanglement == pytest.approx(1.0) and res.completeness == pytest.approx(1.0)
    assert res.informativeness_train == 1.0 and res.informativeness_test == 1.0


@pytest.fixture(scope="module")
def perfect_dci():
    return dci(_jitter(G8), G8, **SMALL)


@pytest.mark.parametrize("seed", [0, 1])
def test_random_rotation_of_a_perfect_code_lowers_disentanglement(seed, perfect_dci):
    # A rotation by an angle off the axes mixes c1 and c2 into both latents; the
    # seeded rotations here are by −101° and −136°.
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(2, 2)))
    perfect = perfect_dci
    rotated = dci(_jitter(G8) @ q, G8, **SMALL)
    assert rotated.disentanglement < perfect.disentanglement - 0.5
    assert rotated.completeness < perfect.completeness - 0.5
    assert rotated.informativeness_test > 0.85  # the information is still there


def test_dci_is_seeded():
    mu = _jitter(G8, scale=1.0)
    a, b = dci(mu, G8, seed=5, **TINY), dci(mu, G8, seed=5, **TINY)
    np.testing.assert_array_equal(a.importance, b.importance)
    assert a.informativeness_test == b.informativeness_test


# ------------------------------------------------------------------------- SAP
def test_sap_is_zero_when_one_latent_predicts_every_factor_equally():
    # Both latents are the same code g = 8·c1 + c2 of both factors: every column of
    # the score matrix has two equal entries, so every gap is exactly 0.
    g = G8[:, 0] * 8 + G8[:, 1]
    assert sap(np.stack([g, g], 1), G8, **SMALL) == 0.0


def test_sap_of_a_perfect_binary_code():
    # Binary factors, μ = factors: the matching latent's SVM is right every time and
    # the other latent (independent of the factor) is right half the time → SAP ≈ 1 − 1/2.
    b = np.repeat(np.array([[0, 0], [0, 1], [1, 0], [1, 1]]), 250, 0)
    assert sap(_jitter(b, scale=0.2), b, **SMALL) == pytest.approx(0.5, abs=0.06)


# ------------------------------------------- against disentanglement_lib itself
def _dlib_scores(mus_train, ys_train, mus_test, ys_test):
    """disentanglement_lib's array cores transcribed (codes and factors in rows, samples in columns).

    mig._compute_mig, modularity_explicitness.modularity, sap_score.compute_score_matrix
    (discrete) and dci.compute_importance_gbt; only random_state=0 (trees) and dual=False
    (SVM) are added.
    """
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.svm import LinearSVC

    disc = np.zeros_like(mus_train)  # utils._histogram_discretize, num_bins = 20
    for i in range(mus_train.shape[0]):
        disc[i, :] = np.digitize(mus_train[i, :], np.histogram(mus_train[i, :], 20)[1][:-1])
    m = np.array([[mutual_info_score(ys_train[j, :], disc[i, :]) for j in range(ys_train.shape[0])]
                  for i in range(disc.shape[0])])
    entropy = np.array([mutual_info_score(y, y) for y in ys_train])
    sorted_m = np.sort(m, axis=0)[::-1]
    mig_score = np.mean(np.divide(sorted_m[0, :] - sorted_m[1, :], entropy[:]))
    squared_mi = np.square(m)
    max_squared_mi = np.max(squared_mi, axis=1)
    modularity_score = 1.0 - (np.sum(squared_mi, axis=1) - max_squared_mi) / (max_squared_mi * (squared_mi.shape[1] - 1.0))
    modularity_score[max_squared_mi == 0.0] = 0.0
    score_matrix = np.zeros([mus_train.shape[0], ys_train.shape[0]])
    for i in range(mus_train.shape[0]):
        for j in range(ys_train.shape[0]):
            # dual=False: the same optimisation problem, solved in the primal as sklearn's
            # dual="auto" does here; 2019's sklearn ran the dual solver for 1000 iterations.
            classifier = LinearSVC(C=0.01, class_weight="balanced", dual=False)
            classifier.fit(mus_train[i, :][:, np.newaxis], ys_train[j, :])
            pred = classifier.predict(mus_test[i, :][:, np.newaxis])
            score_matrix[i, j] = np.mean(pred == ys_test[j, :])
    importance = np.zeros([mus_train.shape[0], ys_train.shape[0]])
    train_loss, test_loss = [], []
    for i in range(ys_train.shape[0]):
        model = GradientBoostingClassifier(random_state=0)
        model.fit(mus_train.T, ys_train[i, :])
        importance[:, i] = np.abs(model.feature_importances_)
        train_loss.append(np.mean(model.predict(mus_train.T) == ys_train[i, :]))
        test_loss.append(np.mean(model.predict(mus_test.T) == ys_test[i, :]))
    return (mig_score, np.mean(modularity_score), score_matrix, importance,
            np.mean(train_loss), np.mean(test_loss))


def test_array_cores_match_disentanglement_lib():
    rng = np.random.default_rng(7)
    mu = np.stack([G8[:, 0] + rng.normal(scale=0.7, size=len(G8)), np.sin(G8[:, 1]) + rng.normal(size=len(G8)),
                   G8[:, 0] - G8[:, 1] + rng.normal(scale=2, size=len(G8))], 1)
    tr, te = split_indices(len(G8), num_train=400, num_test=200, seed=0)
    mig_ref, mod_ref, sap_ref, imp_ref, acc_tr, acc_te = _dlib_scores(mu[tr].T, G8[tr].T, mu[te].T, G8[te].T)
    assert mig(mu[tr], G8[tr]) == pytest.approx(mig_ref, abs=1e-12)
    assert modularity(mu[tr], G8[tr]) == pytest.approx(mod_ref, abs=1e-12)
    np.testing.assert_allclose(sap_score_matrix(mu[tr], G8[tr], mu[te], G8[te]), sap_ref, atol=1e-12)
    imp, a_tr, a_te = gbt_importance(mu[tr], G8[tr], mu[te], G8[te], seed=0)
    np.testing.assert_allclose(imp, imp_ref, atol=1e-12)
    assert (a_tr, a_te) == pytest.approx((acc_tr, acc_te), abs=1e-12)
    assert dci_from_importance(imp) == pytest.approx(_dlib_dci(imp_ref), abs=1e-8)


# ------------------------------------------------------------------------ splits
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


# ------------------------------------------------------------- the entry point
def test_standard_metrics_of_a_perfect_code_with_binned_polar_factors():
    polar = polar_factors(G8.astype(float))
    m = standard_metrics(_jitter(G8), G8, **SMALL)
    assert set(m) == KEYS
    json.dumps(m)  # JSON-ready
    assert m["dci_disentanglement"] == pytest.approx(1.0) and m["dci_informativeness_test"] == 1.0
    assert m["modularity"] > 0.95 and m["factor_vae"] == 1.0
    assert m["params"]["binned_factors"] == [] and m["params"]["split"] == "by sample"
    # The same code against the polar factors, binned explicitly: less disentangled.
    mp = standard_metrics(_jitter(G8), polar, continuous=(0, 1), factor_bins=5, **SMALL)
    assert [r["factor"] for r in mp["params"]["binned_factors"]] == [0, 1]
    assert mp["params"]["binned_factors"][0]["bins"] == 5
    assert mp["dci_disentanglement"] < m["dci_disentanglement"] - 0.3
    assert mp["mig"] < m["mig"]


def test_all_metrics_bins_continuous_columns_and_groups_equal_factor_rows():
    f = G8.astype(float)  # integers stored as float, as evaluate.py passes them
    m = all_metrics(torch.tensor(_jitter(G8), dtype=torch.float32), f, **TINY)
    assert m["params"]["binned_factors"] == [] and m["params"]["split"] == "by group"
    p = all_metrics(_jitter(G8), polar_factors(f), **TINY)
    assert [r["factor"] for r in p["params"]["binned_factors"]] == [0, 1]
    assert p["params"]["binned_factors"][0]["bins"] == 20
    disc = discretize_factors(polar_factors(f), continuous=[0, 1]).codes
    assert p["mig"] == mig(_jitter(G8), disc) and p["modularity"] == modularity(_jitter(G8), disc)


def test_constant_representation_scores_zero():
    m = standard_metrics(np.ones((len(G8), 3)), G8, **SMALL)
    for key in ("mig", "modularity", "dci_disentanglement", "dci_completeness", "sap",
                "factor_vae", "factor_vae_train"):
        assert m[key] == 0.0, key
    assert m["params"]["factor_vae"]["num_active_dims"] == 0


def test_constant_factor_gives_no_nan():
    factors = np.stack([G8[:, 0], np.zeros(len(G8), dtype=int)], 1)
    m = standard_metrics(_jitter(G8), factors, **SMALL)
    assert all(np.isfinite(v) for k, v in m.items() if k != "params")
    assert m["dci_informativeness_test"] == 1.0  # the constant is predicted exactly


# ------------------------------------------------------------------------ inputs
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
    for fn in (mig, sap, modularity, dci, standard_metrics, all_metrics):
        with pytest.raises(ValueError, match=match):
            fn(mu, factors)


def test_bad_bins_and_sizes():
    with pytest.raises(ValueError, match="bins must be"):
        mig(GRID, GRID, bins=1)
    with pytest.raises(ValueError, match="num_train must be"):
        dci(G8, G8, num_train=0)
