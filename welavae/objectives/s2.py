"""The supervised regularisers R_s of the S2 semi-supervised VAEs (Locatello et al. 2020,
"Disentangling Factors of Variation Using Few Labels", ICLR).

S2 adds γ_sup · R_s(μ(x_L), y_L) to an unsupervised VAE objective (here β-TCVAE's,
composed elsewhere): μ are the encoder means of the labelled images, and label j is
tied to latent j (the first m latents; the rest are free).  The four R_s below are
transcribed from disentanglement_lib
(``disentanglement_lib/methods/semi_supervised/semi_supervised_vae.py``,
``supervised_regularizer_{xent,l2,cov,embed}``); docs/peers.md lists every convention
and deviation.  In short, with a class index c ∈ {0, …, p_j − 1} standing for their
integer factor value:

* ``xent``:  Σ_j BCE(logit = μ_j, target = c_j / p_j)  (their ``normalize_labels``
  divides by the number of values, so the targets are 0, 1/p, …, (p−1)/p).
* ``l2``:    Σ_j (b·μ_j − c_j)², one learned scalar b per seed (their default
  ``learn_scale=True``; b starts at 1); the label is the raw index.
* ``cov``:   Σ_{k≠j} Cov_batch(μ_k, c_j)², the covariance of all K latents with the raw
  label indices, its diagonal (k = j) excluded: a batch statistic, (S,) per seed.
* ``embed``: Σ_j −log softmax_c(−((μ_j − e_{j,c}) σ_j)²)[c_j], learned embeddings
  e_{j,·} ∈ R^{p_j} and a temperature σ_j (fixed or learned).

Reduction.  xent, l2 and embed return per-sample values (S, B), summed over the
labels observed for that sample; a missing label (−1) adds exactly 0 to the value and to
every gradient.  The objective takes the batch mean over all B samples.
disentanglement_lib *sums* xent and l2 over its labelled batch of B_L images and
*averages* embed over it (``tf.losses.softmax_cross_entropy``'s default reduction),
so with every sample of a batch labelled γ_sup(here) = B·γ_sup(dlib) for xent and l2,
and γ_sup(here) = γ_sup(dlib) for embed.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["s2_xent", "s2_l2", "s2_cov", "s2_embed", "s2_predict", "S2_KINDS"]

S2_KINDS = ("xent", "l2", "cov", "embed")


def _observed(y: torch.Tensor, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, m) bool mask of observed labels and the labels as floats with missing set to 0."""
    observed = y >= 0
    return observed, torch.where(observed, y, torch.zeros_like(y)).to(dtype)


def _masked_sum(values: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """values (S, B, m), observed (B, m) → (S, B): Σ over observed labels; ``where`` passes no
    gradient to a missing entry, so a missing label is no term at all."""
    return torch.where(observed, values, torch.zeros((), dtype=values.dtype, device=values.device)).sum(-1)


def s2_xent(mu: torch.Tensor, y: torch.Tensor, *, label_sizes: Sequence[int]) -> torch.Tensor:
    """Sigmoid cross-entropy of latent j against c_j / p_j, per sample.

    mu: (S, B, K) encoder means, K ≥ m; y: (B, m) int64 class indices, −1 = missing;
    label_sizes: (p_1, …, p_m).  Returns (S, B):
    Σ_j [max(μ_j, 0) − μ_j t_j + log(1 + e^{−|μ_j|})], t_j = c_j / p_j (TF's
    ``sigmoid_cross_entropy_with_logits``).
    """
    m = y.shape[1]
    observed, c = _observed(y, mu.dtype)
    target = c / torch.as_tensor(label_sizes, dtype=mu.dtype, device=mu.device)
    logits = mu[..., :m]
    return _masked_sum(F.binary_cross_entropy_with_logits(logits, target.expand_as(logits), reduction="none"), observed)


def s2_l2(mu: torch.Tensor, y: torch.Tensor, *, scale: torch.Tensor) -> torch.Tensor:
    """Squared error of the scaled latent j against the class index c_j, per sample.

    mu: (S, B, K); y: (B, m); scale: (S,) the learned scalar b of each seed (one for all
    labels; disentanglement_lib initialises it to 1).  Returns (S, B): Σ_j (b μ_j − c_j)².
    """
    m = y.shape[1]
    observed, c = _observed(y, mu.dtype)
    return _masked_sum((scale[:, None, None] * mu[..., :m] - c).pow(2), observed)


def s2_cov(mu: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared off-diagonal cross-covariance of the K latents with the m label indices.

    mu: (S, B, K); y: (B, m).  Returns (S,) — a batch statistic, not a per-sample value:
    C_kj = (1/n_j) Σ_{i: y_ij observed} (μ_ik − μ̄_k^{(j)}) (c_ij − c̄_j), with the means
    μ̄^{(j)}, c̄_j over the n_j samples whose label j is observed (all B when none is
    missing, which is disentanglement_lib's case), and penalty Σ_{k≠j} C_kj²
    (the pairs k = j < min(K, m) excluded).  A label observed nowhere in the batch adds 0.
    """
    k, m = mu.shape[-1], y.shape[1]
    observed, c = _observed(y, mu.dtype)
    w = observed.to(mu.dtype)  # (B, m)
    n = w.sum(0).clamp(min=1.0)  # (m,)
    mu_bar = torch.einsum("sbk,bj->skj", mu, w) / n  # (S, K, m): mean of latent k over label j's samples
    c_bar = (w * c).sum(0) / n  # (m,)
    centred_mu = mu[..., None] - mu_bar[:, None]  # (S, B, K, m)
    centred_c = w * (c - c_bar)  # (B, m), 0 where missing
    cov = (centred_mu * centred_c[None, :, None, :]).sum(1) / n  # (S, K, m)
    off = torch.ones(k, m, dtype=torch.bool, device=mu.device)
    diag = torch.arange(min(k, m), device=mu.device)
    off[diag, diag] = False
    return cov.pow(2).mul(off).sum((1, 2))


def s2_embed(
    mu: torch.Tensor,
    y: torch.Tensor,
    *,
    embeddings: Sequence[torch.Tensor],
    sigma: torch.Tensor | float,
) -> torch.Tensor:
    """Softmax cross-entropy over one learned 1-d embedding per class, per sample.

    mu: (S, B, K); y: (B, m); embeddings: m tensors (S, p_j), e_{j,c} (disentanglement_lib's
    ``embedding`` variable; its ``use_order=True`` variant is e_{j,c} = c·slope_j + bias_j,
    which the caller can build and pass here); sigma: the temperature, a float or a
    tensor (S, m) when learned.  Returns (S, B):
    Σ_j [logsumexp_c ℓ_{j,c} − ℓ_{j,c_j}], ℓ_{j,c} = −((μ_j − e_{j,c}) σ_j)².
    """
    observed, _ = _observed(y, mu.dtype)
    sigma = torch.as_tensor(sigma, dtype=mu.dtype, device=mu.device).expand(mu.shape[0], y.shape[1])
    per_label = []
    for j, e in enumerate(embeddings):
        logits = -((mu[..., j, None] - e[:, None, :]) * sigma[:, j, None, None]).pow(2)  # (S, B, p_j)
        idx = y[:, j].clamp(min=0).view(1, -1, 1).expand(mu.shape[0], -1, 1)
        per_label.append(torch.logsumexp(logits, -1) - logits.gather(-1, idx).squeeze(-1))
    return _masked_sum(torch.stack(per_label, -1), observed)


def s2_predict(
    kind: str,
    mu: torch.Tensor,
    *,
    label_sizes: Sequence[int],
    scale: torch.Tensor | None = None,
    embeddings: Sequence[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Each regulariser's own label predictor from the means; (S, B, m) int64 class indices.

    xent: the class whose target c/p_j is nearest to sigmoid(μ_j); l2: the class index nearest
    to b·μ_j; embed: argmax_c of the softmax, i.e. the nearest embedding e_{j,c} (for σ ≠ 0).
    Ties go to the lower class.  cov has no predictor: its loss ties no value of latent j to a
    class (it only decorrelates latents from the other labels), so asking for one is an error.
    """
    preds = []
    for j, p in enumerate(label_sizes):
        classes = torch.arange(p, dtype=mu.dtype, device=mu.device)
        if kind == "xent":
            dist = (torch.sigmoid(mu[..., j, None]) - classes / p).abs()
        elif kind == "l2":
            if scale is None:
                raise ValueError("s2_predict('l2', …) needs scale, the learned (S,) scalar b of the l2 regulariser")
            dist = (scale[:, None, None] * mu[..., j, None] - classes).abs()
        elif kind == "embed":
            if embeddings is None:
                raise ValueError("s2_predict('embed', …) needs embeddings, the m learned (S, p_j) class embeddings")
            dist = (mu[..., j, None] - embeddings[j][:, None, :]).abs()
        elif kind == "cov":
            raise ValueError("the S2 'cov' regulariser has no label predictor; measure its label accuracy with a probe")
        else:
            raise ValueError(f"unknown S2 regulariser {kind!r}; expected one of {S2_KINDS}")
        preds.append(dist.argmin(-1))  # argmin returns the first (lowest) class on a tie
    return torch.stack(preds, -1)
