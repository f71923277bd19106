"""DIP-VAE regularisers (Kumar et al. 2018, eqs. 6–7).

Match the covariance of the aggregate posterior to the prior's identity:
λ_od Σ_{i≠j} C_ij² + λ_d Σ_i (C_ii − 1)², with C = Cov_batch[μ] (DIP-VAE-I)
or C = Cov_batch[μ] + E_batch[diag σ²] (DIP-VAE-II).  The paper (§3) names
this as a drop-in replacement for the TC penalty.
"""
from __future__ import annotations

import torch

__all__ = ["dip_covariance", "dip_regulariser"]


def dip_covariance(mu: torch.Tensor, logvar: torch.Tensor, *, kind: str = "ii") -> torch.Tensor:
    """mu, logvar: (S, B, K) → (S, K, K) batch covariance used by DIP-VAE-I or -II."""
    centred = mu - mu.mean(dim=1, keepdim=True)
    cov = centred.transpose(1, 2) @ centred / mu.shape[1]
    if kind == "ii":
        cov = cov + torch.diag_embed(logvar.exp().mean(dim=1))
    elif kind != "i":
        raise ValueError(f"DIP kind must be 'i' or 'ii', got {kind!r}")
    return cov


def dip_regulariser(mu, logvar, *, kind: str = "ii", lambda_od: float = 10.0, lambda_d: float = 10.0) -> torch.Tensor:
    """(S,) DIP penalty per seed (a batch statistic, not per sample)."""
    cov = dip_covariance(mu, logvar, kind=kind)
    diag = torch.diagonal(cov, dim1=1, dim2=2)
    off = cov - torch.diag_embed(diag)
    return lambda_od * off.pow(2).sum((1, 2)) + lambda_d * (diag - 1.0).pow(2).sum(-1)
