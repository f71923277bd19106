"""Polar and Cartesian MSE of every seed during training: ``--track-every E`` (``TrainConfig.track_every``).

For data with ground-truth (c1, c2) (Blobs), :class:`Tracker` writes the polar
and Cartesian MSE (paper eqs. 5–7, :mod:`welavae.metrics.coordinates`) of every
seed after every E-th epoch, at the end of the label window and after the last
epoch, into the run's ``tracking.csv`` (:meth:`welavae.run.Run.write_tracking`),
from the encoder means of a fixed, seeded subset of :data:`TRACK_SAMPLES`
samples.  Used by the conjectures preset (labels that come and go; docs/conjectures.md).
"""
from __future__ import annotations

import math

import numpy as np

from ..config import RunConfig, TrainConfig
from ..metrics.coordinates import cartesian_mse, polar_mse
from ..nn.encode import encode_dataset
from ..run import Run

__all__ = ["tracked", "Tracker", "TRACK_SAMPLES"]

#: Samples encoded per tracked epoch: a fixed subset, so the curve over epochs compares like with like.
TRACK_SAMPLES = 1024


def tracked(train: TrainConfig, epochs_done: int) -> bool:
    """Whether the state after ``epochs_done`` epochs is tracked: every E-th, the window's end, the last."""
    e = train.track_every
    if e <= 0 or epochs_done < 1:
        return False
    window_end = train.label_epochs is not None and epochs_done == train.label_epochs[1]
    return epochs_done % e == 0 or epochs_done == train.epochs or window_end

class Tracker:
    """Polar and Cartesian MSE of every seed at the tracked epochs (:func:`tracked`), into ``tracking.csv``.

    Called as ``tracker(epochs_done, model, terms, gamma)`` after every epoch (a
    watcher of the trainer).  images (N, H, W) or (N, D), factors (N, 2) = (c1, c2), labels
    (N, m) or None: what the run trains with (an encoder q(z|x, y) reads them).
    The subset: ``min(samples, N)`` indices drawn without replacement by
    ``numpy.random.default_rng(subset_seed)``.  Rows already in the file for
    earlier epochs are kept, so a resumed run extends its curve; rows for the
    epochs being (re)trained are replaced.  A diverged seed's row is empty.
    """

    def __init__(self, run: Run, config: RunConfig, images, factors, labels=None, *,
                 samples: int = TRACK_SAMPLES, subset_seed: int = 0):
        factors = np.asarray(factors, dtype=np.float64)  # (N, 2) and K >= 2: checked by the preflight
        self.run, self.train = run, config.train
        n = len(images)
        idx = np.sort(np.random.default_rng(subset_seed).choice(n, size=min(int(samples), n), replace=False))
        self.images = np.asarray(images)[idx]  # as stored (bool/uint8 too): encode_dataset converts per batch
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)[idx]
        self.factors, self.indices = factors[idx], idx
        self.batch_size = config.train.eval_batch_size
        self.rows = run.tracking()

    def __call__(self, epochs_done: int, model, terms=None, gamma=None) -> None:
        if not tracked(self.train, epochs_done):
            return
        was_training = model.training
        mu, _, _ = encode_dataset(model, self.images, self.labels, batch_size=self.batch_size)  # (S, n, K)
        model.train(was_training)
        self.rows = [r for r in self.rows if r["epoch"] < epochs_done]
        for s, m in zip(model.seeds, mu):
            ok = np.isfinite(m).all()
            self.rows.append({"epoch": epochs_done, "seed": int(s),
                              "polar_mse": polar_mse(m, self.factors).mse if ok else math.nan,
                              "cartesian_mse": cartesian_mse(m, self.factors).mse if ok else math.nan})
        self.run.write_tracking(self.rows)
