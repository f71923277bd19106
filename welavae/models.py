"""The one registry of model kinds (paper §3–4.3): one VAE, different objective terms.

Every place that needs a fact about a model kind — its regulariser, whether
it reads weak labels, its default K and β, its name in Table 1 — reads it
here: the configuration (:func:`welavae.config.make_run_config`), the sweep
plans and table keys (``wela_p3``), the report and the command line.
Adding a model kind is one entry in :data:`MODELS`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ModelKind", "MODELS", "LABELS", "SUPERVISIONS", "model_kind", "parse_key", "display_name"]

#: How a kind uses weak labels: never (unsupervised), required (WeLa-VAE) or
#: optional (its WeLa version when label dimensions are given).
LABELS = ("never", "required", "optional")
#: How its labels enter the objective: ``decoder`` (WeLa-VAE's label decoder p(y_j|z), weighed by γ), ``s2``
#: (S2's supervised regulariser R_s on the encoder means, weighed by γ_sup; no label decoder) or ``ccvae``
#: (CCVAE's classifier q(y_j|z_j) and conditional prior p(z_j|y_j); no label decoder).  docs/peers.md.
SUPERVISIONS = ("decoder", "s2", "ccvae")


@dataclass(frozen=True)
class ModelKind:
    """A model kind: ``name`` on the command line, ``display`` in tables, objective and defaults."""

    name: str
    display: str
    regulariser: str  # one of welavae.config.REGULARISERS
    labels: str  # one of LABELS
    latent_dim: int  # default K
    beta: float  # default β, paper convention (see welavae.config)
    supervision: str = "decoder"  # one of SUPERVISIONS

    def __post_init__(self):
        if self.labels not in LABELS:
            raise ValueError(f"ModelKind {self.name!r}: labels must be one of {LABELS}, got {self.labels!r}")
        if self.supervision not in SUPERVISIONS:
            raise ValueError(f"ModelKind {self.name!r}: supervision must be one of {SUPERVISIONS}, "
                             f"got {self.supervision!r}")


#: name → kind.  β-TCVAE and WeLa-VAE are the paper's (§4.3: K = 5 and K = 2, β = 40);
#: β-VAE (Higgins et al., β·KL) and DIP-VAE-II (Kumar et al.) are the variants §3 names.  The peers a user
#: with a few labels would pick instead (docs/peers.md): S2-β-TCVAE (Locatello et al. 2020: β-TCVAE's
#: objective, β as WeLa-VAE's, plus γ_sup·R_s) and CCVAE (Joy et al. 2021: its own bound, no β); both
#: K = 2 = m on Blobs as WeLa-VAE, and their encoders read images only.
MODELS: dict[str, ModelKind] = {
    k.name: k
    for k in (
        ModelKind("tcvae", "β-TCVAE", "tc", "never", latent_dim=5, beta=40.0),
        ModelKind("wela", "WeLa-VAE", "tc", "required", latent_dim=2, beta=40.0),
        ModelKind("betavae", "β-VAE", "kl", "optional", latent_dim=5, beta=4.0),
        ModelKind("dipvae", "DIP-VAE", "dip-ii", "optional", latent_dim=5, beta=0.0),
        ModelKind("s2tcvae", "S2-β-TCVAE", "tc", "required", latent_dim=2, beta=40.0, supervision="s2"),
        ModelKind("ccvae", "CCVAE", "ccvae", "required", latent_dim=2, beta=0.0, supervision="ccvae"),
    )
}

def model_kind(name: str) -> ModelKind:
    """The kind called ``name``; an unknown name lists the valid ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None


_KEY = re.compile(r"^(?P<kind>[a-z][a-z0-9]*)(?:_p(?P<p>\d+))?$")


def parse_key(key: str) -> tuple[ModelKind, int | None]:
    """A Table-1 key → (kind, p): ``'tcvae'`` → (β-TCVAE, None), ``'wela_p3'`` → (WeLa-VAE, 3),
    ``'s2tcvae_p2'`` → (S2-β-TCVAE, 2)."""
    m = _KEY.match(key)
    kind = MODELS.get(m.group("kind")) if m else None
    if kind is None:
        names = ", ".join(f"{n}_pP" if k.labels == "required" else n for n, k in MODELS.items())
        raise ValueError(f"unknown model {key!r}: use one of {names} (P = classes per label, e.g. wela_p2)")
    p = int(m.group("p")) if m.group("p") else None
    if kind.labels == "required" and p is None:
        raise ValueError(f"model {key!r} needs a label dimension, e.g. {kind.name}_p2")
    if kind.labels == "never" and p is not None:
        raise ValueError(f"model {key!r}: {kind.display} takes no labels")
    return kind, p


def display_name(kind: str, *, labelled: bool) -> str:
    """The name in Table 1: 'β-TCVAE', 'WeLa-VAE'; an optional-label kind trained with labels is 'WeLa-β-VAE'."""
    k = MODELS[kind]
    return f"WeLa-{k.display}" if labelled and k.labels == "optional" else k.display
