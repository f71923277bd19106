"""The one gate of a training run: every check that can refuse it, in one place, before anything is written.

:func:`welavae.train.rundir.train_run` calls :func:`check_run` before it takes
the run directory's lock or writes ``config.json``: a refused command leaves
nothing on disk, so the corrected command is never blocked by a half-claimed
directory.  Each refusal is one sentence naming the setting and its flag.
Behind the gate nothing checks again: the trainer trusts what it is given.

What the gate checks is the *combination*: the seeds, the device, the data set
against the model that reads it (image shape, labels and their classes, the
batch against N, a label fraction that leaves labels), the run to start from
(``--init-from``) and the factors tracking needs.  The data's own content (a
file's arrays, pixel values in [0, 1], a CSV's cells) was checked once by the
reader that made the :class:`~welavae.data.Dataset` (:func:`welavae.data.load`,
:func:`welavae.data.from_arrays`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import RunConfig
from ..data.dataset import Dataset, check_labels, hide_labels
from ..device import check_device
from ..seeding import MAX_SEED
from .init_from import check_init_source

__all__ = ["parse_seeds", "check_seeds", "check_data", "check_run", "Checked", "observed_labels", "MAX_SEEDS"]

#: The most seeds one command may name: a bound on the list built from '--seeds A-B' before anything else.
MAX_SEEDS = 100_000


def parse_seeds(text: str) -> list[int]:
    """'0-7' → [0..7]; '0,1,5' → [0, 1, 5]; '3' → [3] (checked by :func:`check_seeds`)."""
    seeds: list[int] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                lo_i, hi_i = int(lo), int(hi)
                if hi_i < lo_i:
                    raise ValueError
                if hi_i - lo_i + 1 + len(seeds) > MAX_SEEDS:  # before the range is built
                    raise OverflowError
                seeds.extend(range(lo_i, hi_i + 1))
            else:
                seeds.append(int(part))
    except OverflowError:
        raise ValueError(f"--seeds {text!r} names more than {MAX_SEEDS} seeds") from None
    except ValueError:
        raise ValueError(f"--seeds must look like '0-7' or '0,1,2', got {text!r}") from None
    return check_seeds(seeds)


def check_seeds(seeds) -> list[int]:
    """Seeds as ints: at least one, distinct, in 0 … :data:`welavae.seeding.MAX_SEED`."""
    try:
        seeds = [int(s) for s in seeds]
    except (TypeError, ValueError):
        raise ValueError(f"seeds (--seeds) must be integers, got {seeds!r}") from None
    if not seeds:
        raise ValueError("seeds (--seeds): give at least one seed")
    bad = [s for s in seeds if not 0 <= s <= MAX_SEED]
    if bad:
        raise ValueError(f"seeds (--seeds): seed {bad[0]} is outside 0..{MAX_SEED}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds (--seeds) must be distinct, got {seeds}")
    return seeds


def observed_labels(labels, config: RunConfig):
    """(labels the model trains with, observed (N, m) bool): ``label_fraction`` of the samples keep theirs."""
    if labels is None:
        return None, None
    labels = np.asarray(labels, dtype=np.int64)
    if config.data.label_fraction < 1.0:
        labels, _ = hide_labels(labels, config.data.label_fraction, config.data.label_seed)
    return labels, labels >= 0


@dataclass(frozen=True)
class Checked:
    """What the gate passed: the seeds as ints, and the labels the model trains with (``label_fraction``
    applied; int64 (N, m), −1 = missing) with ``observed`` (N, m) bool, or None for a model without labels."""

    seeds: list[int]
    labels: np.ndarray | None
    observed: np.ndarray | None


def check_data(config: RunConfig, data: Dataset) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(labels the model trains with, observed) (:func:`observed_labels`), after checking ``data`` against ``config``.

    Refuses: images the model's shape does not fit, missing labels for a
    model with labels, labels outside their classes, a fraction that leaves
    no label, fewer samples than one batch.
    """
    m = config.model
    x = data.images
    n = len(x)
    if int(np.prod(np.shape(x)[1:])) != m.image_dim:
        raise ValueError(f"images have {int(np.prod(np.shape(x)[1:]))} values but the model expects {m.image_dim} "
                         f"({'x'.join(map(str, m.image_shape))}, H x W x C)")
    y = observed = None
    if m.has_labels:
        if data.labels is None:
            raise ValueError(f"model {config.name!r} needs weak labels (label_dims={m.label_dims}), none given")
        y, observed = observed_labels(check_labels(data.labels, n, m.label_dims), config)
        f = config.data.label_fraction
        if f < 1.0 and n and not (y >= 0).any():
            raise ValueError(f"label_fraction (--label-fraction) {f:g} keeps the labels of round({f:g}·{n}) = "
                             f"{int(round(f * n))} of the {n} samples: none is left to train with")
    b = config.train.batch_size
    if n < b:
        raise ValueError(f"batch_size (--batch-size) {b} is larger than the data set's {n} samples")
    return y, observed


def check_run(config: RunConfig, seeds, data: Dataset, *, device="cpu", resuming: bool = False) -> Checked:
    """Every check of one run (see the module docstring).

    ``resuming``: the run directory holds a checkpoint of this run, so ``--init-from``'s source
    is not read again.
    """
    seeds = check_seeds(seeds)
    check_device(device)
    labels, observed = check_data(config, data)
    if config.train.init_from and not resuming:
        check_init_source(config, seeds)
    if config.train.track_every:
        f = data.factors
        if f is None or np.ndim(f) != 2 or np.shape(f)[1] != 2:
            raise ValueError(f"--track-every needs the ground-truth factors (c1, c2) of Blobs; "
                             f"run {config.name!r} has {'none' if f is None else f'factors of shape {np.shape(f)}'}")
        if config.model.latent_dim < 2:
            raise ValueError("--track-every needs K >= 2 latents (the coordinate MSE pairs two channels)")
    return Checked(seeds, labels, observed)
