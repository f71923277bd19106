"""Choosing the good seed without ground truth.

Table 1 finds WeLa-VAE's good seeds with the coordinate MSE, which needs the
true factors; a researcher with their own data has only the images, the weak
labels and the trained seeds.  Each criterion here scores every seed of a run
from those alone (never from ``factors.npy``):

``udr_lasso`` / ``udr_spearman``
    UDR (Duan et al., ICLR 2020, "Unsupervised model selection for
    variational disentangled representation learning"), as disentanglement_lib
    computes it (``evaluation/udr/metrics/udr.py``, ``compute_udr_sklearn``):
    the means of each seed on the same ``num_points`` samples, standardised,
    latents with average KL(q(z_k|x) ‖ p(z_k)) ≤ 0.01 zeroed and left out;
    for every ordered pair of seeds (i, j) a similarity matrix between their
    latents (|Lasso coefficients| of j's latents regressed on i's, α = 0.1,
    or |Spearman correlations|) scored by relative strength — the mean of
    max²/sum over its rows and over its columns, 1 when the matrix is a
    permutation — and a seed's score is the median over the other seeds.
    A seed scores high when the other seeds learned the same code up to
    permutation and sign: the "good seeds agree" hypothesis.
``label_mig``
    Weak-label alignment: for each weak label j, over the samples where it is
    observed, the mutual-information gap between the two latents most
    informative of it, (I(z_a; y_j) − I(z_b; y_j)) / H(y_j), averaged over
    labels.  Each latent is put into 20 equal-frequency bins (by rank), so
    the score depends only on the order of a latent's values: any monotone
    function of a coordinate scores as the coordinate itself (equal-width
    bins, as MIG uses, would not).  The weak labels
    are coarse bins of the coordinates the user wants (angle, distance), so a
    code aligned with those coordinates has one latent that explains label j
    alone (its bin is a threshold of that latent), while a rotated code (the
    Cartesian one, for the polar labels) spreads each label over several
    latents: the gap is large for the first and small for the second.
``label_single``
    The same idea through classifiers: for each label, the held-out accuracy
    of the best single-latent classifier divided by that of a classifier on
    all latents (decision trees of depth 4, a seeded 2 : 1 split), averaged
    over labels; 1 when one latent suffices.
``loss``, ``image_nll``, ``label_nll``, ``kl``, ``tc``
    The last epoch's training loss and its terms: the baseline a user would
    try first (lower is better).

Every score is oriented so that **higher is better** (the loss terms are
negated); :func:`rank_seeds` sorts by one criterion.
"""
from __future__ import annotations

import math

import numpy as np

from .config import TERMS
from .metrics._mi import discrete_mutual_info, top_two_gap
from .objectives.kl import gaussian_kl
from .run import Run

__all__ = ["CRITERIA", "DEFAULT_CRITERION", "udr", "label_mig", "label_single", "seed_scores", "last_terms",
           "rank_seeds", "ranking_table"]

# The objective's terms as history.csv holds them; "reg" is left out: it is β (or λ) times a term, its
# ranking that of tc (or kl) for one run, or the DIP penalty, which is not a loss a user would rank by.
LOSS_TERMS = tuple(t for t in TERMS if t != "reg")
CRITERIA = ("label_mig", "label_single", "udr_lasso", "udr_spearman", *LOSS_TERMS)
DEFAULT_CRITERION = "label_mig"  # of `welavae select` and TrainedModel.select()
KL_THRESHOLD = 0.01


def _relative_strength(corr: np.ndarray) -> float:
    """disentanglement_lib's relative_strength_disentanglement: mean of max²/sum over columns and over rows."""
    with np.errstate(invalid="ignore", divide="ignore"):
        x = np.nan_to_num(np.max(corr, axis=0) ** 2 / np.sum(corr, axis=0), nan=0.0) if corr.size else np.zeros(0)
        y = np.nan_to_num(np.max(corr, axis=1) ** 2 / np.sum(corr, axis=1), nan=0.0) if corr.size else np.zeros(0)
    return float((np.mean(x) if x.size else 0.0) + (np.mean(y) if y.size else 0.0)) / 2


def _spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|Spearman correlation| between every latent of a (rows) and of b (columns); 0 for a constant latent."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a, axis=0), rankdata(b, axis=0)
    ra, rb = ra - ra.mean(0), rb - rb.mean(0)
    na, nb = np.linalg.norm(ra, axis=0), np.linalg.norm(rb, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = (ra.T @ rb) / np.outer(na, nb)
    return np.abs(np.nan_to_num(c, nan=0.0))


def _lasso(a: np.ndarray, b: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.linear_model import Lasso

    model = Lasso(alpha=0.1, random_state=seed).fit(a, b)
    return np.abs(np.asarray(model.coef_).reshape(b.shape[1], a.shape[1])).T  # (K_a, K_b)


def _latent_kl(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """(S, N, K) → (S, K): mean over samples of KL(N(μ_k, σ_k²) ‖ N(0, 1)), each latent alone."""
    import torch

    mu, logvar = torch.from_numpy(mu), torch.from_numpy(logvar)
    return gaussian_kl(mu[..., None], logvar[..., None]).mean(-2).numpy()  # a (…, K, 1) "latent" per k


def udr(mu, logvar, *, correlation: str = "lasso", num_points: int = 1000, seed: int = 0) -> np.ndarray:
    """UDR score of every seed (disentanglement_lib's ``compute_udr_sklearn``).  mu, logvar: (S, N, K) → (S,).

    ``num_points`` samples are drawn (seeded) from the N; a run with one seed scores NaN.
    """
    mu, logvar = np.asarray(mu, dtype=np.float64), np.asarray(logvar, dtype=np.float64)
    if correlation not in ("lasso", "spearman"):
        raise ValueError(f"correlation must be 'lasso' or 'spearman', got {correlation!r}")
    s, n, _ = mu.shape
    if s < 2:
        return np.full(s, np.nan)
    idx = np.random.default_rng(seed).choice(n, size=min(num_points, n), replace=False)
    kl = _latent_kl(mu[:, idx], logvar[:, idx])  # (S, K)
    reps = []
    for i in range(s):
        x = mu[i, idx]
        std = x.std(axis=0)
        x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)  # StandardScaler
        reps.append(x * (kl[i] > KL_THRESHOLD))
    mask = kl > KL_THRESHOLD
    pair = np.zeros((s, s))
    for i in range(s):
        for j in range(s):
            if i != j:
                corr = _lasso(reps[i], reps[j], seed) if correlation == "lasso" else _spearman(reps[i], reps[j])
                pair[i, j] = _relative_strength(corr[mask[i]][:, mask[j]])
    return np.array([np.median(np.delete(pair[:, i], i)) for i in range(s)])


def rank_discretize(x, *, bins: int = 20) -> np.ndarray:
    """(N, K) → (N, K) ints in 0 … bins−1: equal-frequency bins of each column by rank (ties share a bin)."""
    from scipy.stats import rankdata

    x = np.asarray(x, dtype=np.float64)
    ranks = rankdata(x, method="min", axis=0) - 1  # 0 … N−1, monotone-invariant
    return (ranks * bins // len(x)).astype(np.int64)


def label_mig(mu, labels, *, bins: int = 20) -> float:
    """Weak-label MIG of one seed: mu (N, K), labels (N, m) with −1 = missing → mean over labels of the top-two gap."""
    mu, labels = np.asarray(mu, dtype=np.float64), np.asarray(labels)
    codes = rank_discretize(mu, bins=bins)  # (N, K) ints
    gaps = []
    for j in range(labels.shape[1]):
        seen = labels[:, j] >= 0
        y = labels[seen, j][:, None]  # (n_j, 1) observed labels
        h = discrete_mutual_info(y, y)[0, 0]  # H(y) = I(y; y), disentanglement_lib's discrete_entropy
        if h <= 0:
            continue
        gaps.append(top_two_gap(discrete_mutual_info(codes[seen], y))[0] / h)
    return float(np.mean(gaps)) if gaps else math.nan


def label_single(mu, labels, *, seed: int = 0, depth: int = 4) -> float:
    """Best single-latent accuracy / all-latent accuracy on held-out observed labels, mean over labels."""
    from sklearn.tree import DecisionTreeClassifier

    mu, labels = np.asarray(mu, dtype=np.float64), np.asarray(labels)
    ratios = []
    for j in range(labels.shape[1]):
        seen = np.flatnonzero(labels[:, j] >= 0)
        if len(seen) < 6 or len(np.unique(labels[seen, j])) < 2:
            continue
        order = np.random.default_rng(seed).permutation(seen)
        cut = (2 * len(order)) // 3
        tr, te = order[:cut], order[cut:]

        def acc(cols, tr=tr, te=te, j=j):
            tree = DecisionTreeClassifier(max_depth=depth, random_state=seed)
            return tree.fit(mu[np.ix_(tr, cols)], labels[tr, j]).score(mu[np.ix_(te, cols)], labels[te, j])

        full = acc(list(range(mu.shape[1])))
        best = max(acc([k]) for k in range(mu.shape[1]))
        ratios.append(best / full if full > 0 else 0.0)
    return float(np.mean(ratios)) if ratios else math.nan


def seed_scores(mu, logvar=None, labels=None, last_terms=None, *, seed: int = 0) -> dict[str, np.ndarray]:
    """Every criterion for every seed (higher is better), each (S,).

    mu, logvar: (S, N, K); labels: (N, m) the weak labels the run was trained
    with (−1 = missing) or None; last_terms: {term: (S,)} the last epoch's
    loss terms or None.  Criteria without their inputs are left out.
    """
    mu = np.asarray(mu, dtype=np.float64)
    finite = np.isfinite(mu).all(axis=(1, 2))
    out: dict[str, np.ndarray] = {}

    def per_seed(fn):
        return np.array([fn(mu[i]) if finite[i] else np.nan for i in range(len(mu))])

    if labels is not None:
        out["label_mig"] = per_seed(lambda m: label_mig(m, labels))
        out["label_single"] = per_seed(lambda m: label_single(m, labels, seed=seed))
    if logvar is not None:
        logvar = np.asarray(logvar, dtype=np.float64)
        for corr in ("lasso", "spearman"):
            scores = np.full(len(mu), np.nan)
            if finite.sum() >= 2:
                scores[finite] = udr(mu[finite], logvar[finite], correlation=corr, seed=seed)
            out[f"udr_{corr}"] = scores
    for term in LOSS_TERMS:
        if last_terms is not None and term in last_terms:
            values = np.asarray(last_terms[term], dtype=np.float64)
            if np.isfinite(values).any() and np.nanmax(np.abs(values)) > 0:
                out[term] = -values
    return out


def last_terms(run) -> dict[str, np.ndarray] | None:
    """The last epoch's loss terms of every seed of a run, {term: (S,)} (NaN after divergence), or None."""
    rows = run.history()
    if not rows:
        return None
    last = max(int(r["epoch"]) for r in rows)
    by_seed = {int(r["seed"]): r for r in rows if int(r["epoch"]) == last}
    return {term: np.array([float(by_seed[s][term]) if s in by_seed and by_seed[s].get(term) not in ("", None)
                            else np.nan for s in run.seeds]) for term in LOSS_TERMS}


def rank_seeds(run, *, by: str = DEFAULT_CRITERION, seed: int = 0) -> dict:
    """The seeds of a run directory ranked by one criterion, with every criterion's scores.

    ``run``: a :class:`welavae.run.Run` or its path.  Returns ``{"by", "ranking": [seeds, best
    first], "scores": {criterion: {seed: score}}}``; reads no true factors.
    """
    run = run if isinstance(run, Run) else Run(run)
    labels, observed = run.array("labels"), run.array("observed")
    if labels is not None and observed is not None:
        labels = np.where(observed, labels, -1)  # only what the model was trained with
    scores = seed_scores(run.mu, run.array("logvar"), labels, last_terms(run), seed=seed)
    if by not in scores:
        raise ValueError(f"criterion {by!r} is not available for {run.path}; choose one of {sorted(scores)}")
    seeds = run.seeds
    values = scores[by]
    order = sorted(range(len(seeds)), key=lambda i: (-values[i] if np.isfinite(values[i]) else math.inf, seeds[i]))
    return {
        "run": str(run.path),
        "by": by,
        "ranking": [seeds[i] for i in order],
        "scores": {name: {seeds[i]: (None if not np.isfinite(v[i]) else float(v[i])) for i in range(len(seeds))}
                   for name, v in scores.items()},
    }


def ranking_table(result: dict) -> str:
    """:func:`rank_seeds`' result as text: one row per seed, best first, every criterion's score."""
    names = list(result["scores"])
    lines = ["rank  seed  " + "  ".join(f"{n:>12}" for n in names)]
    for r, seed in enumerate(result["ranking"], 1):
        cells = ["-" if result["scores"][n][seed] is None else f"{result['scores'][n][seed]:.4g}" for n in names]
        lines.append(f"{r:4d}  {seed:4d}  " + "  ".join(f"{c:>12}" for c in cells))
    return "\n".join(lines)
