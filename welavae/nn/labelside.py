"""The labels' parameters of the peer methods, which decode no label: S2 and CCVAE (docs/peers.md).

S2 (Locatello et al. 2020, :mod:`welavae.objectives.s2`) and CCVAE (Joy et al. 2021,
:mod:`welavae.objectives.ccvae`) tie label j to latent j through a few parameters per label
and seed.  They live here, stacked over seeds (seed axis first), so that the optimiser, the
checkpoints, the divergence guard and :meth:`welavae.nn.vae.EnsembleVAE.subset` treat them as
every other weight; the objective's pure terms take them as arguments
(:meth:`LabelSide.objective_inputs`).  By kind (:attr:`welavae.config.ObjectiveConfig.label_side`):

* ``s2-xent``, ``s2-cov``: none.
* ``s2-l2``: ``scale`` (S,), disentanglement_lib's learned b, initialised to 1 as there.
* ``s2-embed``: ``embedding`` (S, Σ p_j), label j's class embeddings e_{j,c}, drawn from the seed's
  generator as TF's Glorot-uniform initialiser draws a (p_j,) variable (disentanglement_lib's
  ``tf.get_variable`` default): U(−√(3/p_j), √(3/p_j)); the temperature σ is fixed at
  :data:`EMBED_SIGMA`.
* ``ccvae``: the classifier q(y_j = c | z_j) = softmax_c(w_{j,c} z_j + b_{j,c}) (``weight``, ``bias``)
  and the conditional prior p(z_j | y_j = c) = N(μ_{j,c}, σ²_{j,c}) (``prior_mu``, ``prior_logvar``),
  each (S, Σ p_j).  Initialised as the authors' release for p = 2 and in the same spirit for p > 2
  (the same for every seed; only the networks' weights differ by seed): prior means evenly spaced
  on [−2, 2], log σ² = 2 log softplus(1) (their scale softplus(1)), classifier weights w_{j,c} = c
  and biases that put the decision boundary between classes c and c + 1 midway between their prior
  means (for p = 2: w = (0, 1), b = 0, the release's Bernoulli(sigmoid(z))).

:meth:`LabelSide.scores` gives, per label, class scores whose argmax is the method's own label
predictor (:func:`welavae.objectives.s2.s2_predict`, :func:`welavae.objectives.ccvae.ccvae_predict`;
``s2-cov`` has none), which is what :meth:`EnsembleVAE.label_logits` returns for these kinds.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LabelSide", "LABEL_SIDES", "EMBED_SIGMA"]

LABEL_SIDES = ("s2-xent", "s2-l2", "s2-embed", "s2-cov", "ccvae")
#: σ of the S2 ``embed`` regulariser: disentanglement_lib requires it (``gin.REQUIRED``); its tests bind 1.
EMBED_SIGMA = 1.0
#: The conditional prior's initial log-variance: the release's scale softplus(1), squared.
PRIOR_LOGVAR = 2.0 * math.log(F.softplus(torch.tensor(1.0)).item())


def _ccvae_init(p: int) -> dict[str, torch.Tensor]:
    """One label's CCVAE parameters at the start (p,) each (see the module docstring)."""
    means = torch.linspace(-2.0, 2.0, p)
    weight = torch.arange(p, dtype=torch.float32)
    midpoints = (means[1:] + means[:-1]) / 2  # boundary of classes c, c+1: w_c t + b_c = w_{c+1} t + b_{c+1}
    bias = torch.cat([torch.zeros(1), -torch.cumsum(midpoints, 0)])
    return {"weight": weight, "bias": bias, "prior_mu": means, "prior_logvar": torch.full((p,), PRIOR_LOGVAR)}


class LabelSide(nn.Module):
    """S seeds' label parameters of one peer method ``kind`` (one of :data:`LABEL_SIDES`) for labels of
    ``label_dims`` = (p_1, …, p_m) classes; ``generators``: one per seed (the embeddings' draws)."""

    def __init__(self, kind: str, label_dims, generators: list[torch.Generator]):
        super().__init__()
        if kind not in LABEL_SIDES:
            raise ValueError(f"unknown label side {kind!r}; expected one of {LABEL_SIDES}")
        self.kind, self.label_dims = kind, [int(p) for p in label_dims]
        s = len(generators)
        if kind == "s2-l2":
            self.scale = nn.Parameter(torch.ones(s))
        elif kind == "s2-embed":
            self.embedding = nn.Parameter(torch.stack([
                torch.cat([(torch.rand(p, generator=g) * 2 - 1) * math.sqrt(3.0 / p) for p in self.label_dims])
                for g in generators]))
        elif kind == "ccvae":
            init = [_ccvae_init(p) for p in self.label_dims]
            for name in ("weight", "bias", "prior_mu", "prior_logvar"):
                self.register_parameter(name, nn.Parameter(torch.cat([i[name] for i in init]).repeat(s, 1)))
        self.seed_dims = {name: 0 for name, _ in self.named_parameters(recurse=False)}

    def _per_label(self, name: str) -> list[torch.Tensor]:
        """Parameter ``name`` (S, Σ p_j) as m views (S, p_j)."""
        return list(getattr(self, name).split(self.label_dims, dim=1))

    def objective_inputs(self) -> dict:
        """The keywords of the method's pure term: ``s2_xent(label_sizes)``, ``s2_l2(scale)``,
        ``s2_embed(embeddings, sigma)``, ``s2_cov()``, ``ccvae_terms(weight, bias, prior_mu, prior_logvar)``."""
        if self.kind == "s2-xent":
            return {"label_sizes": self.label_dims}
        if self.kind == "s2-l2":
            return {"scale": self.scale}
        if self.kind == "s2-embed":
            return {"embeddings": self._per_label("embedding"), "sigma": EMBED_SIGMA}
        if self.kind == "ccvae":
            return {name: self._per_label(name) for name in ("weight", "bias", "prior_mu", "prior_logvar")}
        return {}

    def scores(self, z: torch.Tensor) -> tuple[torch.Tensor, ...] | None:
        """z (S, B, K) → m class scores (S, B, p_j) whose argmax (the first on a tie) is the method's predictor
        of label j from latent j; None for ``s2-cov``, which ties no value of a latent to a class.

        s2-xent: −|σ(z_j) − c/p_j|; s2-l2: −|b z_j − c|; s2-embed: −|z_j − e_{j,c}|; ccvae: w_{j,c} z_j + b_{j,c}.
        """
        if self.kind == "s2-cov":
            return None
        out = []
        for j, p in enumerate(self.label_dims):
            zj = z[..., j, None]  # (S, B, 1)
            classes = torch.arange(p, dtype=z.dtype, device=z.device)
            if self.kind == "s2-xent":
                out.append(-(torch.sigmoid(zj) - classes / p).abs())
            elif self.kind == "s2-l2":
                out.append(-(self.scale[:, None, None] * zj - classes).abs())
            elif self.kind == "s2-embed":
                out.append(-(zj - self._per_label("embedding")[j][:, None, :]).abs())
            else:
                out.append(zj * self._per_label("weight")[j][:, None, :] + self._per_label("bias")[j][:, None, :])
        return tuple(out)
