"""The data set type every reader returns, and the checks that make one.

:class:`Dataset` is what a reader (:mod:`welavae.data.blobs`, :mod:`~welavae.data.npz`,
:mod:`~welavae.data.folder`, :mod:`~welavae.data.published`) or :func:`from_arrays`
gives :func:`welavae.data.load`: images (N, H, W) or (N, H, W, C), weak labels
(N, m) with −1 = missing, their class counts and names, optional true factors.
Every way into a ``Dataset`` validates its content once, here (:func:`check_images`,
:func:`check_labels`); what comes after (the run's preflight, the trainer) trusts it.

Labels: m weak labels, label j with p_j classes (``label_dims``); class
indices 0 … p_j − 1, and −1 for a missing label.  Images are probabilities
in [0, 1] (Bernoulli per value), or bool / uint8 pixels kept as stored and
converted one batch at a time by :func:`to_float`.
"""
from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Dataset", "MISSING", "check_images", "check_labels", "check_label_names", "infer_label_dims",
           "image_shape", "to_float", "hide_labels", "from_arrays", "path_kind", "require_file"]

MISSING = -1

#: What is at a path, by its st_mode type, as a reader says it.
_KINDS = ((stat.S_ISREG, "a file"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def path_kind(path) -> str | None:
    """What is at ``path`` (links followed), as a phrase: "a file", "a directory", "a FIFO", "a socket",
    "a character device", "a block device", "a symbolic link loop", "a broken symbolic link (to …)";
    None when nothing is there.  Other OS errors (no permission) are raised as they are."""
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "a symbolic link loop"
        if e.errno not in (errno.ENOENT, errno.ENOTDIR):
            raise
        return f"a broken symbolic link (to {os.readlink(path)})" if os.path.islink(path) else None
    return next((kind for is_kind, kind in _KINDS if is_kind(mode)), "not a file")


def require_file(path, missing: str | None = None) -> Path:
    """``path`` if it is a regular file (links followed); else one sentence.

    Nothing there: ``FileNotFoundError(missing)`` (default "PATH does not exist").  Something else
    there: ``ValueError`` saying what — a FIFO (opening one for reading would wait for a writer
    forever), a symbolic link loop, a broken link, a directory, a socket, a device.
    """
    path = Path(path)
    kind = path_kind(path)
    if kind is None:
        raise FileNotFoundError(missing or f"{path} does not exist")
    if kind != "a file":
        raise ValueError(f"{path} is {kind}, not a file")
    return path

def check_images(images, *, name: str = "images", keep_pixels: bool = False) -> np.ndarray:
    """Return images as float32 (N, H, W), (N, H, W, C) or (N, D); refuse NaN/inf and values outside [0, 1].

    The image likelihood is Bernoulli per channel value (as disentanglement_lib
    does for colour data), so every value is a probability.  ``keep_pixels``:
    bool or uint8 images (a benchmark's, as stored) are returned as they are,
    to be converted per batch by :func:`to_float`
    (every such value maps into [0, 1]).
    """
    x = np.asarray(images)
    if keep_pixels and x.dtype in (np.bool_, np.uint8):
        if x.ndim not in (2, 3, 4) or x.shape[0] < 1:
            raise ValueError(f"{name} must have shape (N, H, W), (N, H, W, C) or (N, D), got {x.shape}")
        return x
    if x.dtype == np.uint8:
        raise ValueError(f"{name} are uint8; convert to float in [0, 1] (divide by 255) first")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name} must be a float array with values in [0, 1], got dtype {x.dtype}")
    if x.ndim not in (2, 3, 4) or x.shape[0] < 1:
        raise ValueError(f"{name} must have shape (N, H, W), (N, H, W, C) or (N, D), got {x.shape}")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        bad = np.flatnonzero(~np.isfinite(x).reshape(len(x), -1).all(axis=1))
        raise ValueError(f"{name} contain NaN or inf values (in {len(bad)} of {len(x)} images, first: index {bad[0]})")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"{name} must lie in [0, 1] for the Bernoulli likelihood, got values in [{lo:g}, {hi:g}]"
        )
    return x

def check_labels(labels, n: int, label_dims, *, name: str = "labels") -> np.ndarray:
    """Return labels as int64 (N, m): column j in 0 … p_j − 1, or −1 for a missing label.

    ``label_dims``: (p_1, …, p_m), or one int p for every column.
    """
    y = _label_array(labels, name)
    if y.ndim != 2 or y.shape[0] != n:
        raise ValueError(f"{name} must have shape (N={n}, m), got {np.asarray(labels).shape}")
    dims = (int(label_dims),) * y.shape[1] if np.isscalar(label_dims) else tuple(int(p) for p in label_dims)
    if y.shape[1] != len(dims):
        raise ValueError(f"{name} have {y.shape[1]} columns, the model expects m = {len(dims)} (label_dims {dims})")
    if np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all():
            raise ValueError(f"{name} contain NaN or inf values (write a missing label as -1)")
        if not np.all(y == np.round(y)):
            raise ValueError(f"{name} must be integer class indices, got non-integer values")
    elif not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} must be integer class indices, got dtype {y.dtype}")
    y = y.astype(np.int64)
    for j, p in enumerate(dims):
        col = y[:, j]
        bad = np.flatnonzero((col < MISSING) | (col >= p))
        if len(bad):
            raise ValueError(
                f"{name}: column {j} must lie in 0..{p - 1} (or -1 = missing), "
                f"got {col[bad[0]]} at row {bad[0]}"
            )
    if y.size and not (y >= 0).any():
        raise ValueError(f"{name}: no sample has an observed label")
    return y

def _label_array(labels, name: str) -> np.ndarray:
    """labels as an array, (N,) as (N, 1); words refused before any comparison with numbers."""
    y = np.asarray(labels)
    if y.dtype.kind in "USO":
        what = "strings" if y.dtype.kind in "US" else "Python objects"
        raise ValueError(f"{name} must be integer class indices, got {what} (map class names to 0, 1, 2, ... first)")
    return y[:, None] if y.ndim == 1 else y


def check_label_names(names, m: int, *, name: str = "label_names") -> tuple[str, ...]:
    """m label names as strings; an empty name, a name given twice or a wrong count is refused."""
    names = tuple(str(s) for s in names)
    if len(names) != m:
        raise ValueError(f"{name} has {len(names)} names for {m} label columns")
    for j, n in enumerate(names):
        if not n.strip():
            raise ValueError(f"{name}: label {j} has an empty name; give every label a name")
        if n in names[:j]:
            raise ValueError(f"{name} names the label {n!r} twice; give each label its own name")
    return names


def infer_label_dims(labels, *, name: str = "labels") -> tuple[int, ...]:
    """(p_1, …, p_m) = 1 + the largest class index of each column; refuses a column with one class."""
    y = _label_array(labels, name)
    dims = []
    for j in range(y.shape[1]):
        col = y[:, j][y[:, j] >= 0]
        if not len(col):
            raise ValueError(f"{name}: column {j} has no observed label")
        p = int(col.max()) + 1
        if p < 2 or len(np.unique(col)) < 2:
            raise ValueError(f"{name}: column {j} has a single class; a weak label needs at least two")
        dims.append(p)
    return tuple(dims)

@dataclass(frozen=True)
class Dataset:
    """Images (N, H, W) or (N, H, W, C) float32 in [0, 1]; labels (N, m) int64, −1 = missing, or None.

    ``label_dims`` (p_1 … p_m); ``label_names`` one per label; ``label_classes``
    the class names of labels read as strings (else the indices as text);
    ``factors`` (N, F) true factors when known; ``files`` the image files;
    ``label_coordinates`` (N, m) float64, the continuous coordinates the labels
    bin, when known (a benchmark's weak-label spec).  A benchmark's images
    stay bool/uint8 (converted per batch by :func:`to_float`).
    """

    images: np.ndarray
    labels: np.ndarray | None
    label_dims: tuple[int, ...] = ()
    label_names: tuple[str, ...] = ()
    label_classes: tuple[tuple[str, ...], ...] = ()
    factors: np.ndarray | None = None
    files: tuple[str, ...] = field(default=())
    label_coordinates: np.ndarray | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C), C = 1 for (N, H, W) images."""
        return image_shape(self.images)

def image_shape(images) -> tuple[int, int, int]:
    """(H, W, C) of images (N, H, W) (C = 1) or (N, H, W, C)."""
    shape = tuple(int(s) for s in np.shape(images)[1:])
    return shape + (1,) if len(shape) == 2 else shape


def to_float(batch):
    """One batch as float32 in [0, 1]: bool → 0.0/1.0, uint8 k → k/255, float unchanged.

    batch: (B, …) numpy array or torch tensor (the result is of the same kind).
    """
    if isinstance(batch, np.ndarray):
        if batch.dtype == np.bool_:
            return batch.astype(np.float32)
        if batch.dtype == np.uint8:
            out = batch.astype(np.float32)
            out *= np.float32(1 / 255)
            return out
        if np.issubdtype(batch.dtype, np.floating):
            return batch.astype(np.float32, copy=False)
        raise ValueError(f"a batch of images must be bool, uint8 or float, got dtype {batch.dtype}")
    import torch  # only for a tensor: the data modules do not need torch otherwise

    if batch.dtype == torch.bool:
        return batch.to(torch.float32)
    if batch.dtype == torch.uint8:
        return batch.to(torch.float32).mul_(1 / 255)
    if batch.dtype.is_floating_point:
        return batch.to(torch.float32)
    raise ValueError(f"a batch of images must be bool, uint8 or float, got dtype {batch.dtype}")


def hide_labels(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the labels of a random subset of round(fraction·N) samples; the others become −1.

    Returns (labels with the hidden rows set to −1, hidden (N,) bool).  The
    subset is drawn from ``numpy.random.default_rng(seed)`` alone, so it is the
    same for every seed of a run.
    """
    labels = np.asarray(labels)
    n = len(labels)
    keep = int(round(fraction * n))
    hidden = np.ones(n, dtype=bool)
    hidden[np.random.default_rng(seed).permutation(n)[:keep]] = False
    out = labels.copy()
    out[hidden] = MISSING
    return out, hidden


def from_arrays(images, labels=None, *, label_dims=None, label_names=(), factors=None) -> Dataset:
    """A :class:`Dataset` from arrays in memory (:func:`welavae.fit`), checked once.

    images (N, H, W) or (N, H, W, C) float in [0, 1]; labels (N, m) class
    indices, −1 = missing (or (N,) for one label); ``label_dims`` (p_1 … p_m),
    default 1 + the largest class of each label; factors (N, F) or None.
    """
    x = check_images(images)
    if x.ndim not in (3, 4):
        raise ValueError(f"images must have shape (N, H, W) or (N, H, W, C), got {x.shape}")
    dims, names = (), ()
    if labels is not None:
        y = _label_array(labels, "labels")
        dims = tuple(int(p) for p in label_dims) if label_dims is not None else infer_label_dims(y)
        labels = check_labels(y, len(x), dims)
        names = check_label_names(label_names, len(dims)) if len(label_names) else ()
    if factors is not None:
        factors = np.asarray(factors, dtype=np.float64)
        if factors.ndim != 2 or len(factors) != len(x):
            raise ValueError(f"factors must have shape (N={len(x)}, F), got {factors.shape}")
    return Dataset(images=x, labels=labels, label_dims=dims, label_names=names,
                   label_classes=tuple(tuple(str(c) for c in range(p)) for p in dims), factors=factors)
