"""Weak-label accuracy (paper §4.4, Table 1: training accuracy on angle φ and distance d).

Table 1 reports, for the seed with the lowest polar MSE, the fraction of
samples whose predicted label bin equals the true one, per label.  With
partially observed labels, accuracy is taken over the entries a mask selects
(the observed ones, or the hidden ones); unknown labels (−1) never count.
"""
from __future__ import annotations

import numpy as np

from ._checks import to_numpy

__all__ = ["label_accuracy"]


def _check_integral(a: np.ndarray, name: str) -> np.ndarray:
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.int64)
    if np.issubdtype(a.dtype, np.floating) and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
        return a.astype(np.int64)
    raise ValueError(
        f"{name} must hold integer class indices, got dtype {a.dtype}"
        + (" (pass logits as a list of m arrays of shape (N, p))" if name == "predictions" else "")
    )


def label_accuracy(logits_or_pred, labels, mask=None) -> np.ndarray:
    """Per-label accuracy.

    logits_or_pred: either predicted class indices (N, m) (or (N,) for one label),
        or a list/tuple of m logit arrays, entry j of shape (N, p_j); the class
        predicted is the argmax.  numpy arrays or torch tensors.
    labels: (N, m) (or (N,)) true class indices, −1 = unknown.
    mask: optional (N, m) bool, the entries to count (e.g. the observed labels).
    Returns (m,) float64: per label, the fraction of counted entries whose
    prediction equals the label; NaN for a label with no entry to count.
    """
    y = _check_integral(to_numpy(labels), "labels")
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2:
        raise ValueError(f"labels must have shape (N, m), got {y.shape}")
    n, m = y.shape
    if n == 0:
        raise ValueError("labels are empty; need at least one sample")

    if isinstance(logits_or_pred, (list, tuple)):
        if len(logits_or_pred) != m:
            raise ValueError(
                f"got {len(logits_or_pred)} logit arrays for {m} labels; they must match"
            )
        cols = []
        for j, logits in enumerate(logits_or_pred):
            z = to_numpy(logits)
            if z.ndim != 2 or z.shape[0] != n:
                raise ValueError(f"logits[{j}] must have shape (N={n}, p), got {z.shape}")
            cols.append(np.argmax(z, axis=1))
        pred = np.stack(cols, axis=1)
    else:
        pred = _check_integral(to_numpy(logits_or_pred), "predictions")
        if pred.ndim == 1:
            pred = pred[:, None]
        if pred.shape != (n, m):
            raise ValueError(
                f"predictions have shape {pred.shape} but labels have {(n, m)}; they must match"
            )
    count = y >= 0
    if mask is not None:
        mask = np.asarray(mask, dtype=bool).reshape(n, -1)
        if mask.shape != (n, m):
            raise ValueError(f"mask has shape {mask.shape} but labels have {(n, m)}; they must match")
        count = count & mask
    hits = ((pred == y) & count).sum(axis=0)
    total = count.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, hits / np.maximum(total, 1), np.nan).astype(np.float64)
