"""Sweep plans for Table 1 (paper §4.3–4.4) as plain data.

A plan is a list of :class:`RunSpec` — one model configuration and the
seeds to train for it.  Each spec's seeds train together in the multi-seed
trainer.  Two presets:

``paper``  the paper's settings: N = 102,400 (25 blobs per position), MLP
           1200-1200, Adam 1e-4, batch 256, 150 epochs, 50 seeds; β-TCVAE
           (K=5, β=40) and WeLa-VAE (K=2, β=40, γ by the rule) for p = 2…8.
``quick``  what fits a 2-core CPU in about ten minutes and still shows the
           paper's finding: the authors' own set (N = 4,096, one blob per
           position, their blurred-disk shape), MLP 64-32, Adam 1e-3,
           batch 64, 8 seeds, β-TCVAE and WeLa-VAE p=2 (see QUICK_EPOCHS).
           The larger, smoother disk blobs let a small MLP learn position
           in a few dozen epochs; with the σ = 2–4 Gaussians WeLa p=2 needs
           about twice as many epochs for the same polar MSE.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..config import DataConfig, RunConfig, TrainConfig, make_run_config

__all__ = ["RunSpec", "PRESETS", "QUICK_EPOCHS", "make_plan", "model_config", "PAPER_MODELS"]

PAPER_MODELS = ("tcvae",) + tuple(f"wela_p{p}" for p in range(2, 9))
#: Quick preset epochs: on the N=4,096 set WeLa-VAE p=2's best polar MSE falls
#: below half of β-TCVAE's well within this budget (measured in the README).
QUICK_EPOCHS = 60

PRESETS = {
    "paper": dict(variants=25, shape="gaussian", hidden=(1200, 1200), batch_size=256, lr=1e-4, epochs=150, seeds=50,
                  models=PAPER_MODELS, checkpoint_every=5),
    "quick": dict(variants=1, shape="disk", hidden=(64, 32), batch_size=64, lr=1e-3, epochs=QUICK_EPOCHS, seeds=8,
                  models=("tcvae", "wela_p2"), checkpoint_every=10),
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


_KEY = re.compile(r"^(tcvae|betavae|dipvae|wela)(?:_p(\d+))?$")


def model_config(key: str, *, data: DataConfig, train: TrainConfig, hidden) -> RunConfig:
    """'tcvae' → β-TCVAE; 'wela_p3' → WeLa-VAE with p=3 (also 'betavae', 'dipvae', optionally '_pN')."""
    m = _KEY.match(key)
    if not m:
        raise ValueError(f"unknown model {key!r}: use tcvae, wela_p2 … wela_p8 (or betavae, dipvae[_pN])")
    name, p = m.group(1), m.group(2)
    if name == "wela" and p is None:
        raise ValueError(f"model {key!r} needs a label dimension, e.g. wela_p2")
    return make_run_config(name, label_dim=int(p) if p else None, hidden=hidden, data=data, train=train, name=key)


def make_plan(preset: str = "quick", *, seeds: int | None = None, epochs: int | None = None,
              models=None) -> list[RunSpec]:
    """The sweep as data.  ``seeds`` = how many (0…seeds−1); ``models`` = table keys."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
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
                        checkpoint_every=min(p["checkpoint_every"], n_epochs))
    return [RunSpec(k, model_config(k, data=data, train=train, hidden=p["hidden"]), tuple(range(n_seeds)))
            for k in keys]
