"""Active latents: which channels of a representation carry information.

A latent whose posterior q(z_k|x) stays close to the prior N(0, 1) for every
input is closed: it transmits nothing.  Rule (stated for every report): latent
k is **active** when its mean posterior variance over the data set,
mean_n exp(logvar[n, k]), is below 0.5 — half the prior's variance.  An
informative latent has a narrow posterior (the paper's Figure 1 orders the
latents the same way, by mean posterior variance).
"""
from __future__ import annotations

import numpy as np

__all__ = ["ACTIVE_VARIANCE", "active_latents"]

#: A latent is active when its mean posterior variance is below this (the prior's is 1).
ACTIVE_VARIANCE = 0.5


def active_latents(logvar, *, threshold: float = ACTIVE_VARIANCE) -> np.ndarray:
    """logvar (N, K) → (K,) bool: mean_n exp(logvar[n, k]) < threshold."""
    lv = np.asarray(logvar, dtype=np.float64)
    if lv.ndim != 2:
        raise ValueError(f"logvar must have shape (N, K), got {lv.shape}")
    return np.exp(lv).mean(axis=0) < threshold
