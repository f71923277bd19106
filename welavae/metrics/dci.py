"""DCI: disentanglement, completeness, informativeness (Eastwood & Williams 2018, ICLR).

disentanglement_lib ``evaluation/metrics/dci.py`` (``compute_importance_gbt``,
``disentanglement``, ``completeness``) with the study sizes of ``dci.gin``
(10000 training, 5000 test points; a fixed data set is split by
:func:`welavae.metrics.split_indices`): one
``sklearn.ensemble.GradientBoostingClassifier()`` (default settings) per
factor fitted on the training split; the importance matrix R (K, F) is the
trees' ``feature_importances_``; disentanglement and completeness are the
importance-weighted 1 − entropy of R's rows (base F) and columns (base K);
informativeness is the classifiers' accuracy on the training and test split.

Differences that change no score beyond rounding: 0·log 0 is 0 instead of
disentanglement_lib's +1e-11 smoothing (so hand-built matrices give exact
values); the trees get ``random_state=seed`` (disentanglement_lib leaves the
global RNG); a factor with one class in the training split gets importance 0
and the constant prediction where disentanglement_lib's classifier crashes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._checks import check_pair
from ._split import NUM_TEST, NUM_TRAIN, split_indices

__all__ = ["DCIResult", "gbt_importance", "dci_from_importance", "dci"]


def _one_minus_entropy(p_rows: np.ndarray, base: int) -> np.ndarray:
    """(R, C) non-negative rows → (R,) 1 − H(row / row.sum()) / log(base); 0·log 0 = 0.

    An all-zero row scores 0; with base 1 (a single column) a non-zero row scores 1.
    """
    tot = p_rows.sum(axis=1)
    out = np.zeros(p_rows.shape[0])
    for r in range(p_rows.shape[0]):
        if tot[r] <= 0:
            continue
        if base < 2:
            out[r] = 1.0
            continue
        p = p_rows[r] / tot[r]
        p = p[p > 0]
        out[r] = 1.0 - float(-np.sum(p * np.log(p)) / math.log(base))
    return out


def dci_from_importance(importance) -> tuple[float, float]:
    """DCI disentanglement and completeness of an importance matrix.

    importance: (K, F) non-negative, K latents × F factors.
    disentanglement = Σ_i ρ_i (1 − H_F(P_i·)), ρ_i = Σ_j R_ij / Σ R, P_ij = R_ij / Σ_j R_ij;
    completeness    = Σ_j ρ̃_j (1 − H_K(P̃_·j)), ρ̃_j = Σ_i R_ij / Σ R, P̃_ij = R_ij / Σ_i R_ij.
    Matches disentanglement_lib's ``dci.disentanglement`` / ``dci.completeness``
    up to their 1e-11 smoothing.  An all-zero matrix gives (0, 0).
    """
    r = np.asarray(importance, dtype=np.float64)
    if r.ndim != 2 or r.size == 0:
        raise ValueError(f"importance must be a non-empty 2-D array (K, F), got shape {r.shape}")
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError("importance must be finite and non-negative")
    total = r.sum()
    if total <= 0:
        return 0.0, 0.0
    k, f = r.shape
    per_code = _one_minus_entropy(r, base=f)
    per_factor = _one_minus_entropy(r.T, base=k)
    d = float(np.sum(per_code * r.sum(axis=1) / total))
    c = float(np.sum(per_factor * r.sum(axis=0) / total))
    return d, c


def gbt_importance(x_train, y_train, x_test, y_test, *, seed: int = 0):
    """disentanglement_lib ``dci.compute_importance_gbt`` with samples in rows.

    x: (n, K) codes, y: (n, F) class indices.  Fits one default
    ``GradientBoostingClassifier`` per factor on the training split.  Returns the
    (K, F) importance matrix (``feature_importances_``) and the mean over
    factors of the train and test accuracy.  A factor with one class in the
    training split gets importance 0 and the constant prediction.
    """
    from sklearn.ensemble import GradientBoostingClassifier

    k, f = x_train.shape[1], y_train.shape[1]
    importance = np.zeros((k, f))
    acc_train, acc_test = [], []
    for j in range(f):
        classes = np.unique(y_train[:, j])
        if classes.size < 2:
            pred_train = np.full(len(y_train), classes[0])
            pred_test = np.full(len(y_test), classes[0])
        else:
            model = GradientBoostingClassifier(random_state=seed).fit(x_train, y_train[:, j])
            importance[:, j] = np.abs(model.feature_importances_)
            pred_train, pred_test = model.predict(x_train), model.predict(x_test)
        acc_train.append(np.mean(pred_train == y_train[:, j]))
        acc_test.append(np.mean(pred_test == y_test[:, j]))
    return importance, float(np.mean(acc_train)), float(np.mean(acc_test))


@dataclass(frozen=True, eq=False)
class DCIResult:
    """DCI scores as disentanglement_lib's ``_compute_dci`` reports them.

    disentanglement, completeness: from the (K, F) ``importance`` matrix;
    informativeness_train / _test: mean over factors of the gradient-boosted
    trees' accuracy on the ``num_train`` training and ``num_test`` test samples.
    """

    disentanglement: float
    completeness: float
    informativeness_train: float
    informativeness_test: float
    importance: np.ndarray
    num_train: int
    num_test: int


def dci(mu, factors, *, num_train: int = NUM_TRAIN, num_test: int = NUM_TEST, seed: int = 0,
        groups=None) -> DCIResult:
    """DCI with gradient-boosted-tree importances (disentanglement_lib ``dci.py``).

    mu: (N, K) encoder means; factors: (N, F) class indices; train/test split by
    :func:`welavae.metrics.split_indices` (``num_train``, ``num_test``, ``seed``, ``groups``).
    """
    mu, y = check_pair(mu, factors)
    tr, te = split_indices(len(mu), num_train=num_train, num_test=num_test, seed=seed, groups=groups)
    imp, acc_train, acc_test = gbt_importance(mu[tr], y[tr], mu[te], y[te], seed=seed)
    d, c = dci_from_importance(imp)
    return DCIResult(d, c, acc_train, acc_test, imp, len(tr), len(te))
