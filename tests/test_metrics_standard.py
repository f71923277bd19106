"""standard_metrics / all_metrics (metrics/standard.py): every metric against disentanglement_lib's
array cores transcribed, the entry point's dict, and the one-sentence input errors of all metrics."""
import json

import numpy as np
import pytest
import torch
from metric_cases import G8, GRID, KEYS, SMALL, TINY, _dlib_dci, _jitter
from sklearn.metrics import mutual_info_score

from welavae.data import polar_factors
from welavae.metrics import (
    all_metrics,
    dci,
    dci_from_importance,
    discretize_factors,
    gbt_importance,
    mig,
    modularity,
    sap,
    sap_score_matrix,
    split_indices,
    standard_metrics,
)


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
def test_metrics_refuse_continuous_factors():
    for fn in (mig, modularity, sap, dci):
        with pytest.raises(ValueError, match=r"discretize_factors\(factors, continuous=\[0, 1\]\)"):
            fn(GRID, polar_factors(GRID))



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
