"""The CCVAE objective (Joy, Schmon, Torr, Siddharth, Rainforth 2021, "Capturing Label
Characteristics in VAEs", ICLR: its supervised and unsupervised bounds), for categorical
labels and partially missing labels.  Transcribed from the authors' PyTorch release (``thwjoy/ccvae_pytorch``,
``models/ccvae.py``: ``sup``, ``unsup``, ``classifier_loss``), cross-checked with the
Pyro release (``thwjoy/ccvae``); docs/peers.md lists every convention and deviation.

Latents z = (z_c, z_\\c): latent j < m carries label j, the rest are free.
* classifier  q(y_j = c | z_j) = softmax_c(w_{j,c} z_j + b_{j,c}) — it sees its own latent
  only, and the logits are affine in z_j so the classes stay ordered along it (with p = 2
  and w_{j,0} = b_{j,0} = 0 this is the release's Bernoulli(sigmoid(w z + b)));
* conditional prior  p(z_j | y_j = c) = N(μ_{j,c}, σ²_{j,c}),  p(z_\\c) = N(0, I);
* label prior  p(y_j) fixed (uniform unless given).

Per sample, with O the labels observed for it and U the missing ones, and z one
reparameterised sample of q(z|x) (the bound of (x, y_O), y_U latent with q(y_U | z_c)):

    bound = w_O · [ log p(x|z) − KL(q(z_\\c|x) ‖ N(0, I))
                    − Σ_{j∈O} ( KL_j(y_j) + log q(y_j|z_j) )
                    + Σ_{j∈U} Σ_c q(c|z_j) ( log p(y_j=c) − KL_j(c) − log q(c|z_j) ) ]
            + Σ_{j∈O} ( log p(y_j) + log q̂(y_j|x) )

    w_O = Π_{j∈O} q(y_j | sg[z_j]) / q̂(y_j|x),   KL_j(c) = KL(q(z_j|x) ‖ N(μ_{j,c}, σ²_{j,c})),
    log q̂(y_j|x) = logsumexp_r log q(y_j | z_j^{(r)}) − log R   (R reparameterised draws).

All labels observed gives the release's supervised bound, none its unsupervised bound,
with the expectation over a missing y_j enumerated over its p_j classes instead of one
sample.  ``sg`` (stop-gradient on z in the weight's numerator) is the release's.  The
weight factorises over labels because q(y|z_c) = Π_j q(y_j|z_j) and q(z|x) is diagonal,
so q(y|x) = Π_j q(y_j|x).  Shapes: S seeds, B samples, K latents, m labels, p_j classes.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .kl import gaussian_kl

__all__ = [
    "CLASSIFIER_DRAWS",
    "ccvae_classifier_log_probs",
    "ccvae_prior_kl",
    "ccvae_log_qy_x",
    "ccvae_terms",
    "ccvae_predict",
]

#: R, the draws of z_c per sample that estimate q(y|x) (``classifier_loss(..., k=100)`` in the release).
CLASSIFIER_DRAWS = 100


def ccvae_classifier_log_probs(
    z_c: torch.Tensor, weight: Sequence[torch.Tensor], bias: Sequence[torch.Tensor]
) -> list[torch.Tensor]:
    """log q(c | z_j) = log_softmax_c(w_{j,c} z_j + b_{j,c}) for each label j.

    z_c: (S, …, m) the label latents (any middle dims); weight, bias: m tensors (S, p_j).
    Returns m tensors (S, …, p_j).
    """
    out = []
    for j, (w, b) in enumerate(zip(weight, bias)):
        shape = (w.shape[0],) + (1,) * (z_c.dim() - 2) + (w.shape[1],)
        out.append(torch.log_softmax(z_c[..., j, None] * w.view(shape) + b.view(shape), dim=-1))
    return out


def ccvae_prior_kl(
    mu_j: torch.Tensor, logvar_j: torch.Tensor, prior_mu: torch.Tensor, prior_logvar: torch.Tensor
) -> torch.Tensor:
    """KL(N(μ, s²) ‖ N(μ_c, σ_c²)) = ½ [log σ_c² − log s² + (s² + (μ − μ_c)²) / σ_c² − 1], for every c.

    mu_j, logvar_j: (S, B) the posterior of latent j; prior_mu, prior_logvar: (S, p_j).
    Returns (S, B, p_j).
    """
    mu, lv = mu_j[..., None], logvar_j[..., None]
    pm, plv = prior_mu[:, None, :], prior_logvar[:, None, :]
    return 0.5 * (plv - lv + (lv.exp() + (mu - pm).pow(2)) * torch.exp(-plv) - 1.0)


def _gather(values: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """values (S, …, B, p), idx (B,) → (S, …, B): the entry of class idx_i for sample i."""
    return values.gather(-1, idx.view(*(1,) * (values.dim() - 2), -1, 1).expand(*values.shape[:-1], 1)).squeeze(-1)


def ccvae_log_qy_x(
    z_draws: torch.Tensor, y: torch.Tensor, weight: Sequence[torch.Tensor], bias: Sequence[torch.Tensor]
) -> torch.Tensor:
    """log q̂(y_j | x) = logsumexp_r log q(y_j | z_j^{(r)}) − log R, per label; 0 where y_j is missing.

    z_draws: (S, R, B, m) reparameterised draws of z_c from q(z_c|x) (gradients flow through
    them to μ, log σ²); y: (B, m) int64, −1 = missing.  Returns (S, B, m).
    """
    r = z_draws.shape[1]
    observed = y >= 0
    idx = y.clamp(min=0)
    log_q = ccvae_classifier_log_probs(z_draws, weight, bias)  # m × (S, R, B, p_j)
    per_label = torch.stack(
        [torch.logsumexp(_gather(lq, idx[:, j]), dim=1) - math.log(r) for j, lq in enumerate(log_q)], dim=-1
    )
    return torch.where(observed, per_label, torch.zeros((), dtype=per_label.dtype, device=per_label.device))


def ccvae_terms(
    *,
    image_nll: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    z: torch.Tensor,
    z_draws: torch.Tensor,
    y: torch.Tensor,
    weight: Sequence[torch.Tensor],
    bias: Sequence[torch.Tensor],
    prior_mu: Sequence[torch.Tensor],
    prior_logvar: Sequence[torch.Tensor],
    log_py: Sequence[torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Per-sample CCVAE terms, each (S, B); the objective takes their batch mean.

    image_nll: (S, B) −log p(x|z) at the sample z; mu, logvar, z: (S, B, K), K ≥ m;
    z_draws: (S, R, B, m) independent draws for q̂(y|x) (see :func:`ccvae_log_qy_x`);
    y: (B, m) int64, −1 = missing; weight, bias: the classifier, m tensors (S, p_j);
    prior_mu, prior_logvar: the conditional prior, m tensors (S, p_j);
    log_py: m tensors (p_j,) fixed log p(y_j = c) (default uniform, −log p_j).

    Returns ``loss`` = −bound (module docstring), and for logging ``weight`` w_O (1 for an
    unlabelled sample), ``kl`` (the prior KL: free latents plus KL_j(y_j) for an observed
    label, E_{q(c|z_j)} KL_j(c) for a missing one) and ``classifier_nll`` = −Σ_{j∈O} log q̂(y_j|x).
    """
    m = y.shape[1]
    observed = y >= 0
    idx = y.clamp(min=0)
    zero = torch.zeros((), dtype=mu.dtype, device=mu.device)
    log_q = ccvae_classifier_log_probs(z[..., :m], weight, bias)  # m × (S, B, p_j)
    log_q_sg = ccvae_classifier_log_probs(z[..., :m].detach(), weight, bias)  # the weight's numerator
    log_qyx = ccvae_log_qy_x(z_draws, y, weight, bias)  # (S, B, m)

    kl = gaussian_kl(mu[..., m:], logvar[..., m:])  # (S, B), the free latents
    inner = -image_nll - kl
    log_w = torch.zeros_like(inner)
    outer = torch.zeros_like(inner)
    for j in range(m):
        obs = observed[:, j]
        kl_j = ccvae_prior_kl(mu[..., j], logvar[..., j], prior_mu[j], prior_logvar[j])  # (S, B, p_j)
        p = kl_j.shape[-1]
        if log_py is None:
            lpy = torch.full((p,), -math.log(p), dtype=mu.dtype, device=mu.device)
        else:
            lpy = log_py[j].to(mu)
        q = log_q[j].exp()
        # observed: the supervised bracket; missing: E_{q(c|z_j)} of the unsupervised one, enumerated.
        sup_inner = -(_gather(kl_j, idx[:, j]) + _gather(log_q[j], idx[:, j]))
        unsup_inner = (q * (lpy - kl_j - log_q[j])).sum(-1)
        inner = inner + torch.where(obs, sup_inner, unsup_inner)
        kl = kl + torch.where(obs, _gather(kl_j, idx[:, j]), (q * kl_j).sum(-1))
        log_w = log_w + torch.where(obs, _gather(log_q_sg[j], idx[:, j]) - log_qyx[..., j], zero)
        outer = outer + torch.where(obs, lpy[idx[:, j]] + log_qyx[..., j], zero)
    w = log_w.exp()
    return {"loss": -(w * inner + outer), "weight": w, "kl": kl, "classifier_nll": -log_qyx.sum(-1)}


def ccvae_predict(mu: torch.Tensor, weight: Sequence[torch.Tensor], bias: Sequence[torch.Tensor]) -> torch.Tensor:
    """argmax_c q(y_j = c | z_j = μ_j) for each label: (S, B, m) int64 (the release's ``classify`` uses the means)."""
    m = len(weight)
    return torch.stack([lq.argmax(-1) for lq in ccvae_classifier_log_probs(mu[..., :m], weight, bias)], dim=-1)
