"""Sweep plans as plain data: what to train, before any data set is read.

A plan is a list of :class:`ModelSpec` — a model's table key, its kind, its
data set (a :class:`~welavae.config.DataConfig`), its hyperparameters and the
seeds to train.  :func:`welavae.experiments.sweep.run_plan` resolves each
(:func:`welavae.resolve.resolve`: the data read first, the config fitted to
them) into a :class:`RunSpec` — the key, the resolved
:class:`~welavae.config.RunConfig` and the seeds — which is what the jobs, the
results store and ``plan.json`` hold.

The presets themselves are :mod:`welavae.experiments.presets`; this module
holds what the Blobs presets share: the quick preset's data and network
(:data:`QUICK`), Table 1's models (:data:`PAPER_MODELS`) and
:func:`blobs_plan`, which turns a settings dict into a plan.  Keys (``tcvae``,
``wela_p3``) and what they mean come from the registry :mod:`welavae.models`;
a variant key (``wela_p2-image-f0.01``) names its base key and settings in the
preset's ``variants``.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from ..config import PAPER_GAMMA, DataConfig, RunConfig, TrainConfig
from ..models import parse_key

__all__ = ["ModelSpec", "RunSpec", "Preset", "blobs_plan", "blobs_spec", "plan_sizes", "PAPER_MODELS", "QUICK",
           "QUICK_EPOCHS", "COMMON_OPTIONS", "TABLE"]

#: Table 1's rows: β-TCVAE, then WeLa-VAE for every p the paper gives γ for (keys as
#: :func:`welavae.models.parse_key` reads them).
PAPER_MODELS = ("tcvae",) + tuple(f"wela_p{p}" for p in sorted(PAPER_GAMMA))
#: Quick preset epochs: on the N=4,096 set WeLa-VAE p=2's best polar MSE falls
#: below half of β-TCVAE's well within this budget (measured in docs/results.md).
QUICK_EPOCHS = 60
#: The quick preset's data and network, shared by the Blobs presets built on it: the authors' own set
#: (N = 4,096, one blob per position, their blurred-disk shape), MLP 64-32, Adam 1e-3, batch 64.
QUICK = dict(variants=1, shape="disk", hidden=(64, 32), batch_size=64, lr=1e-3, epochs=QUICK_EPOCHS,
             checkpoint_every=10, tc_estimator="mss")
#: The table preset's settings: quick's data and network with the paper's batch of 256 and 150 epochs, 16 seeds
#: (batch 256 is what lets β-TCVAE find the paper's Cartesian code on this set: docs/results.md).
TABLE = dict(QUICK, batch_size=256, epochs=150, seeds=16)


@dataclass(frozen=True)
class ModelSpec:
    """One model of a plan, before its data are read: ``model`` (the table key), ``kind`` (of
    :data:`welavae.models.MODELS`), ``data``, ``seeds``, Blobs' ``label_dim`` p, and ``hyper``
    (keywords of :func:`welavae.config.make_run_config`: ``train``, ``hidden``, ``gamma`` …)."""

    model: str
    kind: str
    data: DataConfig
    seeds: tuple[int, ...]
    label_dim: int | None = None
    hyper: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RunSpec:
    """One model of a resolved plan: its table key, resolved config and seeds."""

    model: str
    config: RunConfig
    seeds: tuple[int, ...]

    def to_dict(self) -> dict:
        return {"model": self.model, "config": self.config.to_dict(), "seeds": list(self.seeds)}

    @classmethod
    def from_dict(cls, d: dict) -> RunSpec:
        return cls(model=d["model"], config=RunConfig.from_dict(d["config"]), seeds=tuple(d["seeds"]))


#: The options every preset takes (``welavae reproduce`` flags; the plan's and
#: :func:`welavae.experiments.sweep.run_plan`'s keywords).
COMMON_OPTIONS = ("seeds", "epochs", "models", "tc_estimator", "seeds_per_task", "backend", "address", "device",
                  "data_dir", "progress", "standard", "tf32", "gpus_per_task", "cpus_per_task", "seed_layout")


@dataclass(frozen=True)
class Preset:
    """A preset of ``welavae reproduce`` (:mod:`welavae.experiments.presets`): ``run(out, **options) -> rows``
    trains (or resumes) it into a results folder; ``report`` is the file of that folder the command line
    prints; ``standard`` the disentanglement_lib metrics it computes by default; ``options`` the keywords it
    takes beyond :data:`COMMON_OPTIONS`; ``settings`` its plan's settings, as data."""

    name: str
    help: str
    run: Callable[..., list[dict]]
    report: str = "table.md"
    standard: str = "best"
    options: tuple[str, ...] = ()
    settings: dict = field(default_factory=dict)

    def __call__(self, out="results", **options) -> list[dict]:
        """Run (or resume) the preset into ``out``; options left None take the preset's defaults."""
        options = {k: v for k, v in options.items() if v is not None}
        unknown = sorted(k for k in options if k not in COMMON_OPTIONS + self.options)
        if unknown:
            flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
            raise ValueError(f"{flags} do{'es' if len(unknown) == 1 else ''} not apply to the {self.name} preset")
        options.setdefault("standard", self.standard)
        return self.run(out, **options)


def plan_sizes(settings: dict, *, seeds: int | None, epochs: int | None) -> tuple[int, int]:
    """(seeds, epochs): the preset's ``settings``, or the caller's, checked."""
    n_seeds = settings["seeds"] if seeds is None else int(seeds)
    n_epochs = settings["epochs"] if epochs is None else int(epochs)
    if n_seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {n_seeds}")
    if n_epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {n_epochs}")
    return n_seeds, n_epochs


def blobs_spec(key: str, *, data: DataConfig, train: TrainConfig, hidden, seeds, tc_estimator: str = "mss",
               variants: dict | None = None) -> ModelSpec:
    """A key → its spec: 'tcvae' → β-TCVAE, 'wela_p3' → WeLa-VAE with p = 3 (keys read by
    :func:`welavae.models.parse_key`); a key of ``variants`` → its base key's spec with the variant's
    settings (``label_fraction`` is the data's, the rest the model's)."""
    base, settings = (variants or {}).get(key, (key, {}))
    settings = dict(settings)
    if "label_fraction" in settings:
        data = dataclasses.replace(data, label_fraction=settings.pop("label_fraction"))
    kind, p = parse_key(base)
    return ModelSpec(key, kind.name, data, tuple(seeds), label_dim=p,
                     hyper=dict(hidden=tuple(hidden), train=train, tc_estimator=tc_estimator, name=key, **settings))


def blobs_plan(settings: dict, *, seeds: int | None = None, epochs: int | None = None, models=None,
               tc_estimator: str | None = None) -> list[ModelSpec]:
    """The plan of a Blobs preset's ``settings`` (variants, shape, hidden, batch_size, lr, epochs, seeds,
    models, checkpoint_every, tc_estimator, optional checkpoint_minutes and variants).  ``seeds`` = how
    many (0…seeds−1); ``models`` = table keys; ``tc_estimator`` = ``"mss"`` or ``"mws"`` instead."""
    n_seeds, n_epochs = plan_sizes(settings, seeds=seeds, epochs=epochs)
    keys = tuple(settings["models"] if not models else models)
    if len(set(keys)) != len(keys):
        raise ValueError(f"models listed twice: {keys}")
    data = DataConfig(variants=settings["variants"], shape=settings["shape"])
    train = TrainConfig(epochs=n_epochs, batch_size=settings["batch_size"], lr=settings["lr"],
                        checkpoint_every=min(settings["checkpoint_every"], n_epochs),
                        checkpoint_minutes=settings.get("checkpoint_minutes"))  # cadence only: not in the hash
    estimator = tc_estimator or settings["tc_estimator"]
    return [blobs_spec(k, data=data, train=train, hidden=settings["hidden"], seeds=range(n_seeds),
                       tc_estimator=estimator, variants=settings.get("variants_of"))
            for k in keys]
