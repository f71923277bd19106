"""The presets of ``welavae reproduce``: one registry, name → :class:`Preset`.

A preset is a plan (:mod:`welavae.experiments.plan`) with its defaults, the
options it accepts beyond the common ones, the report it writes and how it
runs: most run their plan through :func:`welavae.experiments.sweep.run_plan`
and report ``table.md``; a preset that needs more than a plan (two sweeps, its
own tables) lives in its own module and registers its :class:`Preset` here
(:mod:`~welavae.experiments.conjectures`, :mod:`~welavae.experiments.sprites`,
:mod:`~welavae.experiments.peers`).
The sweep engine knows no preset; the command line looks them up here.
Adding a preset is one entry in :data:`PRESETS` (and, for one with its own
report, its module).

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
``open-questions``  the paper's §5 questions on the quick preset's data and
           network (8 seeds, WeLa-VAE p = 2): a label-free encoder q(z|x),
           fractions 1, 0.1, 0.01, 0.001 of the labels for each encoder
           input, K = 3, 4 latents with the dense or the diagonal label
           head, and β-TCVAE with K = 2 as the no-label control
           (:data:`VARIANTS`).
``conjectures``, ``sprites``, ``gamma``, ``peers``  see their modules.

``quick``, ``table``, ``open-questions`` and ``conjectures`` estimate the total correlation by
minibatch stratified sampling (see :mod:`welavae.config` for why).  Each preset's measured wall
time, and the batch and epoch measurements behind these choices, are in docs/performance.md and
docs/results.md (with their commands).
"""
from __future__ import annotations

from . import conjectures, gamma, peers, sprites
from .plan import PAPER_MODELS, QUICK, TABLE, Preset, blobs_plan
from .sweep import run_plan

__all__ = ["PRESETS", "VARIANTS", "preset", "reproduce"]

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

def _blobs(name: str, help: str, settings: dict, standard: str = "best") -> Preset:
    """A preset that is a Blobs plan (:func:`welavae.experiments.plan.blobs_plan` of ``settings``) and the
    sweep's tables."""
    def run(out, *, seeds=None, epochs=None, models=None, tc_estimator=None, **sweep):
        plan = blobs_plan(settings, seeds=seeds, epochs=epochs, models=models, tc_estimator=tc_estimator)
        return run_plan(plan, out=out, preset=name, **sweep)

    return Preset(name, help, run=run, standard=standard, settings=settings)


_PAPER = dict(variants=25, shape="gaussian", hidden=(1200, 1200), batch_size=256, lr=1e-4, epochs=150, seeds=50,
              models=PAPER_MODELS, checkpoint_every=5, tc_estimator="mws",
              checkpoint_minutes=10)  # a 50-seed checkpoint is ~7.6 GB: by wall time, not every 5 epochs

#: name → preset.
PRESETS: dict[str, Preset] = {p.name: p for p in (
    _blobs("quick", "2-core CPU in minutes (default): β-TCVAE and WeLa-VAE p=2",
           dict(QUICK, seeds=8, models=PAPER_MODELS[:2])),
    _blobs("table", "all eight models of Table 1 on quick's data and network",
           dict(TABLE, models=PAPER_MODELS)),
    _blobs("paper", "the paper's settings (a GPU or a Ray cluster)", _PAPER),
    _blobs("open-questions", "the paper's §5 questions (label-free encoder, label fractions, K > m)",
           dict(QUICK, seeds=8, models=tuple(VARIANTS), variants_of=VARIANTS), standard="none"),
    conjectures.PRESET,
    sprites.PRESET,
    gamma.PRESET,
    peers.PRESET,
)}


def preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name lists the valid ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def reproduce(name: str = "quick", *, out="results", **options) -> list[dict]:
    """``welavae reproduce --preset NAME``: run (or resume) the preset into ``out``; returns the table rows."""
    return preset(name)(out, **options)

