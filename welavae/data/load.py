"""The one way a data set is built from a config: :func:`load` (``DataConfig`` / ``RunConfig`` → :class:`Dataset`).

The command line (``train``, ``encode``, ``evaluate``, ``plot``, ``data``),
:func:`welavae.fit`, ``welavae reproduce`` and :func:`welavae.evaluate.plot_run`
all call it, so a data set is read, checked and labelled in one place:

``blobs``   the paper's Blobs set (§4.1, cached on disk; images kept as the
            cache's uint8 pixels) and, for a model with labels, its two weak
            labels (angle, distance) of p classes each
``npz``     a user's ``.npz`` (:func:`welavae.data.user.load_npz`)
``images``  a folder of image files and a CSV of labels
            (:func:`welavae.data.user.load_image_folder`), read with the
            model's own label names and classes when a model is given
``arrays``  the arrays handed to :func:`welavae.fit`: ``fit`` saves them in the
            run directory as ``data.npz`` (:func:`save_npz`, the npz layout
            above), so that such a run is plotted, evaluated and resumed like
            any other; reading it needs ``run_dir``.
``benchmark`` a benchmark file (:func:`welavae.data.benchmarks.load_benchmark`:
            dSprites, its twin, Shapes3D, MPI3D), a seeded subset of it, images
            kept bool/uint8, weak labels from the config's spec
            (:mod:`welavae.data.spec`) with their label coordinates

Every check that can refuse a data set runs here, before anything is written.
"""
from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np

from ..config import DataConfig, ModelConfig, RunConfig
from ..io import atomic_write
from .benchmarks import to_float
from .blobs import weak_labels
from .cache import load_blobs
from .user import Dataset, load_image_folder, load_npz

__all__ = ["load", "save_npz", "ARRAYS_FILE", "BLOBS_LABEL_NAMES"]

ARRAYS_FILE = "data.npz"  # in a run directory trained from in-memory arrays (source "arrays")
BLOBS_LABEL_NAMES = ("angle", "distance")


def load(config: DataConfig | RunConfig, *, data_dir=None, run_dir=None, model: ModelConfig | None = None) -> Dataset:
    """The data set ``config`` names, checked against the model that reads it.

    config: a :class:`RunConfig` (its data, read for its model: the labels the
    model trains with must be there), or a :class:`DataConfig` alone,
    optionally with ``model`` (read as that model reads data, e.g. to encode
    with a trained run: its label names and classes, its image size; labels
    may be absent).  ``data_dir``: the Blobs cache; ``run_dir``: the run
    directory holding ``data.npz`` (source ``"arrays"``).

    A model without labels gets ``labels=None``.  Raises ``ValueError`` /
    ``FileNotFoundError`` with one sentence naming the file and the defect.
    """
    if isinstance(config, RunConfig):
        if model is not None:
            raise ValueError("give a RunConfig, or a DataConfig with model=, not both")
        d, model, needs_labels, name = config.data, config.model, config.model.has_labels, config.name
    else:
        d, needs_labels, name = config, False, None
    label_dims = model.label_dims if model is not None and model.has_labels else None
    if d.source == "blobs":
        blobs = load_blobs(d.variants, size=d.size, seed=d.seed, shape=d.shape, sigma_range=d.sigma_range,
                           data_dir=data_dir, pixels=True)  # uint8: each batch converted (to_float)
        ds = Dataset(images=blobs.images, labels=None, factors=blobs.factors)
        if label_dims:
            if len(label_dims) != 2 or len(set(label_dims)) != 1:
                raise ValueError(f"Blobs has two weak labels (angle, distance) of p classes each, not {label_dims}")
            p = label_dims[0]
            ds = dataclasses.replace(ds, labels=weak_labels(blobs.factors, p, size=d.size), label_dims=label_dims,
                                     label_names=BLOBS_LABEL_NAMES,
                                     label_classes=tuple(tuple(str(c) for c in range(p)) for _ in label_dims))
        return ds
    if d.source == "arrays":
        if run_dir is None:
            raise ValueError(f"run {name or ''!r} was trained on in-memory arrays (welavae.fit): "
                             f"give its run directory to read them from {ARRAYS_FILE}")
        path = Path(run_dir) / ARRAYS_FILE
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: the arrays this run was trained on are not in "
                                    "its directory (runs written by welavae.fit before 0.3 did not keep them)")
        ds = load_npz(path, label_dims=label_dims)
    elif d.source == "benchmark":
        path = d.data_path
        ds = _load_benchmark(d)
        if label_dims and ds.labels is not None and tuple(label_dims) != tuple(ds.label_dims):
            raise ValueError(f"the weak labels {d.weak_labels!r} of {path} have {ds.label_dims} classes, "
                             f"the model expects {tuple(label_dims)}")
    elif d.source == "npz":
        path = d.path
        ds = load_npz(path, label_dims=label_dims)
    else:  # images
        path = d.path
        ds = load_image_folder(path, d.labels_path,
                               label_names=(model.label_names or None) if label_dims else None,
                               label_classes=(model.label_classes or None) if label_dims else None,
                               color=d.color)
    if needs_labels and ds.labels is None:
        raise ValueError(f"{path} has no labels but model {name!r} needs weak labels")
    if model is not None:
        if ds.image_shape != tuple(model.image_shape):
            raise ValueError(f"{path}: images are {'x'.join(map(str, ds.image_shape))}, the model expects "
                             f"{'x'.join(map(str, model.image_shape))} (H x W x C)")
        if not model.has_labels:
            ds = dataclasses.replace(ds, labels=None, label_dims=(), label_names=(), label_classes=())
    return ds


def _load_benchmark(d: DataConfig) -> Dataset:
    """The benchmark of ``d``: its (reduced) grid, subset and weak-label spec; labels None without a spec."""
    from .benchmarks import benchmark, load_benchmark, small_grid

    entry = small_grid(d.dataset, d.grid) if d.grid is not None else benchmark(d.dataset)
    if d.grid is not None and len(d.grid) != len(entry.factor_names):
        raise ValueError(f"data.grid {d.grid} must give the size of each of the {len(entry.factor_names)} factors "
                         f"of {d.dataset} ({', '.join(entry.factor_names)})")
    data = load_benchmark(entry, d.data_path, subset=d.subset, seed=d.subset_seed)
    return data.to_dataset(d.weak_labels)


def save_npz(path, data: Dataset) -> Path:
    """``data`` as the npz layout :func:`welavae.data.user.load_npz` reads (images, and labels,
    label_names, factors when present), compressed, written atomically."""
    arrays = {"images": to_float(np.asarray(data.images))}
    if data.labels is not None:
        arrays["labels"] = np.asarray(data.labels, dtype=np.int64)
        if data.label_names:
            arrays["label_names"] = np.asarray(data.label_names, dtype=str)
    if data.factors is not None:
        arrays["factors"] = np.asarray(data.factors, dtype=np.float64)

    def write(f):
        buf = io.BytesIO()  # np.savez needs a seekable file; the temporary file is written in one go
        np.savez_compressed(buf, **arrays)
        f.write(buf.getvalue())

    return atomic_write(path, write)
