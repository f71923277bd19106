"""(what data, which model, which hyperparameters) → (:class:`RunConfig`, :class:`Dataset`): the one place both
are made, for the command line (``welavae train``), :func:`welavae.fit` and the sweeps of ``welavae reproduce``.

The data are always read first (and checked by their reader), and the model is
then fitted to them: its weak labels (how many, how many classes each, their
names) and its image shape are the data's.  Blobs has no labels of its own: p
(``label_dim``) makes its two weak labels, angle and distance (paper §4.1), or a
weak-label spec over its centre (``DataConfig.weak_labels``) makes others, whose
classes and names are then the data's as for any other data set.
Every file the data config names is made absolute here, once
(:func:`welavae.data.load.resolve_paths`), so the run's ``config.json`` works
from any working directory, and the data read are fingerprinted here, once
(:func:`welavae.data.fingerprint.fingerprint`, recorded in the config), so a
run directory can refuse data that changed since.

A published data set's size is known before it is read (its grid, or
``--subset``): rows that could not fit in memory are refused before the read
allocates them (:func:`check_read_size`).  Everything else about memory is the
run's gate's (:func:`welavae.train.preflight.check_memory`).
"""
from __future__ import annotations

import dataclasses
import math

from . import memory
from .config import DataConfig, RunConfig, make_run_config
from .data.dataset import Dataset
from .data.fingerprint import fingerprint
from .data.load import load, resolve_paths, without_labels
from .data.published import benchmark, small_grid
from .models import model_kind

__all__ = ["resolve"]


def resolve(data: DataConfig, model: str, *, label_dim: int | None = None, arrays: Dataset | None = None,
            data_dir=None, read=None, **hyper) -> tuple[RunConfig, Dataset]:
    """The run's config and its data set, the data read first.

    data: the data set's :class:`DataConfig` (source ``"arrays"``: the data set
    itself in ``arrays``, e.g. :func:`welavae.data.from_arrays`); model: a kind of
    :data:`welavae.models.MODELS`; ``label_dim``: p of Blobs' two weak labels
    (Blobs only); ``data_dir``: the Blobs cache and the folder of published files; ``read``:
    ``read(data_config, label_dim) -> Dataset`` instead of :func:`welavae.data.load` (a sweep's cache);
    ``hyper``: :func:`welavae.config.make_run_config`'s keywords (latent_dim, beta,
    gamma, hidden, arch, encoder, encoder_input, label_head, tc_estimator, train, name).
    Returns the data set as the model reads it (no labels for a model without).
    """
    kind = model_kind(model)
    blobs = data.source == "blobs"
    if label_dim is not None and not blobs:
        raise ValueError("--label-dim is for Blobs; with other data the classes come from the labels")
    if label_dim is not None and data.weak_labels is not None:
        raise ValueError("give --label-dim P (Blobs' angle and distance, p classes each) or --weak-labels SPEC "
                         "(its classes are the spec's), not both")
    if kind.labels == "never" and (label_dim is not None or data.weak_labels):
        flag = "--label-dim" if label_dim is not None else "--weak-labels"
        raise ValueError(f"{flag}: model {model!r} ({kind.display}) takes no weak labels")
    if kind.labels == "required" and blobs and not label_dim and data.weak_labels is None:
        raise ValueError(f"model {model!r} needs weak labels: give --label-dim P (P >= 2 classes per label) "
                         "or --weak-labels SPEC")
    data = resolve_paths(data, data_dir=data_dir)
    check_read_size(data)
    if data.source == "arrays":
        if arrays is None:
            raise ValueError("a data set of in-memory arrays (source 'arrays') needs the arrays")
        ds = arrays
    else:
        ds = read(data, label_dim) if read is not None else load(data, data_dir=data_dir, label_dim=label_dim)
    if blobs and data.weak_labels is None:  # Blobs' labels defined by p: the config keeps p, not their names
        config = make_run_config(model, label_dim=label_dim, data=data, **hyper)
    else:
        labelled = kind.labels != "never" and ds.labels is not None
        config = make_run_config(
            model, label_dims=ds.label_dims if labelled else None, image_shape=ds.image_shape, data=data,
            label_names=ds.label_names if labelled else (),
            label_classes=_named_classes(ds.label_classes) if labelled else (), **hyper)
    if kind.labels == "required" and not config.model.has_labels:
        raise ValueError(f"model {model!r} needs weak labels and the data set has none")
    ds = ds if config.model.has_labels else without_labels(ds)
    # The data as this model reads them (Run.data reads them so again): their fingerprint.
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, fingerprint=fingerprint(data, ds)))
    return config, ds


#: Bytes per drawn row of a subset besides its image: numpy's draw without replacement holds the indices and a
#: hash set of them (Floyd's algorithm); the factor classes (int64) and values (float64) of each row.
_DRAW_BYTES, _FACTOR_BYTES = 24, 16


def check_read_size(data: DataConfig) -> None:
    """Refuse a published data set whose rows (``--subset`` N, or its whole ``--grid``) cannot fit in this
    machine's memory, before they are read; one sentence naming the flag."""
    if data.source != "benchmark":
        return
    entry = small_grid(data.dataset, data.grid) if data.grid is not None else benchmark(data.dataset)
    rows = entry.n if data.subset is None else min(int(data.subset), entry.n)
    per_row = math.prod(entry.image_shape) + _FACTOR_BYTES * len(entry.factor_names)
    need = rows * per_row + (0 if data.subset is None else _DRAW_BYTES * rows)
    have, where = memory.available("cpu")
    if need <= have:
        return
    grid = "" if data.grid is None else (f" (--grid {','.join(map(str, data.grid))} is a grid of {entry.n:,} "
                                         "images: check it against the file)")
    flag = f"--subset {data.subset}" if data.subset is not None else "--subset"
    raise ValueError(f"{flag}: reading {rows:,} images of {entry.title} "
                     f"({'x'.join(map(str, entry.image_shape))}) needs about {memory.size_text(need)} of memory and "
                     f"{memory.size_text(have)} is {where}; train on a smaller --subset N{grid}")


def _named_classes(classes) -> tuple:
    """A label's class names, or () when every label's classes are just their indices 0 … p − 1."""
    numbered = all(tuple(c) == tuple(str(i) for i in range(len(c))) for c in classes)
    return () if numbered else tuple(classes)

