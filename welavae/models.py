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

__all__ = ["ModelKind", "MODELS", "LABELS", "model_kind", "parse_key", "display_name"]

#: How a kind uses weak labels: never (unsupervised), required (WeLa-VAE) or
#: optional (its WeLa version when label dimensions are given).
LABELS = ("never", "required", "optional")


@dataclass(frozen=True)
class ModelKind:
    """A model kind: ``name`` on the command line, ``display`` in tables, objective and defaults."""

    name: str
    display: str
    regulariser: str  # one of welavae.config.REGULARISERS
    labels: str  # one of LABELS
    latent_dim: int  # default K
    beta: float  # default β, paper convention (see welavae.config)

    def __post_init__(self):
        if self.labels not in LABELS:
            raise ValueError(f"ModelKind {self.name!r}: labels must be one of {LABELS}, got {self.labels!r}")


#: name → kind.  β-TCVAE and WeLa-VAE are the paper's (§4.3: K = 5 and K = 2, β = 40);
#: β-VAE (Higgins et al., β·KL) and DIP-VAE-II (Kumar et al.) are the variants §3 names.
MODELS: dict[str, ModelKind] = {
    k.name: k
    for k in (
        ModelKind("tcvae", "β-TCVAE", "tc", "never", latent_dim=5, beta=40.0),
        ModelKind("wela", "WeLa-VAE", "tc", "required", latent_dim=2, beta=40.0),
        ModelKind("betavae", "β-VAE", "kl", "optional", latent_dim=5, beta=4.0),
        ModelKind("dipvae", "DIP-VAE", "dip-ii", "optional", latent_dim=5, beta=0.0),
    )
}

def model_kind(name: str) -> ModelKind:
    """The kind called ``name``; an unknown name lists the valid ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None


_KEY = re.compile(r"^(?P<kind>[a-z]+)(?:_p(?P<p>\d+))?$")


def parse_key(key: str) -> tuple[ModelKind, int | None]:
    """A Table-1 key → (kind, p): ``'tcvae'`` → (β-TCVAE, None), ``'wela_p3'`` → (WeLa-VAE, 3)."""
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
