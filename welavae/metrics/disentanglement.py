"""Standard disentanglement metrics with disentanglement_lib's definitions and defaults.

The paper (§4.2) argues these metrics only measure statistical relation and so
cannot judge a *polar* representation; we still report them against both the
Cartesian and the polar factors so that claim can be checked.  Each metric is
the array core of google-research/disentanglement_lib (Locatello et al., 2019),
file ``disentanglement_lib/evaluation/metrics/<file>``, with the defaults of its
study configs (``config/unsupervised_study_v1/metric_configs/*.gin``):

* **Factors are discrete.**  ``factors`` (N, F) hold integer class indices, as
  the ground-truth factors of disentanglement_lib's data sets do; the metrics
  refuse non-integer columns.  A continuous factor (the polar φ and d of
  Blobs) must be binned explicitly first, with :func:`discretize_factors`,
  which records which factors were binned and how.
* **Only the representation is binned** for MIG and modularity:
  ``histogram_discretize`` (``utils._histogram_discretize``) puts each latent
  into 20 equal-width bins (``discretizer.num_bins = 20``); the factors keep
  their own values.  So a perfect code of a 64-value factor has MIG
  H(bin(c)) / H(c) ≈ 0.72, not 1.
* **MIG** (Chen et al., 2018; ``mig.py`` ``_compute_mig``): mean over factors
  of (I(z_a; v) − I(z_b; v)) / H(v) for the two latents with the largest
  discrete MI (``utils.discrete_mutual_info`` / ``discrete_entropy``, i.e.
  ``sklearn.metrics.mutual_info_score``, nats).
* **Modularity** (Ridgeway & Mozer, 2018; ``modularity_explicitness.py``
  ``modularity``) from the same MI matrix.
* **DCI** (Eastwood & Williams, 2018; ``dci.py`` ``compute_importance_gbt``):
  one ``sklearn.ensemble.GradientBoostingClassifier()`` (default settings) per
  factor fitted on the training split; the importance matrix R (K, F) is the
  trees' ``feature_importances_``; disentanglement and completeness are the
  importance-weighted 1 − entropy of R's rows (base F) and columns (base K);
  informativeness is the classifier's accuracy on the training and test split.
* **SAP** (Kumar et al., 2018; ``sap_score.py``, discrete branch —
  ``sap_score.continuous_factors = False``): score S[i, j] is the test
  accuracy of ``sklearn.svm.LinearSVC(C=0.01, class_weight="balanced")``
  predicting factor j from latent i alone; SAP is the mean over factors of the
  gap between the two largest entries of S's column.
* **Sizes**: DCI and SAP train on ``num_train = 10000`` and test on
  ``num_test = 5000`` points (``dci.gin``, ``sap_score.gin``).
  disentanglement_lib draws fresh samples from the generator; a fixed data set
  of N < 15000 samples is split 2 : 1 instead, and :func:`split_indices` can
  keep groups (e.g. the variants of one Blobs position) on one side.  MIG and
  modularity use every sample given (``compute_mig_on_fixed_data``).

Deliberate differences, none of which changes a score beyond rounding:
0·log 0 is 0 in DCI instead of disentanglement_lib's +1e-11 smoothing (so
hand-built matrices give exact values); the classifiers get ``random_state=seed``
(disentanglement_lib leaves the global RNG); LinearSVC is solved in the primal
(``dual=False``): the same convex problem as the dual solver of 2019's sklearn,
which can stop short of the optimum after its 1000 iterations.  Where
disentanglement_lib would divide by zero or crash — a constant factor, one
class in a training split, a single latent — we score 0 (or predict the one
class) instead of NaN.

The FactorVAE score lives in :mod:`welavae.metrics.factor_vae`;
:func:`standard_metrics` runs every metric and returns one JSON-ready dict.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DCIResult",
    "DiscreteFactors",
    "histogram_discretize",
    "discretize_factors",
    "split_indices",
    "mutual_info_matrix",
    "factor_entropy",
    "mig",
    "gbt_importance",
    "dci_from_importance",
    "dci",
    "sap_score_matrix",
    "sap",
    "modularity_from_mi",
    "modularity",
    "standard_metrics",
    "all_metrics",
]

#: disentanglement_lib's study defaults (``metric_configs/*.gin``).
NUM_BINS = 20
NUM_TRAIN = 10_000
NUM_TEST = 5_000


# --------------------------------------------------------------------------- inputs
def _as_2d(x, name: str, what: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array {what}, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or inf; cannot score it")
    return x


def _factor_codes(factors, name: str = "factors") -> np.ndarray:
    """(N, F) integer-valued factors → int64 class indices; a clear error for continuous ones."""
    f = _as_2d(factors, name, "(N, F) of integer class indices")
    bad = [j for j in range(f.shape[1]) if not np.all(f[:, j] == np.round(f[:, j]))]
    if bad:
        j = bad[0]
        example = f[f[:, j] != np.round(f[:, j]), j][0]
        raise ValueError(
            f"{name} column {j} is continuous (e.g. {example:.4g}); these metrics need discrete "
            f"factors — bin it first with discretize_factors(factors, continuous={bad})"
        )
    return f.astype(np.int64)


def _check(mu, factors) -> tuple[np.ndarray, np.ndarray]:
    mu = _as_2d(mu, "mu", "(N, K) of encoder means")
    codes = _factor_codes(factors)
    if mu.shape[0] != codes.shape[0]:
        raise ValueError(
            f"mu has {mu.shape[0]} samples but factors has {codes.shape[0]}; they must match"
        )
    if mu.shape[0] < 2:
        raise ValueError(f"need at least 2 samples to score a representation, got {mu.shape[0]}")
    return mu, codes


def _check_bins(bins) -> int:
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    return int(bins)


def _check_count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# ------------------------------------------------------------------ discretisation
def histogram_discretize(x, *, bins: int = NUM_BINS) -> np.ndarray:
    """Column-wise equal-width binning (disentanglement_lib ``utils._histogram_discretize``).

    x: (N, D) float.  Returns (N, D) int64 bin indices in 0…bins−1 over each
    column's [min, max] (disentanglement_lib's are the same indices plus 1);
    a constant column is all 0.
    """
    x = _as_2d(x, "x", "(N, D)")
    bins = _check_bins(bins)
    out = np.zeros(x.shape, dtype=np.int64)
    for d in range(x.shape[1]):
        col = x[:, d]
        if col.size == 0 or col.min() == col.max():
            continue
        edges = np.histogram_bin_edges(col, bins)
        out[:, d] = np.clip(np.digitize(col, edges[:-1]) - 1, 0, bins - 1)
    return out


@dataclass(frozen=True, eq=False)
class DiscreteFactors:
    """Factors ready for the metrics.

    codes:  (N, F) int64 class indices (binned columns hold bin indices 0…bins−1).
    binned: one JSON-ready record per binned factor: ``{"factor": j, "method":
            "equal-width", "bins": b, "min": lo, "max": hi}`` (bin k covers
            [lo + k·w, lo + (k+1)·w), the last bin closed, w = (hi − lo)/b).
    """

    codes: np.ndarray
    binned: tuple[dict, ...]


def discretize_factors(factors, *, continuous=(), bins: int = NUM_BINS) -> DiscreteFactors:
    """Bin the ``continuous`` factor columns into ``bins`` equal-width bins; keep the others.

    factors: (N, F).  ``continuous``: column indices to bin with
    :func:`histogram_discretize` (the discretiser disentanglement_lib applies to
    representations).  Every other column must already hold integer values.
    """
    f = _as_2d(factors, "factors", "(N, F) of ground-truth factors")
    bins = _check_bins(bins)
    cont = sorted({int(j) for j in continuous})
    if any(j < 0 or j >= f.shape[1] for j in cont):
        raise ValueError(f"continuous must list factor columns in 0…{f.shape[1] - 1}, got {list(continuous)}")
    keep = [j for j in range(f.shape[1]) if j not in cont]
    codes = np.zeros(f.shape, dtype=np.int64)
    if keep:
        codes[:, keep] = _factor_codes(f[:, keep], "factors (columns not listed in continuous)")
    records = []
    for j in cont:
        codes[:, j] = histogram_discretize(f[:, j], bins=bins)[:, 0]
        records.append({"factor": j, "method": "equal-width", "bins": bins,
                        "min": float(f[:, j].min()), "max": float(f[:, j].max())})
    return DiscreteFactors(codes, tuple(records))


# --------------------------------------------------------------------------- splits
def split_indices(n: int, *, num_train: int = NUM_TRAIN, num_test: int = NUM_TEST, seed: int = 0,
                  groups=None) -> tuple[np.ndarray, np.ndarray]:
    """Seeded disjoint train/test sample indices.

    Takes ``num_train`` and ``num_test`` samples; when n < num_train + num_test
    both shrink in proportion (10000 : 5000 → a 2 : 1 split of n).  ``groups``:
    optional (n,) labels (e.g. Blobs position c1·64 + c2); every group then lies
    on one side only: groups are taken in random order, the training set is
    the first ``num_train`` samples (so its last group may be cut short) and
    the test set starts at the next group.
    """
    n = _check_count(n, "n")
    num_train, num_test = _check_count(num_train, "num_train"), _check_count(num_test, "num_test")
    if n < 2:
        raise ValueError(f"need at least 2 samples to split into train and test, got {n}")
    if num_train + num_test > n:
        num_train = min(max(n * num_train // (num_train + num_test), 1), n - 1)
        num_test = n - num_train
    rng = np.random.default_rng(seed)
    if groups is None:
        order = rng.permutation(n)
        return order[:num_train], order[num_train:num_train + num_test]
    g = np.asarray(groups).reshape(-1)
    if g.shape[0] != n:
        raise ValueError(f"groups must have one label per sample ({n}), got {g.shape[0]}")
    _, inv = np.unique(g, return_inverse=True)
    rank = rng.permutation(inv.max() + 1)[inv]  # random order of the groups
    order = np.lexsort((rng.random(n), rank))  # grouped, shuffled within each group
    ranks = rank[order]
    start = int(np.searchsorted(ranks, ranks[num_train - 1], side="right"))
    test = order[start:start + num_test]
    if test.size == 0:
        raise ValueError(
            f"the groups leave no sample for the test split: the training set of {num_train} "
            f"samples already takes every group; pass a smaller num_train"
        )
    return order[:num_train], test


# ---------------------------------------------------------------------- MI and MIG
def _mi(mu_codes: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N, K), (N, F) int codes → (K, F) discrete MI in nats (``utils.discrete_mutual_info``)."""
    from sklearn.metrics import mutual_info_score

    return np.array([[mutual_info_score(y[:, j], mu_codes[:, i]) for j in range(y.shape[1])]
                     for i in range(mu_codes.shape[1])])


def mutual_info_matrix(mu, factors, *, bins: int = NUM_BINS) -> np.ndarray:
    """(K, F) MI in nats between each binned latent and each discrete factor.

    mu: (N, K) put into ``bins`` bins by :func:`histogram_discretize`;
    factors: (N, F) class indices, used as they are.
    """
    mu, y = _check(mu, factors)
    return _mi(histogram_discretize(mu, bins=_check_bins(bins)), y)


def factor_entropy(factors) -> np.ndarray:
    """(F,) plug-in entropy in nats of each discrete factor (``utils.discrete_entropy``)."""
    y = _factor_codes(factors)
    out = np.zeros(y.shape[1])
    for j in range(y.shape[1]):
        p = np.unique(y[:, j], return_counts=True)[1] / y.shape[0]
        out[j] = max(-float(np.sum(p * np.log(p))), 0.0)
    return out


def _top_two_gap(scores: np.ndarray) -> np.ndarray:
    """(K, F) → (F,) best minus runner-up per factor; with K = 1 the runner-up is 0."""
    s = np.sort(scores, axis=0)[::-1]
    second = s[1] if s.shape[0] > 1 else np.zeros(s.shape[1])
    return s[0] - second


def _mig_core(mi: np.ndarray, entropy: np.ndarray) -> float:
    gap = _top_two_gap(mi)
    safe = np.where(entropy > 0, entropy, 1.0)
    return float(np.mean(np.where(entropy > 0, gap / safe, 0.0)))


def mig(mu, factors, *, bins: int = NUM_BINS) -> float:
    """Mutual information gap (Chen et al. 2018; disentanglement_lib ``mig.py`` ``_compute_mig``).

    mu: (N, K) encoder means, binned into ``bins`` equal-width bins per latent;
    factors: (N, F) class indices.  Returns the mean over factors of
    (largest − second-largest MI with a latent) / H(factor); a constant factor
    contributes 0.
    """
    mu, y = _check(mu, factors)
    return _mig_core(_mi(histogram_discretize(mu, bins=_check_bins(bins)), y), factor_entropy(y))


# ----------------------------------------------------------------------- modularity
def modularity_from_mi(mi) -> float:
    """Modularity (Ridgeway & Mozer 2018) of a (K, F) latent × factor MI matrix.

    Per latent: 1 − (Σ_j m_ij² − max_j m_ij²) / (max_j m_ij² · (F − 1)); a latent
    with no information scores 0; averaged over latents (disentanglement_lib's
    ``modularity_explicitness.modularity``).  With F = 1 every informative latent
    scores 1 (disentanglement_lib divides by 0 there).
    """
    m = np.asarray(mi, dtype=np.float64)
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"mi must be a non-empty 2-D array (K, F), got shape {m.shape}")
    sq = m**2
    top = sq.max(axis=1)
    f = m.shape[1]
    informative = top > 0
    denom = np.where(informative, top * max(f - 1, 1), 1.0)
    delta = np.where(informative, (sq.sum(axis=1) - top) / denom, 0.0)
    return float(np.mean(np.where(informative, 1.0 - delta, 0.0)))


def modularity(mu, factors, *, bins: int = NUM_BINS) -> float:
    """Modularity (disentanglement_lib ``modularity_explicitness.py``) from :func:`mutual_info_matrix`.

    mu: (N, K); factors: (N, F) class indices.  Returns a float in [0, 1]; 1 when
    every latent informs about one factor only.
    """
    return modularity_from_mi(mutual_info_matrix(mu, factors, bins=bins))


# ------------------------------------------------------------------------------ DCI
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
    """DCI disentanglement and completeness of an importance matrix (Eastwood & Williams 2018).

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
    """DCI scores (Eastwood & Williams 2018) as disentanglement_lib's ``_compute_dci`` reports them.

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
    :func:`split_indices` (``num_train``, ``num_test``, ``seed``, ``groups``).
    """
    mu, y = _check(mu, factors)
    tr, te = split_indices(len(mu), num_train=num_train, num_test=num_test, seed=seed, groups=groups)
    imp, acc_train, acc_test = gbt_importance(mu[tr], y[tr], mu[te], y[te], seed=seed)
    d, c = dci_from_importance(imp)
    return DCIResult(d, c, acc_train, acc_test, imp, len(tr), len(te))


# ------------------------------------------------------------------------------ SAP
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
    """Separated attribute predictability (Kumar et al. 2018; disentanglement_lib ``sap_score.py``).

    mu: (N, K); factors: (N, F) class indices.  Discrete branch: score matrix
    from :func:`sap_score_matrix` on a :func:`split_indices` split; returns the
    mean over factors of the gap between the two largest scores of a factor.
    """
    mu, y = _check(mu, factors)
    tr, te = split_indices(len(mu), num_train=num_train, num_test=num_test, seed=seed, groups=groups)
    return float(np.mean(_top_two_gap(sap_score_matrix(mu[tr], y[tr], mu[te], y[te], seed=seed))))


# ---------------------------------------------------------------------- entry point
def standard_metrics(mu, factors, *, continuous=(), bins: int = NUM_BINS, factor_bins: int = NUM_BINS,
                     seed: int = 0, num_train: int = NUM_TRAIN, num_test: int = NUM_TEST,
                     groups=None, factor_vae: bool = True) -> dict:
    """Every standard metric of one representation, as one JSON-ready dict.

    mu: (N, K) encoder means; factors: (N, F); ``continuous``: the factor
    columns to bin into ``factor_bins`` equal-width bins first
    (:func:`discretize_factors`); the others must be class indices.  ``bins``:
    bins per latent for MIG and modularity.  DCI and SAP use one
    :func:`split_indices` split (``num_train``, ``num_test``, ``seed``,
    ``groups``).  The FactorVAE score (:func:`welavae.metrics.factor_vae_score`,
    disentanglement_lib's sizes) reads the rows of ``mu`` as the encoder's
    output on the data set's own samples.

    Returns ``{"mig", "modularity", "dci_disentanglement", "dci_completeness",
    "dci_informativeness_train", "dci_informativeness_test", "sap",
    "factor_vae", "factor_vae_train", "params"}``; ``params`` records the
    parameters, the split sizes actually used and every binned factor.
    """
    from .factor_vae import factor_vae_score

    mu = _as_2d(mu, "mu", "(N, K) of encoder means")
    disc = discretize_factors(factors, continuous=continuous, bins=factor_bins)
    mu, y = _check(mu, disc.codes)
    bins = _check_bins(bins)
    tr, te = split_indices(len(mu), num_train=num_train, num_test=num_test, seed=seed, groups=groups)
    mu_codes = histogram_discretize(mu, bins=bins)
    mi = _mi(mu_codes, y)
    imp, acc_train, acc_test = gbt_importance(mu[tr], y[tr], mu[te], y[te], seed=seed)
    d, c = dci_from_importance(imp)
    out = {
        "mig": _mig_core(mi, factor_entropy(y)),
        "modularity": modularity_from_mi(mi),
        "dci_disentanglement": d,
        "dci_completeness": c,
        "dci_informativeness_train": acc_train,
        "dci_informativeness_test": acc_test,
        "sap": float(np.mean(_top_two_gap(sap_score_matrix(mu[tr], y[tr], mu[te], y[te], seed=seed)))),
    }
    params = {
        "num_samples": int(len(mu)),
        "representation_bins": bins,
        "binned_factors": [dict(r) for r in disc.binned],
        "seed": int(seed),
        "num_train": int(len(tr)),
        "num_test": int(len(te)),
        "num_train_requested": int(num_train),
        "num_test_requested": int(num_test),
        "split": "by group" if groups is not None else "by sample",
        "dci": "GradientBoostingClassifier() per factor",
        "sap": "LinearSVC(C=0.01, class_weight='balanced') per latent and factor",
    }
    if factor_vae:
        fv = factor_vae_score(lambda idx: mu[idx], np.arange(len(mu)), y, seed=seed)
        out["factor_vae"] = fv.eval_accuracy
        out["factor_vae_train"] = fv.train_accuracy
        params["factor_vae"] = fv.params()
    out["params"] = params
    return out


def all_metrics(mu, factors, **kwargs) -> dict:
    """:func:`standard_metrics` with continuous factors and groups found from ``factors`` itself.

    Kept for callers that pass raw factors (Blobs' integer (c1, c2) or the
    continuous polar (φ, d)): every non-integer column is binned into
    ``factor_bins`` (default 20) bins — and recorded in ``params`` — and samples
    with the same factor row (the variants of one position) form one group of
    the train/test split.  Keyword arguments go to :func:`standard_metrics`.
    """
    f = _as_2d(factors, "factors", "(N, F) of ground-truth factors")
    kwargs.setdefault("continuous", [j for j in range(f.shape[1]) if not np.all(f[:, j] == np.round(f[:, j]))])
    if "groups" not in kwargs:
        kwargs["groups"] = np.unique(f, axis=0, return_inverse=True)[1].reshape(-1)
    return standard_metrics(mu, f, **kwargs)
