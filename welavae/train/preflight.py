"""Every check that can refuse a training run, in one place, before anything is written.

:func:`welavae.train.rundir.train_run` calls :func:`check_run` before it takes
the run directory's lock or writes ``config.json``: a refused command leaves
nothing on disk, so the corrected command is never blocked by a half-claimed
directory.  Each refusal is one sentence naming the setting and its flag.
The trainer calls :func:`check_data` too, for callers of
:func:`welavae.train.trainer.train` that bring their own arrays.
"""
from __future__ import annotations

import numpy as np

from ..config import RunConfig
from ..data.user import check_images, check_labels
from ..seeding import MAX_SEED

__all__ = ["check_run", "check_seeds", "check_device", "check_data"]


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


def check_device(device) -> None:
    """Refuse a device torch does not know, or a CUDA device this machine does not have."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"--device {device!r} is not a device torch knows; use cpu or cuda") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device!r}: no CUDA device is available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"--device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")


def check_data(config: RunConfig, images, labels) -> tuple[np.ndarray, np.ndarray | None]:
    """(images (N, H, W) or (N, D), labels int64 (N, m) or None) checked against ``config``.

    Float images come back as float32; bool/uint8 ones as they are (no float
    copy of the set: the trainer converts each batch with ``to_float``).

    ``labels`` are those the model trains with (after ``label_fraction``
    hid some).  Refuses: images the model's shape does not fit, missing
    labels for a model with labels, a fraction that leaves no label, fewer
    samples than one batch.
    """
    x = check_images(images, keep_pixels=True)
    m = config.model
    if x[0].size != m.image_dim:
        raise ValueError(f"images have {x[0].size} values but the model expects {m.image_dim} "
                         f"({'x'.join(map(str, m.image_shape))}, H x W x C)")
    y = None
    if m.has_labels:
        if labels is None:
            raise ValueError(f"model {config.name!r} needs weak labels (label_dims={m.label_dims}), none given")
        f = config.data.label_fraction
        if f < 1.0 and len(labels) and not (np.asarray(labels) >= 0).any():
            raise ValueError(f"label_fraction (--label-fraction) {f:g} keeps the labels of round({f:g}·{len(x)}) = "
                             f"{int(round(f * len(x)))} of the {len(x)} samples: none is left to train with")
        y = check_labels(labels, len(x), m.label_dims)
    b = config.train.batch_size
    if len(x) < b:
        raise ValueError(f"batch_size (--batch-size) {b} is larger than the data set's {len(x)} samples")
    return x, y


def check_run(config: RunConfig, seeds, images, labels, *, device="cpu") -> list[int]:
    """All of the above for one run; returns the seeds as ints."""
    seeds = check_seeds(seeds)
    check_device(device)
    check_data(config, images, labels)
    return seeds
