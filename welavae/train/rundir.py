"""Training a run directory: the gate (:mod:`~welavae.train.preflight`), the trainer, and the files of
:class:`welavae.run.Run`, in that order."""
from __future__ import annotations

import numpy as np

from ..checkpoint import export_safetensors
from ..config import RunConfig
from ..data.dataset import Dataset
from ..nn.encode import encode_dataset
from ..run import Run
from .preflight import check_run
from .tensorboard import EVERY, TensorBoard
from .tracking import Tracker
from .trainer import TERMS, TrainResult, check_seed_layout, train

__all__ = ["train_run"]


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
    tensorboard=None,
    tensorboard_every: int = EVERY,
    seed_layout: str = "auto",
) -> TrainResult:
    """Train ``seeds`` of ``config`` and write the run directory (:class:`welavae.run.Run`).

    Resumes from the run's checkpoint when one of the same run is there.
    ``data``: the :class:`~welavae.data.Dataset` ``config`` names, as
    :func:`welavae.resolve.resolve` returned it (default: read here with
    :meth:`welavae.run.Run.data`, which refuses files changed since
    ``config`` was made).  A run trained on in-memory arrays (source
    ``"arrays"``, :func:`welavae.fit`) keeps them in the run directory
    (:attr:`Run.arrays_file`, written once).  ``tensorboard``: a folder for TensorBoard's event
    files (:mod:`welavae.train.tensorboard`; every ``tensorboard_every`` epochs the
    latent traversals).  Nothing is written before every check passed
    (:func:`welavae.train.preflight.check_run`); the directory is locked while
    written (:meth:`welavae.run.Run.locked`), and its seeds are never replaced.  ``seed_layout``: how the
    convolutions run their seeds (:func:`welavae.train.train`); the choice is in ``status.json``.
    """
    if not str(out_dir).strip():  # Path("") is the working directory: a run would be written all over it
        raise ValueError("--out is empty; give the run directory to write")
    check_seed_layout(seed_layout)
    run = Run(out_dir)
    if data is None:  # read here (a sweep's Ray job): checked against the fingerprint its config recorded
        data = run.data(config=config, data_dir=data_dir)
    checked = check_run(config, seeds, data, device=device, resuming=run.checkpoint.exists())
    watch = []  # made before anything is written: a missing tensorboard package is refused here
    if config.train.track_every:
        watch.append(Tracker(run, config, data.images, data.factors, checked.labels))
    if tensorboard is not None:
        watch.append(TensorBoard(tensorboard, config, data.images, checked.labels, every=tensorboard_every))
    with run.locked():
        try:
            return _train_locked(run, config, checked, data, watch, device=device, progress=progress,
                                 on_epoch=on_epoch, tf32=tf32, seed_layout=seed_layout)
        finally:
            for watcher in watch:
                getattr(watcher, "close", lambda: None)()


def _train_locked(run: Run, config: RunConfig, checked, data: Dataset, watch, *, device, progress, on_epoch,
                  tf32, seed_layout) -> TrainResult:
    seeds, labels = checked.seeds, checked.labels
    run.start(config, seeds)
    if config.data.source == "arrays":
        run.keep_arrays(data)
    result = train(config, seeds, data.images, labels, device=device, checkpoint=run.checkpoint,
                   progress=progress, on_epoch=on_epoch, tf32=tf32, watch=watch, seed_layout=seed_layout)
    export_safetensors(run.path / Run.WEIGHTS, result.model, config)
    mu, logvar, pred = encode_dataset(result.model, data.images, labels, batch_size=config.train.eval_batch_size)
    has_pred = pred is not None
    run.write_arrays(mu=mu, logvar=logvar, label_pred=pred, factors=data.factors,
                     labels=data.labels if has_pred else None, observed=checked.observed if has_pred else None)
    run.write_history(result.history, result.seeds, TERMS, result.gamma)
    run.write_json(Run.STATUS, {
        "name": config.name,
        "config_hash": config.hash(),
        "seeds": result.seeds,
        "diverged_epoch": [int(e) for e in result.diverged_epoch],
        "epochs": result.epochs_done,
        "resumed_from": result.resumed_from,
        "seconds": result.seconds,
        # the γ each seed ended with (--gamma auto finds it; a fixed γ is its value; null without labels)
        "gamma": [None if not np.isfinite(g) else float(g) for g in result.gamma[-1]] if len(result.gamma) else None,
        "device": str(device),
        "environment": result.environment,
        # the conv layers' seed layout, how it was chosen and the timings (null without a choice: MLP, one seed)
        "seed_layout": result.seed_layout,
    })
    return result
