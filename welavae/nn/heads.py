"""The decoder's fused image head: the output layer h·W + b and its Bernoulli NLL as one op with its own backward.

The image NLL is paper eq. 3's −log p(x|z) for Bernoulli pixels,
Σ_d softplus(l_d) − x_d·l_d with l = h·W + b; the trainer's path
(:meth:`welavae.nn.vae.EnsembleVAE.decode_nll`) computes it here, without
materialising the logits' gradient, and hands the per-sample NLL (S, B) to
:func:`welavae.objectives.objective_terms`.  Value and gradients equal
``bernoulli_nll(torch.baddbmm(b, h, W), x)`` (:func:`bernoulli_nll`, the same likelihood on logits),
checked in float64 by ``tests/test_objectives_objective.py``.

Under ``torch.autocast`` the op runs in float32 (:func:`welavae.amp.autocast_safe`).
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from ..amp import autocast_safe

__all__ = ["bernoulli_nll", "linear_bernoulli_nll"]


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


def _chunk(d: int, most: int = 64) -> int:
    """The largest divisor of d that is at most ``most``."""
    return max(k for k in range(1, min(d, most) + 1) if d % k == 0)


def _nll_and_residual(logits, x, chunk: int, bias=None):
    """(Σ_d softplus(l_d) − x_d·l_d, σ(l) − x) from one exp per element.

    With e = exp(−|l|): softplus(l) = relu(l) + log(1 + e), and σ(l) = 1/(1+e)
    for l ≥ 0, e/(1+e) otherwise — stable for any logit.  The logs are taken
    of products of ``chunk`` (≤ 64) factors 1 + e ∈ (1, 2], at most 2⁶⁴, far
    from fp32 overflow: one log per 64 pixels instead of one per pixel (the
    log was half the kernel's time; relative error ~5e-7 either way).
    logits (S, B, D), x (B, D) or (S, B, D); ``bias`` (S, 1, D) is added to
    the logits first (saving the separate pass that ``baddbmm`` makes for it).
    """
    if bias is not None:
        logits = logits + bias
    e = torch.exp(-logits.abs())
    q = 1.0 + e
    s, b, d = logits.shape
    log_q = q.view(s, b, d // chunk, chunk).prod(-1).log().sum(-1)
    nll = (torch.clamp_min(logits, 0.0) - x * logits).sum(-1) + log_q
    residual = torch.where(logits >= 0, 1.0, e) / q - x
    return nll, residual


_compiled = None  # the compiled kernel; False once compiling has failed in this process


def _kernel():
    global _compiled
    if _compiled is None:
        # dynamic: one kernel for every (S, B, D), compiled once per process.
        _compiled = torch.compile(_nll_and_residual, dynamic=True, fullgraph=True)
    return _compiled


def _compiled_available(t: torch.Tensor) -> bool:
    """Whether the compiled kernel can serve this tensor: fp32 on the CPU, and compiling has not failed."""
    return _compiled is not False and t.device.type == "cpu" and t.dtype == torch.float32


def _compile_failed(e: Exception) -> None:
    global _compiled
    _compiled = False
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    warnings.warn(f"torch.compile of the Bernoulli likelihood failed ({type(e).__name__}: {first}); "
                  "using the eager form", RuntimeWarning, stacklevel=3)


class _LinearBernoulliNLL(torch.autograd.Function):
    """bernoulli_nll(h·W + b, x) with the output layer's backward written out.

    The logits' gradient is (σ(l) − x)·g with g (S, B) per sample; instead of
    scaling the (S, B, D) residual r = σ(l) − x by g (one more pass over it)
    the scale goes onto the small factors: ∂W = (g·h)ᵀ r, ∂h = g·(r Wᵀ),
    ∂b = gᵀ r.  The logits are freed after forward; only r is kept.
    """

    @staticmethod
    def forward(ctx, h, weight, bias, x, compiled):
        if compiled:
            logits = torch.bmm(h, weight)  # (S, B, D); the kernel adds the bias
            nll, residual = _kernel()(logits, x, _chunk(logits.shape[-1]), bias)
        else:
            logits = torch.baddbmm(bias, h, weight)
            nll = F.softplus(logits).addcmul_(logits, x, value=-1.0).sum(-1)
            residual = torch.sigmoid(logits).sub_(x)
        ctx.save_for_backward(h, weight, residual)
        return nll

    @staticmethod
    def backward(ctx, grad):
        h, weight, residual = ctx.saved_tensors
        g = grad.unsqueeze(-1)  # (S, B, 1)
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        grad_h = torch.bmm(residual, weight.transpose(1, 2)).mul_(g) if need_h else None
        grad_w = torch.bmm((h * g).transpose(1, 2), residual) if need_w else None
        grad_b = torch.bmm(g.transpose(1, 2), residual) if need_b else None  # (S, 1, D)
        return grad_h, grad_w, grad_b, None, None


def linear_bernoulli_nll(h, weight, bias, x, *, compiled: bool = False) -> torch.Tensor:
    """``bernoulli_nll(torch.baddbmm(bias, h, weight), x)`` — the decoder's image head and its likelihood as one op.

    h (S, B, H), weight (S, H, D), bias (S, 1, D), x (B, D) → (S, B) float32.
    Same value and gradients; backward skips a pass over the (S, B, D)
    gradient.  ``compiled``: the forward as one torch.compile'd loop over the
    logits (:func:`_nll_and_residual`; fp32 CPU tensors).  It is compiled on
    first use (once per process); if compiling fails (no C++ compiler, say) a
    warning is given once and the eager form used from then on.  (Its
    measured share of a step: docs/performance.md.)
    """
    x = x.detach()
    op = autocast_safe(_LinearBernoulliNLL, h.device.type)
    if compiled and _compiled_available(h):
        try:
            return op.apply(h, weight, bias, x, True)
        except Exception as e:  # inductor needs a working C++ toolchain
            _compile_failed(e)
    return op.apply(h, weight, bias, x, False)
