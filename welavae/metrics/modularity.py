"""Modularity (Ridgeway & Mozer 2018, "Learning deep disentangled embeddings with the F-statistic loss").

disentanglement_lib ``evaluation/metrics/modularity_explicitness.py``
``modularity``, from the same binned-latent × factor MI matrix as MIG
(:func:`welavae.metrics.mutual_info_matrix`, 20 bins per latent).  A latent
with no information scores 0 (disentanglement_lib's rule); with a single
factor every informative latent scores 1 where disentanglement_lib divides
by zero.
"""
from __future__ import annotations

import numpy as np

from ._mi import NUM_BINS, mutual_info_matrix

__all__ = ["modularity_from_mi", "modularity"]


def modularity_from_mi(mi) -> float:
    """Modularity of a (K, F) latent × factor MI matrix.

    Per latent: 1 − (Σ_j m_ij² − max_j m_ij²) / (max_j m_ij² · (F − 1)); a latent
    with no information scores 0; averaged over latents.
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
    """Modularity of a representation from :func:`welavae.metrics.mutual_info_matrix`.

    mu: (N, K); factors: (N, F) class indices.  Returns a float in [0, 1]; 1 when
    every latent informs about one factor only.
    """
    return modularity_from_mi(mutual_info_matrix(mu, factors, bins=bins))
