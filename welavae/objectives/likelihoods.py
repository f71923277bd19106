"""Reconstruction terms of the (γ-weighted) ELBO, paper eq. 3 and §4.3.

Images are Bernoulli (pixels in [0, 1]), weak labels categorical.  Both
return per-sample negative log-likelihoods; the objective reduces.  The
trainer's image NLL comes fused with the decoder's output layer from
:mod:`welavae.nn.heads`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..amp import autocast_safe

__all__ = ["bernoulli_nll", "categorical_nll"]


class _BernoulliNLL(torch.autograd.Function):
    """Σ_d softplus(l_d) − x_d·l_d with the gradient σ(l) − x written out.

    The stock BCE builds several (S, B, D) temporaries forward and backward;
    over S seeds × 4096 pixels this elementwise work rivals the matmuls, so
    it is fused here: three passes forward, three backward, x broadcast over
    seeds without being copied.  The targets get no gradient.
    """

    @staticmethod
    def forward(ctx, logits, x):
        ctx.save_for_backward(logits, x)
        out = F.softplus(logits)
        out.addcmul_(logits, x, value=-1.0)
        return out.sum(-1)

    @staticmethod
    def backward(ctx, grad):
        logits, x = ctx.saved_tensors
        g = torch.sigmoid(logits)
        g.sub_(x).mul_(grad.unsqueeze(-1))
        return g, None


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """−log p(x|z) for a factorised Bernoulli, summed over pixels.

    logits: (S, B, D) decoder outputs; x: (B, D) or (S, B, D) targets in [0, 1].
    Returns (S, B).  softplus(l) − x·l is stable for any logit magnitude.
    The trainer computes the same fused with the decoder's output layer
    (:func:`welavae.nn.heads.linear_bernoulli_nll`).  Under autocast it runs in float32.
    """
    return autocast_safe(_BernoulliNLL, logits.device.type).apply(logits, x.detach())


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
