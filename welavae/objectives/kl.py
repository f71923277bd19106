"""Gaussian KL and log-densities (paper eq. 1; Chen et al. 2018 §3)."""
from __future__ import annotations

import math

import torch

__all__ = ["gaussian_kl", "log_normal", "LOG_2PI"]

LOG_2PI = math.log(2 * math.pi)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, diag σ²) ‖ N(0, I)) per sample, summed over latents.

    mu, logvar: (..., K).  Returns (...): ½ Σ_k (μ² + σ² − log σ² − 1).
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0).sum(-1)


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(z; μ, σ²) (broadcasting), −½ (log 2π + log σ² + (z−μ)²/σ²)."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar))
