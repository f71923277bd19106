"""Validation of training data, and loading a user's own ``.npz`` data set.

Everything the trainer consumes passes through :func:`check_images` and
:func:`check_labels`, so bad input is refused with one sentence naming what is
wrong before any training starts.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["check_images", "check_labels", "UserData", "load_npz"]


def check_images(images, *, name: str = "images") -> np.ndarray:
    """Return images as float32 (N, H, W) or (N, D); refuse NaN/inf and values outside [0, 1].

    The image likelihood is Bernoulli, so pixel values are probabilities.
    """
    x = np.asarray(images)
    if x.dtype == np.uint8:
        raise ValueError(f"{name} are uint8; convert to float in [0, 1] (divide by 255) first")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name} must be a float array with values in [0, 1], got dtype {x.dtype}")
    if x.ndim not in (2, 3) or x.shape[0] < 1:
        raise ValueError(f"{name} must have shape (N, H, W) or (N, D), got {x.shape}")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).reshape(len(x), -1).any(axis=1).sum())
        raise ValueError(f"{name} contain NaN or inf values (in {bad} of {len(x)} images)")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"{name} must lie in [0, 1] for the Bernoulli likelihood, got values in [{lo:g}, {hi:g}]"
        )
    return x


def check_labels(labels, n: int, label_dim: int, *, name: str = "labels") -> np.ndarray:
    """Return labels as int64 (N, m) with every entry in 0…label_dim-1."""
    y = np.asarray(labels)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] != n:
        raise ValueError(f"{name} must have shape (N={n}, m), got {np.asarray(labels).shape}")
    if np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all():
            raise ValueError(f"{name} contain NaN or inf values")
        if not np.all(y == np.round(y)):
            raise ValueError(f"{name} must be integer class indices, got non-integer values")
    elif not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} must be integer class indices, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= label_dim):
        raise ValueError(
            f"{name} must lie in 0..{label_dim - 1} for label dimension {label_dim}, "
            f"got values in [{y.min()}, {y.max()}]"
        )
    return y


@dataclass(frozen=True)
class UserData:
    """A user's data set: images (N, H, W) float32 in [0, 1], labels (N, m) int64, optional factors."""

    images: np.ndarray
    labels: np.ndarray | None
    factors: np.ndarray | None
    label_dim: int


def load_npz(path, *, label_dim: int | None = None) -> UserData:
    """Load ``images`` (and optional ``labels``, ``factors``) from an ``.npz`` file, validated.

    ``label_dim`` defaults to ``labels.max() + 1``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:
        raise ValueError(f"{path} is not a readable .npz file ({type(e).__name__}: {e})") from None
    if "images" not in arrays:
        raise ValueError(f"{path} has no 'images' array (found: {sorted(arrays)})")
    images = check_images(arrays["images"], name=f"{path}: images")
    labels = arrays.get("labels")
    if labels is not None:
        if label_dim is None:
            label_dim = int(np.asarray(labels).max()) + 1
        labels = check_labels(labels, len(images), label_dim, name=f"{path}: labels")
    factors = arrays.get("factors")
    if factors is not None:
        factors = np.asarray(factors, dtype=np.float64)
        if factors.ndim != 2 or len(factors) != len(images):
            raise ValueError(f"{path}: factors must have shape (N={len(images)}, F), got {factors.shape}")
    return UserData(images=images, labels=labels, factors=factors, label_dim=label_dim or 0)
