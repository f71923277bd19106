"""Discretisation, discrete mutual information and entropy shared by MIG, modularity and seed selection.

disentanglement_lib's ``evaluation/metrics/utils.py``: ``_histogram_discretize``
(equal-width bins of each representation column, ``discretizer.num_bins = 20``
in the study configs), ``discrete_mutual_info`` (``sklearn.metrics.mutual_info_score``
of each factor with each binned latent, nats) and ``discrete_entropy``.  Only
the representation is binned; factors must be class indices already, and a
continuous factor is binned explicitly, and recorded, by
:func:`discretize_factors`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import as_2d, check_bins, check_pair, factor_codes

__all__ = [
    "NUM_BINS",
    "DiscreteFactors",
    "histogram_discretize",
    "discretize_factors",
    "discrete_mutual_info",
    "mutual_info_matrix",
    "factor_entropy",
    "top_two_gap",
]

#: disentanglement_lib's study default (``discretizer.num_bins``).
NUM_BINS = 20


def histogram_discretize(x, *, bins: int = NUM_BINS) -> np.ndarray:
    """Column-wise equal-width binning (disentanglement_lib ``utils._histogram_discretize``).

    x: (N, D) float.  Returns (N, D) int64 bin indices in 0…bins−1 over each
    column's [min, max] (disentanglement_lib's are the same indices plus 1);
    a constant column is all 0.
    """
    x = as_2d(x, "x", "(N, D)")
    bins = check_bins(bins)
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
    f = as_2d(factors, "factors", "(N, F) of ground-truth factors")
    bins = check_bins(bins)
    cont = sorted({int(j) for j in continuous})
    if any(j < 0 or j >= f.shape[1] for j in cont):
        raise ValueError(f"continuous must list factor columns in 0…{f.shape[1] - 1}, got {list(continuous)}")
    keep = [j for j in range(f.shape[1]) if j not in cont]
    codes = np.zeros(f.shape, dtype=np.int64)
    if keep:
        codes[:, keep] = factor_codes(f[:, keep], "factors (columns not listed in continuous)")
    records = []
    for j in cont:
        codes[:, j] = histogram_discretize(f[:, j], bins=bins)[:, 0]
        records.append({"factor": j, "method": "equal-width", "bins": bins,
                        "min": float(f[:, j].min()), "max": float(f[:, j].max())})
    return DiscreteFactors(codes, tuple(records))


def discrete_mutual_info(codes: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N, K), (N, F) int codes → (K, F) discrete MI in nats (``utils.discrete_mutual_info``)."""
    from sklearn.metrics import mutual_info_score

    return np.array([[mutual_info_score(y[:, j], codes[:, i]) for j in range(y.shape[1])]
                     for i in range(codes.shape[1])])


def mutual_info_matrix(mu, factors, *, bins: int = NUM_BINS) -> np.ndarray:
    """(K, F) MI in nats between each binned latent and each discrete factor.

    mu: (N, K) put into ``bins`` bins by :func:`histogram_discretize`;
    factors: (N, F) class indices, used as they are.
    """
    mu, y = check_pair(mu, factors)
    return discrete_mutual_info(histogram_discretize(mu, bins=check_bins(bins)), y)


def factor_entropy(factors) -> np.ndarray:
    """(F,) plug-in entropy in nats of each discrete factor (``utils.discrete_entropy``)."""
    y = factor_codes(factors)
    out = np.zeros(y.shape[1])
    for j in range(y.shape[1]):
        p = np.unique(y[:, j], return_counts=True)[1] / y.shape[0]
        out[j] = max(-float(np.sum(p * np.log(p))), 0.0)
    return out


def top_two_gap(scores: np.ndarray) -> np.ndarray:
    """(K, F) latent × factor scores → (F,) best minus runner-up per factor; with K = 1 the runner-up is 0.

    The gap of MIG (scores = MI) and of SAP (scores = single-latent accuracies).
    """
    s = np.sort(scores, axis=0)[::-1]
    second = s[1] if s.shape[0] > 1 else np.zeros(s.shape[1])
    return s[0] - second
