"""Training a run directory: the data a config names, the trainer, and the files of :class:`welavae.run.Run`."""
from __future__ import annotations

import numpy as np

from ..config import RunConfig
from ..data.blobs import weak_labels
from ..data.cache import load_blobs
from ..data.user import hide_labels, load_image_folder, load_npz
from ..run import Run, parse_seeds
from .checkpoint import export_safetensors
from .schedule import TRACKING, Tracker, check_init_source
from .trainer import TERMS, TrainResult, encode_dataset, train

__all__ = ["prepare_data", "observed_labels", "train_run", "parse_seeds"]


def prepare_data(config: RunConfig, *, data_dir=None):
    """(images (N, H, W) float32, labels (N, m) int64 (−1 = missing) or None, factors (N, F) or None).

    The labels are all the data has; :func:`observed_labels` hides a fraction of them for training.
    """
    d, m = config.data, config.model
    if d.source == "arrays":
        raise ValueError(f"run {config.name!r} was trained on in-memory arrays (welavae.fit): pass them as data")
    if d.source in ("npz", "images"):
        ds = load_npz(d.path, label_dims=m.label_dims or None) if d.source == "npz" else \
            load_image_folder(d.path, d.labels_path, label_names=m.label_names or None,
                              label_classes=m.label_classes or None)
        if m.has_labels and ds.labels is None:
            raise ValueError(f"{d.path} has no labels but model {config.name!r} needs weak labels")
        if ds.image_shape != m.image_shape:
            raise ValueError(f"{d.path}: images are {ds.image_shape[0]}x{ds.image_shape[1]}, "
                             f"the model expects {m.image_shape[0]}x{m.image_shape[1]}")
        return ds.images, (ds.labels if m.has_labels else None), ds.factors
    blobs = load_blobs(d.variants, size=d.size, seed=d.seed, shape=d.shape, sigma_range=d.sigma_range, data_dir=data_dir)
    labels = None
    if m.has_labels:
        if m.label_dim is None or m.num_labels != 2:
            raise ValueError(f"Blobs has two weak labels (angle, distance) of p classes each, not {m.label_dims}")
        labels = weak_labels(blobs.factors, m.label_dim, size=d.size)
    return blobs.images, labels, blobs.factors


def observed_labels(labels, config: RunConfig):
    """(labels the model trains with, observed (N, m) bool): ``label_fraction`` of the samples keep theirs."""
    if labels is None:
        return None, None
    labels = np.asarray(labels, dtype=np.int64)
    if config.data.label_fraction < 1.0:
        labels, _ = hide_labels(labels, config.data.label_fraction, config.data.label_seed)
    return labels, labels >= 0


def train_run(
    config: RunConfig,
    seeds,
    out_dir,
    *,
    data_dir=None,
    device="cpu",
    progress=None,
    on_epoch=None,
    data=None,
) -> TrainResult:
    """Train ``seeds`` of ``config`` and write the run directory (:class:`welavae.run.Run`).

    Resumes from ``out_dir/checkpoints`` when a checkpoint of the same run is
    there.  ``data``: optional (images, labels, factors) instead of
    :func:`prepare_data`.  Nothing is written before the data are validated.
    """
    images, labels, factors = data if data is not None else prepare_data(config, data_dir=data_dir)
    train_labels, observed = observed_labels(labels, config)
    run = Run(out_dir)
    if config.train.init_from and not run.checkpoint.exists():  # checked before anything is written
        check_init_source(config, seeds)
    tracker = Tracker(run.path / TRACKING, config, images, factors, train_labels) if config.train.track_every else None
    run.start(config)
    result = train(config, seeds, images, train_labels, device=device, checkpoint_dir=run.path / Run.CHECKPOINTS,
                   progress=progress, on_epoch=on_epoch, track=tracker)
    export_safetensors(run.path / Run.WEIGHTS, result.model, config)
    mu, logvar, pred = encode_dataset(result.model, images, train_labels, batch_size=config.train.eval_batch_size)
    run.write_arrays(mu=mu, logvar=logvar, label_pred=pred, factors=factors,
                     labels=labels if pred is not None else None, observed=observed if pred is not None else None)
    run.write_history(result.history, result.seeds, TERMS)
    run.write_json(Run.STATUS, {
        "name": config.name,
        "config_hash": config.hash(),
        "seeds": result.seeds,
        "diverged_epoch": [int(e) for e in result.diverged_epoch],
        "epochs": result.epochs_done,
        "resumed_from": result.resumed_from,
        "seconds": result.seconds,
        "device": str(device),
    })
    return result
