"""The one way a data set is built from a config: :func:`load` (``DataConfig`` / ``RunConfig`` → :class:`Dataset`).

The command line, :func:`welavae.fit`, ``welavae reproduce``, ``evaluate``
and ``plot`` all come here (through :func:`welavae.resolve.resolve` for a new
run), so a data set is read, checked and labelled in one place:

``blobs``     the paper's Blobs set (§4.1, cached on disk; images kept as the
              cache's uint8 pixels) and, for a model with labels, its two weak
              labels (angle, distance) of p classes each, or the labels of a
              weak-label spec over its centre (c1, c2)
``npz``       a user's ``.npz`` (:func:`welavae.data.npz.load_npz`)
``images``    a folder of image files and a CSV of labels
              (:func:`welavae.data.folder.load_image_folder`), read with the
              model's own label names and classes when a model is given
``arrays``    the arrays handed to :func:`welavae.fit`, which keeps them in its
              run directory as an npz (read from ``arrays``, the path the run
              directory's owner names)
``benchmark`` a published data set (:mod:`welavae.data.published`: dSprites, its
              twin, Shapes3D, MPI3D), a seeded subset of it, images kept
              bool/uint8, weak labels from the config's spec
              (:mod:`welavae.data.spec`) with their label coordinates

:func:`resolve_paths` makes every file a config names absolute, once, when a
run is configured, so a run directory works from any working directory.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ..config import DataConfig, ModelConfig, RunConfig
from .blobs import weak_labels
from .cache import default_data_dir, load_blobs
from .dataset import Dataset
from .folder import load_image_folder
from .npz import load_npz
from .published import benchmark, load_benchmark, small_grid
from .spec import parse_spec, weak_labels_from_spec

__all__ = ["load", "resolve_paths", "without_labels", "BLOBS_LABEL_NAMES"]

BLOBS_LABEL_NAMES = ("angle", "distance")
#: Blobs' factors as a weak-label spec names them: the centre's row and column.
BLOBS_FACTORS = ("c1", "c2")


def resolve_paths(data: DataConfig, *, data_dir=None) -> DataConfig:
    """``data`` with every file it names absolute: the npz, the image folder and its CSV, the published file
    (a folder, or no path at all, becomes the file under its published name in that folder, or in the data
    directory ``data_dir`` / :func:`~welavae.data.cache.default_data_dir`)."""
    def absolute(p):
        return None if p is None else str(Path(p).expanduser().resolve())

    if data.source == "benchmark":
        path = Path(data.data_path) if data.data_path else Path(data_dir or default_data_dir())
        if path.is_dir() or not data.data_path:
            path = path / benchmark(data.dataset).file_name
        return dataclasses.replace(data, data_path=absolute(path))
    return dataclasses.replace(data, path=absolute(data.path), labels_path=absolute(data.labels_path))


def load(config: DataConfig | RunConfig, *, data_dir=None, arrays=None, model: ModelConfig | None = None,
         label_dim: int | None = None) -> Dataset:
    """The data set ``config`` names, checked against the model that reads it.

    config: a :class:`RunConfig` (its data, read for its model: the labels the
    model trains with must be there), or a :class:`DataConfig` alone,
    optionally with ``model`` (read as that model reads data, e.g. to encode
    with a trained run: its label names and classes, its image size; labels
    may be absent) or, for Blobs, ``label_dim`` (p: its weak labels).
    ``data_dir``: the Blobs cache; ``arrays``: the npz file holding a
    ``welavae.fit`` run's arrays (source ``"arrays"``).

    A model without labels gets ``labels=None``.  Raises ``ValueError`` /
    ``FileNotFoundError`` with one sentence naming the file and the defect.
    """
    if isinstance(config, RunConfig):
        if model is not None or label_dim is not None:
            raise ValueError("give a RunConfig, or a DataConfig with model= or label_dim=, not both")
        d, model, needs_labels, name = config.data, config.model, config.model.has_labels, config.name
    else:
        d, needs_labels, name = config, False, None
    label_dims = model.label_dims if model is not None and model.has_labels else None
    if d.source == "blobs":
        return _load_blobs(d, label_dims, label_dim, data_dir)
    if d.source == "arrays":
        if arrays is None:
            raise ValueError(f"run {name or ''!r} was trained on in-memory arrays (welavae.fit): "
                             "read them from its run directory")
        path = Path(arrays)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: the arrays this run was trained on are not in "
                                    "its directory (runs written by welavae.fit before 0.3 did not keep them)")
        ds = load_npz(path, label_dims=label_dims)
    elif d.source == "benchmark":
        d = resolve_paths(d, data_dir=data_dir)
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
            ds = without_labels(ds)
    return ds


def without_labels(ds: Dataset) -> Dataset:
    """``ds`` as a model without weak labels reads it."""
    return dataclasses.replace(ds, labels=None, label_dims=(), label_names=(), label_classes=())


def _load_blobs(d: DataConfig, label_dims, label_dim, data_dir) -> Dataset:
    """Blobs (uint8 pixels: each batch converted by to_float) and, with p (``label_dims`` (p, p) of a model
    or ``label_dim``), its two weak labels."""
    if label_dim is not None and (isinstance(label_dim, bool) or not isinstance(label_dim, int) or label_dim < 2):
        raise ValueError(f"label_dim (--label-dim): Blobs' labels need p >= 2 classes, got {label_dim!r}")
    if d.weak_labels is not None:  # refused before the set is generated
        if label_dim is not None:
            raise ValueError("give --label-dim P or --weak-labels SPEC for Blobs' labels, not both")
        parse_spec(d.weak_labels)
    blobs = load_blobs(d.variants, size=d.size, seed=d.seed, shape=d.shape, sigma_range=d.sigma_range,
                       data_dir=data_dir, pixels=True)
    ds = Dataset(images=blobs.images, labels=None, factors=blobs.factors)
    if d.weak_labels is not None:
        return _blobs_spec(ds, d, label_dims)
    if label_dims:
        if len(label_dims) != 2 or len(set(label_dims)) != 1:
            raise ValueError(f"Blobs has two weak labels (angle, distance) of p classes each, not {label_dims}")
        label_dim = label_dims[0]
    if not label_dim:
        return ds
    p = int(label_dim)
    return dataclasses.replace(ds, labels=weak_labels(blobs.factors, p, size=d.size), label_dims=(p, p),
                               label_names=BLOBS_LABEL_NAMES,
                               label_classes=tuple(tuple(str(c) for c in range(p)) for _ in range(2)))


def _blobs_spec(ds: Dataset, d: DataConfig, label_dims) -> Dataset:
    """Blobs with the weak labels of the spec ``d.weak_labels`` over its centre (c1, c2), each on the canvas
    [0, size] (the paper's ranges: ``angle(c1,c2):p, distance(c1,c2):p`` are its angle and distance)."""
    wl = weak_labels_from_spec(ds.factors, d.weak_labels, BLOBS_FACTORS, factor_ranges=((0, d.size), (0, d.size)))
    if label_dims and tuple(label_dims) != wl.dims:
        raise ValueError(f"the weak labels {d.weak_labels!r} of Blobs have {wl.dims} classes, the model expects "
                         f"{tuple(label_dims)}")
    return dataclasses.replace(ds, labels=wl.labels, label_dims=wl.dims, label_names=wl.names,
                               label_classes=tuple(tuple(str(k) for k in range(p)) for p in wl.dims),
                               label_coordinates=wl.coordinates)


def _load_benchmark(d: DataConfig) -> Dataset:
    """The published data set of ``d``: its (reduced) grid, subset and weak-label spec; labels None without a spec."""
    entry = small_grid(d.dataset, d.grid) if d.grid is not None else benchmark(d.dataset)
    if d.grid is not None and len(d.grid) != len(entry.factor_names):
        raise ValueError(f"data.grid {d.grid} must give the size of each of the {len(entry.factor_names)} factors "
                         f"of {d.dataset} ({', '.join(entry.factor_names)})")
    data = load_benchmark(entry, d.data_path, subset=d.subset, seed=d.subset_seed)
    return data.to_dataset(d.weak_labels)
