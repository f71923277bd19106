"""Separated attribute predictability (Kumar et al. 2018, "Variational inference of disentangled
latent concepts from unlabeled observations", §3).

disentanglement_lib ``evaluation/metrics/sap_score.py``, discrete branch
(``sap_score.continuous_factors = False``) with the study sizes of
``sap_score.gin`` (10000 training, 5000 test points; a fixed data set is split
by :func:`welavae.metrics.split_indices`): score S[i, j] is the test accuracy
of ``sklearn.svm.LinearSVC(C=0.01, class_weight="balanced")`` predicting
factor j from latent i alone; SAP is the mean over factors of the gap between
the two largest entries of S's column.

LinearSVC is solved in the primal (``dual=False``): the same convex problem as
the dual solver of 2019's sklearn, which can stop short of the optimum after
its 1000 iterations; it gets ``random_state=seed``.  A factor with one class
in the training split is predicted as that class.
"""
from __future__ import annotations

import warnings

import numpy as np

from ._checks import check_pair
from ._mi import top_two_gap
from ._split import NUM_TEST, NUM_TRAIN, split_indices

__all__ = ["sap_score_matrix", "sap"]


def sap_score_matrix(x_train, y_train, x_test, y_test, *, seed: int = 0) -> np.ndarray:
    """disentanglement_lib ``sap_score.compute_score_matrix``, discrete branch, samples in rows.

    x: (n, K) codes, y: (n, F) class indices.  S[i, j] = test accuracy of
    ``LinearSVC(C=0.01, class_weight="balanced")`` fitted on latent i alone to
    factor j.  Returns S (K, F).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    k, f = x_train.shape[1], y_train.shape[1]
    s = np.zeros((k, f))
    for j in range(f):
        classes = np.unique(y_train[:, j])
        for i in range(k):
            if classes.size < 2:
                pred = np.full(len(y_test), classes[0])
            else:
                clf = LinearSVC(C=0.01, class_weight="balanced", dual=False, random_state=seed)
                with warnings.catch_warnings():  # an uninformative latent may not converge; it scores low anyway
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    clf.fit(x_train[:, i:i + 1], y_train[:, j])
                pred = clf.predict(x_test[:, i:i + 1])
            s[i, j] = np.mean(pred == y_test[:, j])
    return s


def sap(mu, factors, *, num_train: int = NUM_TRAIN, num_test: int = NUM_TEST, seed: int = 0,
        groups=None) -> float:
    """SAP score (disentanglement_lib ``sap_score.py``, discrete branch).

    mu: (N, K); factors: (N, F) class indices.  Score matrix from
    :func:`sap_score_matrix` on a :func:`welavae.metrics.split_indices` split;
    returns the mean over factors of the gap between the two largest scores of a factor.
    """
    mu, y = check_pair(mu, factors)
    tr, te = split_indices(len(mu), num_train=num_train, num_test=num_test, seed=seed, groups=groups)
    return float(np.mean(top_two_gap(sap_score_matrix(mu[tr], y[tr], mu[te], y[te], seed=seed))))
