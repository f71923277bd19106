"""Watching a run in TensorBoard: ``--tensorboard DIR`` (the ``tensorboard`` extra).

After every epoch, one scalar per term of the objective per seed
(``image_nll/seed_3``, …, :data:`welavae.config.TERMS`) and γ (``gamma/seed_3``:
the weight of the labels, found by ``--gamma auto`` or fixed); every ``every``
epochs and after the last, each seed's latent traversals (the upper half of the
paper's Figure 1: originals, reconstructions, one row per latent decoded over
[−3, 3] from a fixed sample's code) as a figure (``traversals/seed_3``).  The
tool the field already watches training with; nothing it shows changes the run.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..config import TERMS, RunConfig
from ..data.dataset import to_float
from ..plots import latent_figure, traversal_grid

__all__ = ["TensorBoard", "EVERY"]

#: Epochs between two traversal figures (the scalars are written every epoch).
EVERY = 10
#: Originals (and their reconstructions) in a traversal figure, and the traversal's steps.
_ORIGINALS, _STEPS = 6, 8


def _summary_writer():
    try:
        from torch.utils.tensorboard import SummaryWriter  # the optional extra: imported when asked for
    except ImportError:
        raise ModuleNotFoundError("--tensorboard needs the tensorboard package: "
                                  "pip install 'wela-vae[tensorboard]'") from None
    return SummaryWriter


class TensorBoard:
    """Called as ``tensorboard(epochs_done, model, terms, gamma)`` after every epoch (a trainer watcher).

    log_dir: where the event files go (created at the first call); images (N, H, W[, C]) and
    labels (N, m) or None: the run's data (a few samples are drawn for the figures).  Creating
    it checks that the package is there, and writes nothing.
    """

    def __init__(self, log_dir, config: RunConfig, images, labels=None, *, every: int = EVERY):
        self._writer_class = _summary_writer()
        if int(every) < 1:
            raise ValueError(f"--tensorboard-every must be >= 1, got {every}")
        self.log_dir, self.config, self.every = Path(log_dir), config, int(every)
        n = len(images)
        self.pick = np.linspace(0, n - 1, _ORIGINALS + 2).astype(int)[1:-1]
        self.images = np.asarray(images)[self.pick]  # as stored: converted when drawn
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)[self.pick]
        self.writer = None

    def __call__(self, epochs_done: int, model, terms: np.ndarray, gamma: np.ndarray) -> None:
        if self.writer is None:
            self.writer = self._writer_class(log_dir=str(self.log_dir))
        for i, seed in enumerate(model.seeds):
            for j, name in enumerate(TERMS):
                if math.isfinite(terms[i, j]):
                    self.writer.add_scalar(f"{name}/seed_{seed}", float(terms[i, j]), epochs_done)
            if math.isfinite(gamma[i]):
                self.writer.add_scalar(f"gamma/seed_{seed}", float(gamma[i]), epochs_done)
        if epochs_done % self.every == 0 or epochs_done == self.config.train.epochs:
            for i, seed in enumerate(model.seeds):
                self.writer.add_figure(f"traversals/seed_{seed}", self._figure(model, i), epochs_done)
        self.writer.flush()

    @torch.no_grad()
    def _figure(self, model, i: int):
        """Seed i's originals, reconstructions and traversals from the first original's code."""
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        shape = self.images.shape[1:]
        x = torch.from_numpy(to_float(self.images.reshape(len(self.images), -1))).to(device)
        y = None if self.labels is None else torch.from_numpy(self.labels).to(device)
        mu, _ = model.encode(x, y if model.label_in else None)  # (S, n, K)

        def decode(z):
            z = torch.as_tensor(z, dtype=torch.float32, device=device)
            logits, _ = model.decode(z[None].expand(model.num_seeds, -1, -1))
            return torch.sigmoid(logits[i]).cpu().numpy().reshape(-1, *shape)

        originals = to_float(self.images)
        figure = latent_figure(originals, decode(mu[i].cpu().numpy()),
                               traversal_grid(decode, mu[i, 0].cpu().numpy(), steps=_STEPS), None,
                               title=f"{self.config.name}, seed {model.seeds[i]}")
        model.train(was_training)
        return figure

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
