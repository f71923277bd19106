"""Sweep plans for Table 1 (paper §4.3–4.4) as plain data.

A plan is a list of :class:`RunSpec` — one model configuration and the
seeds to train for it.  Model keys (``tcvae``, ``wela_p3``) and what they
mean come from the registry :mod:`welavae.models`.  Presets:

``paper``  the paper's settings: N = 102,400 (25 blobs per position), MLP
           1200-1200, Adam 1e-4, batch 256, 150 epochs, 50 seeds; β-TCVAE
           (K=5, β=40) and WeLa-VAE (K=2, β=40, γ by the rule) for p = 2…8;
           total correlation by minibatch weighted sampling, "the biased
           Monte-Carlo estimator proposed in β-TCVAE" (§4.3).
``quick``  what fits a 2-core CPU in minutes and still shows the
           paper's finding: the authors' own set (N = 4,096, one blob per
           position, their blurred-disk shape), MLP 64-32, Adam 1e-3,
           batch 64, 8 seeds, β-TCVAE and WeLa-VAE p=2 (see QUICK_EPOCHS).
           The larger, smoother disk blobs let a small MLP learn position
           in a few dozen epochs; with the σ = 2–4 Gaussians WeLa p=2 needs
           about twice as many epochs for the same polar MSE.
``table``  all eight models of Table 1 on the quick preset's data and
           network, the paper's batch of 256 and 150 epochs, 16 seeds.
           Batch 256 is what lets β-TCVAE find the paper's Cartesian code
           on this set, and WeLa-VAE p = 2 needs the 150 epochs there.

Each preset's measured wall time, and the batch and epoch measurements behind
these choices, are in docs/performance.md and docs/results.md (with their
commands); a timing quoted here would be true on one machine on one day.

``open-questions``  the paper's §5 questions on the quick preset's data and
           network (8 seeds, WeLa-VAE p = 2): a label-free encoder q(z|x),
           fractions 1, 0.1, 0.01, 0.001 of the labels for each encoder
           input, K = 3, 4 latents with the dense or the diagonal label
           head, and β-TCVAE with K = 2 as the no-label control
           (:data:`VARIANTS`).

``conjectures``  the paper's last two §5 claims (issue 23), on the quick preset's
           data and network, 8 seeds: the downstream tasks of β-TCVAE,
           WeLa-VAE p = 2 with all and 1 % of the labels and with the
           label-free encoder (``models``), and labels that arrive late or
           leave early (:data:`CONJECTURES`).  Run by
           :func:`welavae.experiments.conjectures.run` (two sweeps: the
           fine-tuned model starts from a trained one).

``sprites``  the first result beyond Blobs (issue 22): β-TCVAE against WeLa-VAE
           with polar labels of the position on a subset of the dSprites twin
           (:data:`SPRITES`; :mod:`welavae.experiments.sprites`).

``quick``, ``table``, ``open-questions`` and ``conjectures`` estimate the total correlation by
minibatch stratified sampling (see :mod:`welavae.config` for why).

Keys: a Table-1 key (``tcvae``, ``wela_p3``) or a variant of one
(``wela_p2-image-f0.01``), whose settings :data:`VARIANTS` lists.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..config import PAPER_GAMMA, DataConfig, RunConfig, TrainConfig, make_run_config
from ..models import parse_key

__all__ = ["RunSpec", "PRESETS", "VARIANTS", "CONJECTURES", "SPRITES", "QUICK_EPOCHS", "make_plan", "model_config", "PAPER_MODELS"]

#: Table 1's rows: β-TCVAE, then WeLa-VAE for every p the paper gives γ for (keys as
#: :func:`welavae.models.parse_key` reads them).
PAPER_MODELS = ("tcvae",) + tuple(f"wela_p{p}" for p in sorted(PAPER_GAMMA))
#: Quick preset epochs: on the N=4,096 set WeLa-VAE p=2's best polar MSE falls
#: below half of β-TCVAE's well within this budget (measured in the README).
QUICK_EPOCHS = 60

_QUICK = dict(variants=1, shape="disk", hidden=(64, 32), batch_size=64, lr=1e-3, epochs=QUICK_EPOCHS,
              checkpoint_every=10, tc_estimator="mss")
#: Variant keys → (Table-1 key, settings): the §5 questions.  "image": the label-free encoder.
VARIANTS = {
    **{f"wela_p2{'-image' if enc == 'image' else ''}{'' if f == 1 else f'-f{f:g}'}":
       ("wela_p2", dict(encoder_input=enc, label_fraction=f))
       for enc in ("image+labels", "image") for f in (1.0, 0.1, 0.01, 0.001)},
    **{f"wela_p2-k{k}-{head}": ("wela_p2", dict(latent_dim=k, label_head=head))
       for k in (3, 4) for head in ("dense", "diagonal")},
    # The control for the label fractions: the same network and K = 2 with no labels at all.
    "tcvae-k2": ("tcvae", dict(latent_dim=2)),
}

#: The label-window part of the ``conjectures`` preset: label-free WeLa-VAE p = 2 whose labels (of
#: 1 − ``held_out`` of the samples; the rest held out for the accuracy) are observed in the epochs
#: round(a·E) … round(b·E) − 1 of each ``windows`` entry (a, b), and β-TCVAE with K = 2 (the same
#: network) trained E epochs, then fine-tuned with labels for round(``finetune``·E) more from its
#: weights; every ``track_every``-th epoch's polar MSE recorded.
CONJECTURES = dict(
    windows={"first10": (0.0, 0.1), "first25": (0.0, 0.25), "first50": (0.0, 0.5), "last25": (0.75, 1.0),
             "always": (0.0, 1.0)},
    held_out=0.1, finetune=0.25, track_every=1, pca_dims=(2, 5),
)

#: The ``sprites`` preset's models (issue 22; :mod:`welavae.experiments.sprites`): key → (model kind,
#: p or None, settings).  β-TCVAE with K = 6; WeLa-VAE with angle/distance labels of (posX, posY)
#: for p = 2, 3 at K = 2 and 6, and for p = 3 at K = 6 the diagonal label head and the label-free
#: encoder (the two variants for p = 2 as well would not fit the hour).
SPRITES = {
    "tcvae-k6": ("tcvae", None, dict(latent_dim=6)),
    **{f"wela_p{p}-k{k}": ("wela", p, dict(latent_dim=k)) for p in (2, 3) for k in (2, 6)},
    "wela_p3-k6-diagonal": ("wela", 3, dict(latent_dim=6, label_head="diagonal")),
    "wela_p3-k6-image": ("wela", 3, dict(latent_dim=6, encoder_input="image")),
}

PRESETS = {
    "paper": dict(variants=25, shape="gaussian", hidden=(1200, 1200), batch_size=256, lr=1e-4, epochs=150, seeds=50,
                  models=PAPER_MODELS, checkpoint_every=5, tc_estimator="mws",
                  checkpoint_minutes=10),  # a 50-seed checkpoint is ~7.6 GB: by wall time, not every 5 epochs
    "quick": dict(_QUICK, seeds=8, models=PAPER_MODELS[:2]),
    "table": dict(_QUICK, batch_size=256, epochs=150, seeds=16, models=PAPER_MODELS),
    "open-questions": dict(_QUICK, seeds=8, models=tuple(VARIANTS), standard="none"),
    "conjectures": dict(_QUICK, seeds=8, models=("tcvae", "wela_p2", "wela_p2-f0.01", "wela_p2-image"),
                        standard="none", conjectures=CONJECTURES),
    # A subset of the dSprites twin; γ = gamma_fraction × the paper's rule (docs/results.md: a tenth on
    # small networks).  Sized so that the preset fits an hour on 2 cores (docs/benchmarks.md).
    "sprites": dict(subset=20_000, hidden=(128, 64), batch_size=64, lr=1e-3, epochs=25, checkpoint_every=5,
                    seeds=8, models=tuple(SPRITES), tc_estimator="mss", standard="none", gamma_fraction=0.1),
}


@dataclass(frozen=True)
class RunSpec:
    """One model of the sweep: its table key, resolved config and seeds."""

    model: str
    config: RunConfig
    seeds: tuple[int, ...]

    def to_dict(self) -> dict:
        return {"model": self.model, "config": self.config.to_dict(), "seeds": list(self.seeds)}

    @classmethod
    def from_dict(cls, d: dict) -> "RunSpec":
        return cls(model=d["model"], config=RunConfig.from_dict(d["config"]), seeds=tuple(d["seeds"]))


def model_config(key: str, *, data: DataConfig, train: TrainConfig, hidden, tc_estimator: str = "mss") -> RunConfig:
    """A key → its config: 'tcvae' → β-TCVAE, 'wela_p3' → WeLa-VAE with p = 3 (keys read by
    :func:`welavae.models.parse_key`); a key of :data:`VARIANTS` → its base key's config with the variant's settings."""
    base, settings = VARIANTS.get(key, (key, {}))
    settings = dict(settings)
    if "label_fraction" in settings:
        data = dataclasses.replace(data, label_fraction=settings.pop("label_fraction"))
    kind, p = parse_key(base)
    return make_run_config(kind.name, label_dim=p, hidden=hidden, data=data, train=train, tc_estimator=tc_estimator,
                           name=key, **settings)


def make_plan(preset: str = "quick", *, seeds: int | None = None, epochs: int | None = None,
              models=None, tc_estimator: str | None = None) -> list[RunSpec]:
    """The sweep as data.  ``seeds`` = how many (0…seeds−1); ``models`` = table keys;
    ``tc_estimator`` = ``"mss"`` or ``"mws"`` instead of the preset's."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    if preset == "sprites":  # benchmark data, not Blobs: its own plan (the twin in the default data directory)
        from .sprites import sprites_plan, twin_path

        return sprites_plan(twin_path(), seeds=seeds, epochs=epochs, models=models, tc_estimator=tc_estimator)
    p = PRESETS[preset]
    n_seeds = p["seeds"] if seeds is None else int(seeds)
    if n_seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {n_seeds}")
    n_epochs = p["epochs"] if epochs is None else int(epochs)
    if n_epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {n_epochs}")
    keys = tuple(p["models"] if not models else models)
    if len(set(keys)) != len(keys):
        raise ValueError(f"models listed twice: {keys}")
    data = DataConfig(variants=p["variants"], shape=p["shape"])
    train = TrainConfig(epochs=n_epochs, batch_size=p["batch_size"], lr=p["lr"],
                        checkpoint_every=min(p["checkpoint_every"], n_epochs),
                        checkpoint_minutes=p.get("checkpoint_minutes"))  # cadence only: not in the config hash
    estimator = tc_estimator or p["tc_estimator"]
    return [RunSpec(k, model_config(k, data=data, train=train, hidden=p["hidden"], tc_estimator=estimator),
                    tuple(range(n_seeds)))
            for k in keys]
