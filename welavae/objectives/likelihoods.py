"""Reconstruction terms of the (γ-weighted) ELBO, paper eq. 3 and §4.3.

Images are Bernoulli (pixels in [0, 1]), weak labels categorical.  Both
return per-sample negative log-likelihoods; the objective reduces.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["bernoulli_nll", "categorical_nll"]


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """−log p(x|z) for a factorised Bernoulli, summed over pixels.

    logits: (S, B, D) decoder outputs; x: (B, D) or (S, B, D) targets in [0, 1].
    Returns (S, B).  Uses softplus(l) − x·l, stable for any logit magnitude.
    """
    if x.dim() == logits.dim() - 1:
        x = x.unsqueeze(0).expand_as(logits)
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def categorical_nll(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """−log p(y|z) for one categorical label.

    logits: (S, B, P); y: (B,) int64 class indices.  Returns (S, B).
    """
    logp = torch.log_softmax(logits, dim=-1)
    idx = y.view(1, -1, 1).expand(logits.shape[0], -1, 1)
    return -logp.gather(-1, idx).squeeze(-1)
