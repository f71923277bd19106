"""Batched inference: encoder means, log-variances and label predictions of a whole data set.

The one batched encoder: a run's arrays after training (:mod:`welavae.train.rundir`), the tracked
MSEs during it (:mod:`welavae.train.tracking`) and :meth:`welavae.TrainedModel.posterior` use it.
"""
from __future__ import annotations

import numpy as np
import torch

from ..data.dataset import to_float
from .vae import EnsembleVAE

__all__ = ["encode_dataset"]


@torch.no_grad()
def encode_dataset(model: EnsembleVAE, images, labels=None, *, batch_size: int = 2048, device=None,
                   predict: bool = True):
    """Encoder means over a whole data set, and label predictions decoded at those means.

    Returns mu (S, N, K) float32 numpy, logvar (S, N, K) float32, and
    label_pred (S, N, m) int64 (argmax of each label head at z = μ, or of S2's and CCVAE's own
    predictor, :meth:`EnsembleVAE.label_logits`; ``predict``) or None (none asked for, no labels, or
    S2's ``cov``, which has no predictor).
    Labels may hold −1 (missing); a label-free encoder ignores them.
    """
    device = device or next(model.parameters()).device
    x_np = np.asarray(images)  # bool/uint8 stay so: each batch is converted (to_float), never the whole set
    x_np = x_np.reshape(len(x_np), -1)
    y_np = None if labels is None else np.asarray(labels, dtype=np.int64)
    mus, lvs, preds = [], [], []
    model.eval()
    for start in range(0, len(x_np), batch_size):
        x = torch.from_numpy(to_float(x_np[start : start + batch_size])).to(device)
        y = None
        if y_np is not None and model.label_in:
            y = torch.from_numpy(y_np[start : start + batch_size]).to(device)
        mu, logvar = model.encode(x, y)
        mus.append(mu.float().cpu())
        lvs.append(logvar.float().cpu())
        logits = model.label_logits(mu) if predict and model.label_out else None
        if logits is not None:
            preds.append(torch.stack([lg.argmax(-1) for lg in logits], dim=-1).cpu())
    mu = torch.cat(mus, dim=1).numpy()
    logvar = torch.cat(lvs, dim=1).numpy()
    pred = torch.cat(preds, dim=1).numpy() if preds else None
    return mu, logvar, pred
