"""Standard disentanglement metrics as pure numpy array cores.

The paper (§4.2) argues these metrics only measure statistical relation and so
cannot judge a *polar* representation; we still report them against both the
Cartesian and the polar factors so that claim can be checked.  Each follows
disentanglement_lib (Locatello et al., 2019) where it can without sklearn:

* **MIG** (Chen et al., 2018, "Isolating sources of disentanglement", eq. 6):
  mean over factors of (I(z_a; v) − I(z_b; v)) / H(v) for the two latents with
  the largest mutual information.  Latents *and* (continuous) factors are
  discretised into ``bins`` equal-width bins, as disentanglement_lib's
  ``histogram_discretize`` does, and MI is the plug-in estimate from the joint
  histogram (nats).
* **DCI** (Eastwood & Williams, 2018): disentanglement and completeness are
  1 − entropy of the normalised importance matrix R (K latents × F factors),
  base F per latent and base K per factor, weighted by relative importance —
  exactly disentanglement_lib's ``dci.disentanglement``/``completeness`` except
  that 0·log 0 is taken as 0 instead of adding 1e-11, so hand-built matrices give
  exact values.  disentanglement_lib gets R from gradient-boosted trees; without
  sklearn we use a numpy-only importance that still sees non-linear relations:
  R[i, j] = η², the correlation ratio — the fraction of the variance of factor
  j explained by latent i alone (the mean of the factor within each of ``bins``
  equal-width bins of the latent).  Informativeness is the
  held-out R² of an additive model — ridge regression of each factor on the
  one-hot bins of every latent — fit on a seeded ``train_fraction`` split and
  averaged over factors (disentanglement_lib reports a classifier's test
  accuracy; R² is the continuous-factor analogue).
* **SAP** (Kumar et al., 2018): per factor, the gap between the two largest
  per-latent scores, averaged.  For continuous factors disentanglement_lib's
  score is the squared linear correlation (R² of a one-latent linear fit); that
  is the default, ``fit="binned"`` uses the η² above instead.
* **Modularity** (Ridgeway & Mozer, 2018) from the MI matrix, as
  disentanglement_lib's ``modularity_explicitness.modularity``.

A constant latent carries no information: its MI, η², R² and modularity are 0,
never NaN.  A constant factor has zero entropy/variance and scores 0 wherever a
score would divide by it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DCIResult",
    "histogram_discretize",
    "mutual_info_matrix",
    "mig",
    "dci_importance",
    "dci_from_importance",
    "dci",
    "sap",
    "modularity_from_mi",
    "modularity",
    "all_metrics",
]


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


def _check(mu, factors) -> tuple[np.ndarray, np.ndarray]:
    mu = _as_2d(mu, "mu", "(N, K) of encoder means")
    factors = _as_2d(factors, "factors", "(N, F) of ground-truth factors")
    if mu.shape[0] != factors.shape[0]:
        raise ValueError(
            f"mu has {mu.shape[0]} samples but factors has {factors.shape[0]}; they must match"
        )
    if mu.shape[0] < 2:
        raise ValueError(f"need at least 2 samples to score a representation, got {mu.shape[0]}")
    return mu, factors


def _check_bins(bins) -> int:
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    return int(bins)


# ------------------------------------------------------------- discretisation and MI
def histogram_discretize(x, *, bins: int = 20) -> np.ndarray:
    """Column-wise equal-width binning, as disentanglement_lib's ``_histogram_discretize``.

    x: (N, D) float.  Returns (N, D) int64 bin indices in 0…bins−1 over each
    column's [min, max]; a constant column is all 0.
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


def _entropy(codes: np.ndarray, bins: int) -> np.ndarray:
    """(N, D) int codes → (D,) plug-in entropy in nats."""
    h = np.zeros(codes.shape[1])
    for d in range(codes.shape[1]):
        p = np.bincount(codes[:, d], minlength=bins) / codes.shape[0]
        p = p[p > 0]
        h[d] = -np.sum(p * np.log(p))
    return np.maximum(h, 0.0)


def _mi(a_codes: np.ndarray, b_codes: np.ndarray, bins: int) -> np.ndarray:
    """(N, K), (N, F) int codes → (K, F) plug-in mutual information in nats."""
    n = a_codes.shape[0]
    out = np.zeros((a_codes.shape[1], b_codes.shape[1]))
    for i in range(a_codes.shape[1]):
        for j in range(b_codes.shape[1]):
            p = np.bincount(a_codes[:, i] * bins + b_codes[:, j], minlength=bins * bins)
            p = p.reshape(bins, bins) / n
            outer = p.sum(axis=1, keepdims=True) * p.sum(axis=0, keepdims=True)
            nz = p > 0
            out[i, j] = np.sum(p[nz] * np.log(p[nz] / outer[nz]))
    return np.maximum(out, 0.0)  # rounding can leave −1e-17 for independent codes


def mutual_info_matrix(mu, factors, *, bins: int = 20) -> np.ndarray:
    """Discrete MI between each binned latent and each binned factor.

    mu: (N, K), factors: (N, F), both discretised with :func:`histogram_discretize`.
    Returns (K, F) mutual information in nats (disentanglement_lib's
    ``discrete_mutual_info``).
    """
    mu, factors = _check(mu, factors)
    bins = _check_bins(bins)
    return _mi(histogram_discretize(mu, bins=bins), histogram_discretize(factors, bins=bins), bins)


# ------------------------------------------------------------------------------ MIG
def _top_two_gap(scores: np.ndarray) -> np.ndarray:
    """(K, F) → (F,) best minus runner-up per factor; with K = 1 the runner-up is 0."""
    s = np.sort(scores, axis=0)[::-1]
    second = s[1] if s.shape[0] > 1 else np.zeros(s.shape[1])
    return s[0] - second


def _mig_core(mi: np.ndarray, entropy: np.ndarray) -> float:
    gap = _top_two_gap(mi)
    safe = np.where(entropy > 0, entropy, 1.0)
    return float(np.mean(np.where(entropy > 0, gap / safe, 0.0)))


def mig(mu, factors, *, bins: int = 20) -> float:
    """Mutual information gap (Chen et al. 2018; disentanglement_lib ``_compute_mig``).

    mu: (N, K) encoder means; factors: (N, F) continuous or discrete factors.
    Both are discretised into ``bins`` equal-width bins.  Returns the mean over
    factors of (largest − second-largest MI with a latent) / H(factor), in [0, 1];
    a constant factor contributes 0.
    """
    mu, factors = _check(mu, factors)
    bins = _check_bins(bins)
    mu_d, f_d = histogram_discretize(mu, bins=bins), histogram_discretize(factors, bins=bins)
    return _mig_core(_mi(mu_d, f_d, bins), _entropy(f_d, bins))


# ------------------------------------------------------------------------------ DCI
def _eta2(codes: np.ndarray, y: np.ndarray, bins: int) -> np.ndarray:
    """(N, K) latent bins, (N, F) factors → (K, F) correlation ratio η² in [0, 1].

    η²[i, j] = SS_between / SS_total of factor j grouped by the bin of latent i:
    the fraction of the factor's variance that the best function of latent i
    alone (at ``bins`` resolution) explains.  An unrelated latent scores its
    chance level ≈ (bins − 1)/N, equal for all unrelated latents, so a random
    representation gets a flat importance matrix (D, C ≈ 0) as with trees.
    """
    yc = y - y.mean(axis=0)
    sst = np.sum(yc**2, axis=0)  # (F,)
    out = np.zeros((codes.shape[1], y.shape[1]))
    for i in range(codes.shape[1]):
        counts = np.bincount(codes[:, i], minlength=bins)
        nz = counts > 0
        for j in range(y.shape[1]):
            if sst[j] <= 0:
                continue  # constant factor: nothing to explain
            sums = np.bincount(codes[:, i], weights=yc[:, j], minlength=bins)
            out[i, j] = np.sum(sums[nz] ** 2 / counts[nz]) / sst[j]  # constant latent: sums = 0
    return np.clip(out, 0.0, 1.0)


def dci_importance(mu, factors, *, bins: int = 20) -> np.ndarray:
    """Numpy-only DCI importance matrix R (K, F): η² of factor j given binned latent i.

    mu: (N, K); factors: (N, F).  Stands in for disentanglement_lib's
    gradient-boosted-tree importances (see the module docstring).
    """
    mu, factors = _check(mu, factors)
    bins = _check_bins(bins)
    return _eta2(histogram_discretize(mu, bins=bins), factors, bins)


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


def _additive_ridge_r2(
    codes: np.ndarray, y: np.ndarray, bins: int, *, seed: int, train_fraction: float, alpha: float
) -> np.ndarray:
    """Held-out R² (F,) of ridge regression of y (N, F) on one-hot bins of every latent.

    The design matrix is never built: its Gram matrix is a block of pair-bin
    counts, so the fit costs K² bincounts over N plus a (K·bins)² solve.
    """
    n, k = codes.shape
    order = np.random.default_rng(seed).permutation(n)
    n_train = min(max(int(round(train_fraction * n)), 1), n - 1)
    tr, te = order[:n_train], order[n_train:]
    feat = codes + np.arange(k) * bins  # (N, K) index of each sample's active one-hot column
    p = k * bins

    gram = np.zeros((p, p))
    for a in range(k):
        for b in range(k):
            block = np.bincount(codes[tr, a] * bins + codes[tr, b], minlength=bins * bins)
            gram[a * bins:(a + 1) * bins, b * bins:(b + 1) * bins] = block.reshape(bins, bins)
    mean_x = np.diag(gram) / n_train  # one-hot column means
    gram_c = gram - n_train * np.outer(mean_x, mean_x)  # centred features (intercept unpenalised)
    y_mean = y[tr].mean(axis=0)
    yc = y[tr] - y_mean
    # (P, F); equals the centred Xᵀy because yc has zero mean
    xty = np.stack(
        [
            np.bincount(feat[tr].ravel(), weights=np.repeat(yc[:, j], k), minlength=p)
            for j in range(y.shape[1])
        ],
        axis=1,
    )
    w = np.linalg.solve(gram_c + alpha * np.eye(p), xty)  # (P, F)
    pred = y_mean - mean_x @ w + w[feat[te]].sum(axis=1)  # (N_test, F)

    resid = np.sum((y[te] - pred) ** 2, axis=0)
    sst = np.sum((y[te] - y[te].mean(axis=0)) ** 2, axis=0)
    safe = np.where(sst > 0, sst, 1.0)
    return np.clip(np.where(sst > 0, 1.0 - resid / safe, 0.0), 0.0, 1.0)


@dataclass(frozen=True, eq=False)
class DCIResult:
    """DCI scores (Eastwood & Williams 2018) and the (K, F) importance matrix they came from."""

    disentanglement: float
    completeness: float
    informativeness: float
    importance: np.ndarray


def _dci_core(codes, factors, bins, seed, train_fraction, alpha) -> DCIResult:
    imp = _eta2(codes, factors, bins)
    d, c = dci_from_importance(imp)
    r2 = _additive_ridge_r2(
        codes, factors, bins, seed=seed, train_fraction=train_fraction, alpha=alpha
    )
    return DCIResult(d, c, float(np.mean(r2)), imp)


def dci(
    mu, factors, *, bins: int = 20, seed: int = 0, train_fraction: float = 0.8, alpha: float = 1.0
) -> DCIResult:
    """DCI disentanglement, completeness and informativeness (Eastwood & Williams 2018).

    mu: (N, K) encoder means; factors: (N, F) continuous factors.
    Importance R (K, F) is η² of factor j given latent i in ``bins`` bins
    (:func:`dci_importance`); disentanglement/completeness follow
    :func:`dci_from_importance`.  Informativeness is the mean over factors of the
    held-out R² (clipped to [0, 1]) of ridge regression (penalty ``alpha``) on the
    one-hot bins of all latents, trained on a ``seed``-ed random
    ``train_fraction`` of the samples and scored on the rest.
    """
    mu, factors = _check(mu, factors)
    bins = _check_bins(bins)
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(
            f"train_fraction must lie strictly between 0 and 1, got {train_fraction!r}"
        )
    return _dci_core(histogram_discretize(mu, bins=bins), factors, bins, seed, train_fraction, alpha)


# ------------------------------------------------------------------------------ SAP
def _linear_r2(mu: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N, K), (N, F) → (K, F) squared Pearson correlation; 0 for a constant column."""
    mc = mu - mu.mean(axis=0)
    yc = y - y.mean(axis=0)
    cov = mc.T @ yc  # (K, F)
    var_m = np.sum(mc**2, axis=0)
    var_y = np.sum(yc**2, axis=0)
    ok = (np.ptp(mu, axis=0) > 0)[:, None] & (np.ptp(y, axis=0) > 0)[None, :]
    denom = np.where(ok, np.outer(var_m, var_y), 1.0)
    return np.clip(np.where(ok, cov**2 / denom, 0.0), 0.0, 1.0)


def _sap_scores(mu, factors, fit, bins):
    if fit == "linear":
        return _linear_r2(mu, factors)
    if fit == "binned":
        return _eta2(histogram_discretize(mu, bins=bins), factors, bins)
    raise ValueError(f"fit must be 'linear' or 'binned', got {fit!r}")


def sap(mu, factors, *, fit: str = "linear", bins: int = 20) -> float:
    """Separated attribute predictability (Kumar et al. 2018; disentanglement_lib ``sap_score``).

    mu: (N, K); factors: (N, F) continuous.  Score matrix S (K, F) is the R² of
    predicting factor j from latent i alone: squared linear correlation
    (``fit="linear"``, disentanglement_lib's continuous-factor branch) or η² on
    ``bins`` bins (``fit="binned"``, sees non-linear relations).  Returns the mean
    over factors of the gap between the two largest entries of S's column.
    """
    mu, factors = _check(mu, factors)
    bins = _check_bins(bins)
    return float(np.mean(_top_two_gap(_sap_scores(mu, factors, fit, bins))))


# ----------------------------------------------------------------------- modularity
def modularity_from_mi(mi) -> float:
    """Modularity (Ridgeway & Mozer 2018) of a (K, F) latent × factor MI matrix.

    Per latent: 1 − (Σ_j m_ij² − max_j m_ij²) / (max_j m_ij² · (F − 1)); a latent
    with no information scores 0; averaged over latents (disentanglement_lib's
    ``modularity_explicitness.modularity``).  With F = 1 every informative latent
    scores 1.
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


def modularity(mu, factors, *, bins: int = 20) -> float:
    """Modularity (Ridgeway & Mozer 2018) from :func:`mutual_info_matrix`.

    mu: (N, K); factors: (N, F).  Returns a float in [0, 1]; 1 when every latent
    informs about one factor only.
    """
    return modularity_from_mi(mutual_info_matrix(mu, factors, bins=bins))


# ---------------------------------------------------------------------------- all
def all_metrics(mu, factors, *, bins: int = 20, seed: int = 0) -> dict[str, float]:
    """Every metric above in one pass sharing the discretisation.

    mu: (N, K); factors: (N, F).  Returns flat floats: ``mig``,
    ``dci_disentanglement``, ``dci_completeness``, ``dci_informativeness``,
    ``sap`` (linear) and ``modularity``.
    """
    mu, factors = _check(mu, factors)
    bins = _check_bins(bins)
    mu_d, f_d = histogram_discretize(mu, bins=bins), histogram_discretize(factors, bins=bins)
    mi = _mi(mu_d, f_d, bins)
    d = _dci_core(mu_d, factors, bins, seed, 0.8, 1.0)
    return {
        "mig": _mig_core(mi, _entropy(f_d, bins)),
        "dci_disentanglement": d.disentanglement,
        "dci_completeness": d.completeness,
        "dci_informativeness": d.informativeness,
        "sap": float(np.mean(_top_two_gap(_linear_r2(mu, factors)))),
        "modularity": modularity_from_mi(mi),
    }
