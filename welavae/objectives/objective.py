"""The WeLa-VAE objective, paper eq. 4, and its variants — composed in one place.

    loss = E[−log p(x|z)] + γ Σ_j E[−log p(y_j|z)] + E[KL(q(z|x,y) ‖ p(z))] + R

The label sum runs over the observed labels of each sample (a missing label,
−1, adds exactly 0); the batch mean is over all B samples, labelled or not,
so a labelled sample weighs the same whatever the fraction of labels.

with R = β·TC (β-TCVAE / WeLa-VAE, paper convention, β_Chen = 1 + β),
(β − 1)·KL (β-VAE, so that the KL weight is β), a DIP-VAE penalty, or 0.
Every term is a per-seed batch mean (the one place where the batch is
reduced); the seeds are independent and their losses are summed only to run
one backward pass.

The peers of docs/peers.md differ by their terms too: S2-β-TCVAE (Locatello et
al. 2020) replaces the label decoder's γ·NLL by γ_sup · R_s(μ, y), S2's
supervised regulariser on the encoder means (:mod:`~welavae.objectives.s2`;
logged as ``label_nll``); CCVAE (Joy et al. 2021) replaces image NLL + KL +
labels by the negative of its bound (:mod:`~welavae.objectives.ccvae`; its
classifier's −log q̂(y|x) logged as ``label_nll``, its KL to the conditional
prior as ``kl``).  Their parameters come from the network
(:class:`welavae.nn.labelside.LabelSide`) as ``label_params``.
"""
from __future__ import annotations

import torch

from ..config import ObjectiveConfig
from .ccvae import ccvae_terms
from .dip import dip_regulariser
from .kl import gaussian_kl
from .likelihoods import categorical_nll
from .s2 import s2_cov, s2_embed, s2_l2, s2_xent
from .tc import total_correlation

__all__ = ["objective_terms"]

#: ``supervised_loss`` → S2's R_s: (S, B) per sample, or (S,) for ``cov`` (a batch statistic).
S2_LOSSES = {"xent": s2_xent, "l2": s2_l2, "embed": s2_embed, "cov": s2_cov}


def objective_terms(
    cfg: ObjectiveConfig,
    *,
    image_nll: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    z: torch.Tensor,
    dataset_size: int,
    y: torch.Tensor | None = None,
    label_logits=None,
    log_w: torch.Tensor | None = None,
    gamma: torch.Tensor | None = None,
    label_params: dict | None = None,
    z_draws: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Per-seed terms, each (S,), named as :data:`welavae.config.TERMS`: image_nll, label_nll, kl,
    tc (when used), reg, loss.

    image_nll: (S, B) per-sample −log p(x|z) (:func:`~welavae.objectives.likelihoods.bernoulli_nll`
    of the image logits, or the fused head's :meth:`welavae.nn.vae.EnsembleVAE.decode_nll`);
    mu, logvar, z: (S, B, K); y: (B, m) ints, −1 = missing; label_logits: m tensors (S, B, p_j);
    gamma: (S,) the labels' weight of each seed (``--gamma auto``, :mod:`welavae.train.gamma`), else
    ``cfg.gamma``.  S2 and CCVAE: ``label_params`` the keywords of their term
    (:meth:`welavae.nn.labelside.LabelSide.objective_inputs`); CCVAE: ``z_draws`` (S, R, B, m) the R draws
    of the label latents that estimate q(y|x).
    """
    terms: dict[str, torch.Tensor] = {}
    terms["image_nll"] = image_nll.mean(1)
    if cfg.regulariser == "ccvae":  # its bound holds the image term, both KLs and the labels
        t = ccvae_terms(image_nll=image_nll, mu=mu, logvar=logvar, z=z, z_draws=z_draws, y=y, **label_params)
        terms.update(kl=t["kl"].mean(1), label_nll=t["classifier_nll"].mean(1),
                     reg=torch.zeros_like(terms["image_nll"]), loss=t["loss"].mean(1))
        return terms
    kl = gaussian_kl(mu, logvar).mean(1)
    terms["kl"] = kl
    loss = terms["image_nll"] + kl
    if label_logits is not None:
        label_nll = sum(categorical_nll(logits_j, y[:, j]) for j, logits_j in enumerate(label_logits))
        terms["label_nll"] = label_nll.mean(1)
        loss = loss + (cfg.gamma if gamma is None else gamma) * terms["label_nll"]
    if cfg.supervised_loss is not None:
        sup = S2_LOSSES[cfg.supervised_loss](mu, y, **label_params)
        terms["label_nll"] = sup if sup.dim() == 1 else sup.mean(1)
        loss = loss + cfg.gamma_sup * terms["label_nll"]
    if cfg.regulariser == "tc":
        tc = total_correlation(z, mu, logvar, dataset_size=dataset_size, estimator=cfg.tc_estimator, log_w=log_w)
        terms["tc"] = tc.mean(1)
        reg = cfg.beta * terms["tc"]
    elif cfg.regulariser == "kl":
        reg = (cfg.beta - 1.0) * kl
    elif cfg.regulariser in ("dip-i", "dip-ii"):
        reg = dip_regulariser(
            mu, logvar, kind=cfg.regulariser[4:], lambda_od=cfg.dip_lambda_od, lambda_d=cfg.dip_lambda_d
        )
    else:
        reg = torch.zeros_like(kl)
    terms["reg"] = reg
    terms["loss"] = loss + reg
    return terms
