"""Training a run directory: the data its config names (:func:`welavae.data.load`), the trainer, and the
files of :class:`welavae.run.Run`."""
from __future__ import annotations

import numpy as np

from ..config import RunConfig
from ..data.load import ARRAYS_FILE, load, save_npz
from ..data.user import Dataset, hide_labels
from ..run import Run, parse_seeds
from .checkpoint import export_safetensors
from .preflight import check_run
from .schedule import TRACKING, Tracker, check_init_source
from .trainer import TERMS, TrainResult, encode_dataset, train

__all__ = ["observed_labels", "train_run", "parse_seeds"]


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
    data: Dataset | None = None,
    tf32: bool = False,
) -> TrainResult:
    """Train ``seeds`` of ``config`` and write the run directory (:class:`welavae.run.Run`).

    Resumes from ``out_dir/checkpoints`` when a checkpoint of the same run is
    there.  ``data``: the :class:`~welavae.data.Dataset` already read by
    :func:`welavae.data.load` (default: read here).  A run trained on
    in-memory arrays (source ``"arrays"``, :func:`welavae.fit`) keeps them in
    ``out_dir/data.npz``.  Nothing is written before every check passed
    (:func:`welavae.train.preflight.check_run`); the directory is locked while
    written (:meth:`welavae.run.Run.locked`), and its seeds are never replaced.
    """
    if data is None:
        data = load(config, data_dir=data_dir, run_dir=out_dir)
    images, labels, factors = data.images, data.labels if config.model.has_labels else None, data.factors
    train_labels, observed = observed_labels(labels, config)
    seeds = check_run(config, seeds, images, train_labels, device=device)  # every refusal before any write
    run = Run(out_dir)
    if config.train.init_from and not run.checkpoint.exists():  # checked before anything is written
        check_init_source(config, seeds)
    with run.locked():
        return _train_locked(run, config, seeds, data, images, labels, train_labels, observed, factors,
                             device=device, progress=progress, on_epoch=on_epoch, tf32=tf32)


def _train_locked(run: Run, config, seeds, data, images, labels, train_labels, observed, factors, *, device,
                  progress, on_epoch, tf32) -> TrainResult:
    tracker = Tracker(run.path / TRACKING, config, images, factors, train_labels) if config.train.track_every else None
    run.start(config, seeds)
    if config.data.source == "arrays":
        save_npz(run.path / ARRAYS_FILE, data)
    result = train(config, seeds, images, train_labels, device=device, checkpoint_dir=run.path / Run.CHECKPOINTS,
                   progress=progress, on_epoch=on_epoch, tf32=tf32, track=tracker)
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
        "environment": result.environment,
    })
    return result
