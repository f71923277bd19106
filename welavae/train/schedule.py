"""Training schedules for the paper's §5 conjecture on labels that come and go (issue 23).

§5: a WeLa-VAE whose encoder reads no labels "could be trained in a dynamic
setting where the labels become available incrementally and for a short
amount of time".  Three pieces, each set in :class:`welavae.config.TrainConfig`
and so recorded in ``config.json`` and kept on resume:

* **Label window** (``label_epochs = (A, B)``): the weak labels are observed
  in epochs A … B−1 only.  In every other epoch each label is treated as
  missing (−1), which adds exactly 0 to the loss and to every gradient
  (:func:`welavae.objectives.likelihoods.categorical_nll`), as partial
  labels do.  The window is a function of the epoch counter, so a resumed
  run sees the same window.  With the paper's encoder q(z|x, y) a missing
  label is an all-zero one-hot block: outside the window the encoder then
  sees "no label" for every sample, a different input from the one it was
  trained on inside the window.
* **Start from another run** (``init_from = RUN_DIR``): at epoch 0, each
  seed s takes seed s's weights of a finished run with the same
  architecture; the optimizer (Adam's moments and step count) starts fresh.
  A source without labels (β-TCVAE) may start a WeLa-VAE whose encoder is
  label-free (q(z|x)): then every parameter the two networks share — the
  encoder, the decoder's hidden layers and its image head — is copied
  (:func:`shared_parameters`), and the label heads keep their own seeded
  initialisation.  A resumed run continues from its checkpoint and never
  reads the source again.
* **Tracking** (``track_every = E``): for data with ground-truth (c1, c2)
  (Blobs), :class:`Tracker` writes the polar and Cartesian MSE (paper eqs.
  5–7, :mod:`welavae.metrics.coordinates`) of every seed after every E-th
  epoch, at the end of the label window and after the last epoch, into
  ``tracking.csv``, from the encoder means of a fixed, seeded subset of
  :data:`TRACK_SAMPLES` samples.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
import torch

from ..config import RunConfig, TrainConfig
from ..io import write_text
from ..metrics.coordinates import cartesian_mse, polar_mse

__all__ = ["labels_observed", "window_labels", "tracked", "check_init_source", "shared_parameters",
           "init_from_run", "Tracker", "read_tracking", "TRACKING", "TRACK_SAMPLES"]

TRACKING = "tracking.csv"
#: Samples encoded per tracked epoch: a fixed subset, so the curve over epochs compares like with like.
TRACK_SAMPLES = 1024
TRACK_COLUMNS = ("epoch", "seed", "polar_mse", "cartesian_mse")


# ----------------------------------------------------------------------------- label window
def labels_observed(train: TrainConfig, epoch: int) -> bool:
    """Whether epoch ``epoch`` (0-based) trains with the labels: always, or A <= epoch < B."""
    if train.label_epochs is None:
        return True
    a, b = train.label_epochs
    return a <= epoch < b


def window_labels(y: torch.Tensor | None, train: TrainConfig, epoch: int) -> torch.Tensor | None:
    """The labels epoch ``epoch`` trains with: y (N, m) inside the window, else all −1 (missing)."""
    if y is None or labels_observed(train, epoch):
        return y
    return torch.full_like(y, -1)


def tracked(train: TrainConfig, epochs_done: int) -> bool:
    """Whether the state after ``epochs_done`` epochs is tracked: every E-th, the window's end, the last."""
    e = train.track_every
    if e <= 0 or epochs_done < 1:
        return False
    window_end = train.label_epochs is not None and epochs_done == train.label_epochs[1]
    return epochs_done % e == 0 or epochs_done == train.epochs or window_end


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
    from ..run import Run  # the run directory's owner (imports this package's trainer lazily)

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
def init_from_run(model, config: RunConfig) -> list[str]:
    """Copy seed s's weights of ``config.train.init_from`` into seed s of ``model`` (an EnsembleVAE); returns the names copied.

    Only the weights: the caller's optimizer is fresh.  Parameters the source
    lacks (label heads, see :func:`shared_parameters`) keep their initialisation.
    """
    from ..train.checkpoint import load_checkpoint, model_from_checkpoint

    path = check_init_source(config, model.seeds)
    source, _ = model_from_checkpoint(load_checkpoint(path / "checkpoints" / "last.pt"))
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


# -------------------------------------------------------------------------------- tracking
def read_tracking(path) -> list[dict]:
    """The rows of a run's ``tracking.csv`` (:data:`TRACK_COLUMNS`): epoch and seed as ints, the MSEs as
    floats (NaN for a diverged seed's empty cell)."""
    with open(path, newline="") as f:
        return [{"epoch": int(r["epoch"]), "seed": int(r["seed"]),
                 "polar_mse": float(r["polar_mse"]) if r["polar_mse"] else math.nan,
                 "cartesian_mse": float(r["cartesian_mse"]) if r["cartesian_mse"] else math.nan}
                for r in csv.DictReader(f)]


class Tracker:
    """Polar and Cartesian MSE of every seed at the tracked epochs (:func:`tracked`), into ``tracking.csv``.

    Called as ``tracker(epochs_done, model)`` after every epoch (the trainer's
    ``track``).  images (N, H, W) or (N, D), factors (N, 2) = (c1, c2), labels
    (N, m) or None: what the run trains with (an encoder q(z|x, y) reads them).
    The subset: ``min(samples, N)`` indices drawn without replacement by
    ``numpy.random.default_rng(subset_seed)``.  Rows already in the file for
    earlier epochs are kept, so a resumed run extends its curve; rows for the
    epochs being (re)trained are replaced.  A diverged seed's row is empty.
    """

    def __init__(self, path, config: RunConfig, images, factors, labels=None, *,
                 samples: int = TRACK_SAMPLES, subset_seed: int = 0):
        if factors is None:
            raise ValueError(f"--track-every needs the ground-truth factors (c1, c2) of Blobs; "
                             f"run {config.name!r} has none")
        factors = np.asarray(factors, dtype=np.float64)
        if factors.ndim != 2 or factors.shape[1] != 2 or len(factors) != len(images):
            raise ValueError(f"--track-every needs factors (N={len(images)}, 2) = (c1, c2), got {factors.shape}")
        if config.model.latent_dim < 2:
            raise ValueError("--track-every needs K >= 2 latents (the coordinate MSE pairs two channels)")
        self.path, self.train = Path(path), config.train
        n = len(images)
        idx = np.sort(np.random.default_rng(subset_seed).choice(n, size=min(int(samples), n), replace=False))
        self.images = np.asarray(images)[idx]  # as stored (bool/uint8 too): encode_dataset converts per batch
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)[idx]
        self.factors, self.indices = factors[idx], idx
        self.batch_size = config.train.eval_batch_size
        self.rows = self._read() if self.path.exists() else []

    def _read(self) -> list[dict]:
        return read_tracking(self.path)

    def __call__(self, epochs_done: int, model) -> None:
        if not tracked(self.train, epochs_done):
            return
        from .trainer import encode_dataset

        was_training = model.training
        mu, _, _ = encode_dataset(model, self.images, self.labels, batch_size=self.batch_size)  # (S, n, K)
        model.train(was_training)
        self.rows = [r for r in self.rows if r["epoch"] < epochs_done]
        for s, m in zip(model.seeds, mu):
            ok = np.isfinite(m).all()
            self.rows.append({"epoch": epochs_done, "seed": int(s),
                              "polar_mse": polar_mse(m, self.factors).mse if ok else math.nan,
                              "cartesian_mse": cartesian_mse(m, self.factors).mse if ok else math.nan})
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(TRACK_COLUMNS)
        for r in self.rows:
            w.writerow([r["epoch"], r["seed"], *("" if math.isnan(r[c]) else repr(float(r[c]))
                                                 for c in TRACK_COLUMNS[2:])])
        write_text(self.path, buf.getvalue())
