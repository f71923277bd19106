"""Mutual information gap (Chen et al. 2018, "Isolating sources of disentanglement", §4.1).

disentanglement_lib ``evaluation/metrics/mig.py`` ``_compute_mig`` with the
study default of 20 bins per latent (``mig.gin``): the mean over factors of
(I(z_a; v) − I(z_b; v)) / H(v) for the two latents with the largest discrete
MI.  Only the representation is binned (:mod:`._mi`), so a perfect code of a
64-value factor has MIG H(bin(c)) / H(c) ≈ 0.72, not 1.  All samples given are
used (``compute_mig_on_fixed_data``).  A constant factor contributes 0 where
disentanglement_lib divides by zero.
"""
from __future__ import annotations

import numpy as np

from ._checks import check_bins, check_pair
from ._mi import NUM_BINS, discrete_mutual_info, factor_entropy, histogram_discretize, top_two_gap

__all__ = ["mig"]


def mig(mu, factors, *, bins: int = NUM_BINS) -> float:
    """Mutual information gap (disentanglement_lib ``mig.py`` ``_compute_mig``).

    mu: (N, K) encoder means, binned into ``bins`` equal-width bins per latent;
    factors: (N, F) class indices.  Returns the mean over factors of
    (largest − second-largest MI with a latent) / H(factor); a constant factor
    contributes 0.
    """
    mu, y = check_pair(mu, factors)
    mi = discrete_mutual_info(histogram_discretize(mu, bins=check_bins(bins)), y)  # (K, F)
    entropy = factor_entropy(y)  # (F,)
    safe = np.where(entropy > 0, entropy, 1.0)
    return float(np.mean(np.where(entropy > 0, top_two_gap(mi) / safe, 0.0)))
