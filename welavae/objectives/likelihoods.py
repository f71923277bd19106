"""Reconstruction terms of the (γ-weighted) ELBO, paper eq. 3 and §4.3.

Images are Bernoulli (pixels in [0, 1]), weak labels categorical.  Both
return per-sample negative log-likelihoods; the objective reduces.  The
Bernoulli image likelihood is owned by the image head (:mod:`welavae.nn.heads`:
on logits, or fused with the MLP decoder's output layer) and re-exported here.
"""
from __future__ import annotations

import torch

from ..nn.heads import bernoulli_nll

__all__ = ["bernoulli_nll", "categorical_nll"]


def categorical_nll(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """−log p(y|z) for one categorical label; 0 where the label is missing.

    logits: (S, B, P); y: (B,) int64 class indices, −1 = missing.  Returns
    (S, B).  A missing entry contributes exactly 0 to the value and to every
    gradient (``torch.where`` passes no gradient to the unselected branch).
    """
    logp = torch.log_softmax(logits, dim=-1)
    observed = y >= 0
    idx = y.clamp(min=0).view(1, -1, 1).expand(logits.shape[0], -1, 1)
    nll = -logp.gather(-1, idx).squeeze(-1)
    return torch.where(observed, nll, torch.zeros((), dtype=nll.dtype, device=nll.device))
