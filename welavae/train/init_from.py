"""Start a run from another run's weights: ``--init-from RUN_DIR`` (``TrainConfig.init_from``; issue 23).

At epoch 0, each seed s takes seed s's weights of a finished run with the same
architecture; the optimizer (Adam's moments and step count) starts fresh.  A
source without labels (β-TCVAE) may start a WeLa-VAE whose encoder is
label-free (q(z|x)): then every parameter the two networks share — the
encoder, the decoder's hidden layers and its image head — is copied
(:func:`shared_parameters`), and the label heads keep their own seeded
initialisation.  A resumed run continues from its checkpoint and never reads
the source again.  The paper's §5: labels that "become available
incrementally and for a short amount of time" (docs/conjectures.md).
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..checkpoint import load_checkpoint, model_from_checkpoint
from ..config import RunConfig
from ..run import Run
from .gamma import take_seeds

__all__ = ["check_init_source", "shared_parameters", "init_from_run"]


# ------------------------------------------------------------------------------ init-from
def _architecture_difference(source: RunConfig, target: RunConfig) -> str | None:
    """What keeps ``source``'s weights from starting ``target`` (one phrase), or None."""
    s, t = source.model, target.model
    for name in ("encoder", "hidden", "latent_dim", "image_shape"):
        if getattr(s, name) != getattr(t, name):
            return f"{name} {getattr(s, name)} differs from this run's {getattr(t, name)}"
    if s.has_labels:
        if not t.has_labels:
            return f"it has label heads {s.label_dims} and this run has none"
        for name in ("label_dims", "encoder_input", "label_head"):
            if getattr(s, name) != getattr(t, name):
                return f"{name} {getattr(s, name)} differs from this run's {getattr(t, name)}"
    elif t.labels_in_encoder:
        return ("it has no labels, so its encoder cannot start this run's q(z|x, y); "
                "use a label-free encoder (--encoder-input image)")
    return None

def check_init_source(config: RunConfig, seeds) -> Path:
    """The source run directory of ``config.train.init_from``, checked: finished, same architecture, every seed.

    Raises FileNotFoundError or ValueError with one sentence; reads only
    ``config.json`` and ``status.json``.
    """
    path = Path(config.train.init_from)
    if not path.is_dir():
        raise FileNotFoundError(f"--init-from {path}: no such run directory")
    src = Run(path)
    if not src.finished() or not src.checkpoint.exists():
        raise ValueError(f"--init-from {path}: not a finished run (status.json, mu.npy or its checkpoint is missing)")
    try:
        source = src.config
        done = int(src.status["epochs"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"--init-from {path}: unreadable config.json or status.json ({e})") from None
    if done != source.train.epochs:
        raise ValueError(f"--init-from {path}: not a finished run ({done} of {source.train.epochs} epochs)")
    why = _architecture_difference(source, config)
    if why is not None:
        raise ValueError(f"--init-from {path}: its model has another architecture: {why}")
    missing = [int(s) for s in seeds if int(s) not in src.seeds]
    if missing:
        raise ValueError(f"--init-from {path}: seeds {missing} are not in the source run (its seeds: {src.seeds})")
    return path

def shared_parameters(source, target) -> list[str]:
    """Names of the parameters ``target`` takes from ``source`` (two EnsembleVAE): those both have, same shape per seed.

    Same architecture: every parameter.  A source without labels and a
    target with a label-free encoder: all but the target's label heads
    (``decoder.<last>.weight1/bias1`` of the dense head, ``diagonal.*``).
    """
    src = dict(source.named_parameters())
    names = []
    for name, p in target.named_parameters():
        q = src.get(name)
        if q is None:
            continue
        if _per_seed_shape(target, p) != _per_seed_shape(source, q):
            raise ValueError(f"parameter {name}: shape {tuple(q.shape)} in the source, {tuple(p.shape)} here")
        names.append(name)
    return names

def _per_seed_shape(model, p: torch.Tensor) -> tuple:
    dim = _seed_dims(model)[id(p)]
    return tuple(model.seed_slice(p, dim, 0).shape)

def _seed_dims(model) -> dict:
    return {id(p): dim for p, dim in model.parameter_seed_dims()}

@torch.no_grad()
def init_from_run(model, config: RunConfig, *, gamma=None) -> list[str]:
    """Copy seed s's weights of ``config.train.init_from`` into seed s of ``model`` (an EnsembleVAE); returns the
    names copied.

    Only the weights: the caller's optimizer is fresh.  Parameters the source
    lacks (label heads, see :func:`shared_parameters`) keep their initialisation.
    ``gamma``: this run's γ controller (``--gamma auto``); a source that found
    its γ the same way hands each seed its γ (the moving average of the label
    fit restarts with this run's first batch).  The source was checked by the
    run's preflight (:func:`check_init_source`).
    """
    state = load_checkpoint(Run(config.train.init_from).checkpoint)
    source, _ = model_from_checkpoint(state)
    if gamma is not None and "gamma" in state:
        carried = take_seeds(state["gamma"], [source.seeds.index(s) for s in model.seeds])
        carried["seen"] = torch.zeros_like(carried["seen"])
        gamma.load_state_dict(carried)
    names = shared_parameters(source, model)
    src_params, src_dims = dict(source.named_parameters()), _seed_dims(source)
    dims = _seed_dims(model)
    for name, p in model.named_parameters():
        if name not in names:
            continue
        q = src_params[name]
        for i, s in enumerate(model.seeds):
            j = source.seeds.index(s)
            model.seed_slice(p, dims[id(p)], i).copy_(source.seed_slice(q, src_dims[id(q)], j))
    return names
