"""Total correlation estimators of β-TCVAE (Chen et al. 2018, §3 and App. C).

The aggregate posterior q(z) = E_x q(z|x) is estimated on a minibatch of M
samples from a data set of N:

* **MWS** (minibatch weighted sampling):
  log q(z_i) ≈ logsumexp_j log q(z_i|x_j) − log(N·M), and the same per
  latent for the marginals.  The log(N·M) constants do not affect gradients
  but do affect the value: with identical posteriors the estimate is
  (K−1)·log N, not 0.
* **MSS** (minibatch stratified sampling): the same sums with importance
  weights W (M×M): W[i,i] = 1/N, one stratified entry per row
  W[i,(i+1) mod M] = (N−M+1)/(N·(M−1)), the rest 1/(M−1); each row sums to 1.
  Several public implementations write ``W.view(-1)[::M]`` (with M the batch
  size), which fills column 0 instead of the diagonal; this one does not.

All functions return per-sample values; the objective takes the batch mean.
Shapes: z, mu, logvar (S, B, K) for S seeds, B samples, K latents.
"""
from __future__ import annotations

import math

import torch

from .kl import log_normal

__all__ = ["log_importance_weights", "importance_weights", "total_correlation", "kl_decomposition"]

ESTIMATORS = ("mss", "mws")


def importance_weights(batch_size: int, dataset_size: int, *, dtype=torch.float64) -> torch.Tensor:
    """The MSS weight matrix W (B, B): row i weighs the samples used to estimate q(z_i)."""
    b, n = int(batch_size), int(dataset_size)
    if b < 2:
        raise ValueError(f"the MSS estimator needs a batch of at least 2 samples, got {b}")
    if n < b:
        raise ValueError(f"dataset_size ({n}) must be at least the batch size ({b})")
    m = b - 1
    w = torch.full((b, b), 1.0 / m, dtype=dtype)
    idx = torch.arange(b)
    w[idx, idx] = 1.0 / n
    w[idx, (idx + 1) % b] = (n - m) / (n * m)
    return w


def log_importance_weights(batch_size: int, dataset_size: int, *, dtype=torch.float32, device=None) -> torch.Tensor:
    return importance_weights(batch_size, dataset_size).log().to(dtype=dtype, device=device)


def _pairwise_log_q(z, mu, logvar):
    # (S, B, B, K): entry [s, i, j, k] = log q(z_ik | x_j) for seed s.
    return log_normal(z.unsqueeze(2), mu.unsqueeze(1), logvar.unsqueeze(1))


def _log_aggregates(z, mu, logvar, dataset_size: int, estimator: str, log_w=None):
    """Per-sample log q(z_i) (S, B) and log q(z_ik) (S, B, K)."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    b = z.shape[1]
    lq = _pairwise_log_q(z, mu, logvar)  # (S, B, B, K)
    if estimator == "mws":
        const = math.log(dataset_size * b)
        log_qz = torch.logsumexp(lq.sum(-1), dim=2) - const  # (S, B)
        log_qzk = torch.logsumexp(lq, dim=2) - const  # (S, B, K)
    else:
        if log_w is None:
            log_w = log_importance_weights(b, dataset_size, dtype=z.dtype, device=z.device)
        log_qz = torch.logsumexp(lq.sum(-1) + log_w, dim=2)
        log_qzk = torch.logsumexp(lq + log_w.unsqueeze(-1), dim=2)
    return log_qz, log_qzk


def total_correlation(z, mu, logvar, *, dataset_size: int, estimator: str = "mss", log_w=None) -> torch.Tensor:
    """Per-sample log q(z_i) − Σ_k log q(z_ik); its batch mean estimates TC = KL(q(z) ‖ Π_k q(z_k)).

    z, mu, logvar: (S, B, K).  Returns (S, B).  ``log_w``: optional precomputed
    :func:`log_importance_weights` (B, B) for the MSS estimator.
    """
    log_qz, log_qzk = _log_aggregates(z, mu, logvar, dataset_size, estimator, log_w)
    return log_qz - log_qzk.sum(-1)


def kl_decomposition(z, mu, logvar, *, dataset_size: int, estimator: str = "mss"):
    """Chen et al.'s decomposition of the sampled KL, per sample (S, B) each.

    log q(z|x) − log p(z) = [log q(z|x) − log q(z)]          (index-code MI)
                          + [log q(z) − Σ_k log q(z_k)]       (total correlation)
                          + Σ_k [log q(z_k) − log p(z_k)]     (dimension-wise KL)
    Returns (mi, tc, dwkl, kl_sample).
    """
    log_qz, log_qzk = _log_aggregates(z, mu, logvar, dataset_size, estimator)
    log_qz_x = log_normal(z, mu, logvar).sum(-1)
    log_pzk = log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
    mi = log_qz_x - log_qz
    tc = log_qz - log_qzk.sum(-1)
    dwkl = (log_qzk - log_pzk).sum(-1)
    return mi, tc, dwkl, log_qz_x - log_pzk.sum(-1)
