"""The one gate of a training run: every check that can refuse it, in one place, before anything is written.

:func:`welavae.train.rundir.train_run` calls :func:`check_run` before it takes
the run directory's lock or writes ``config.json``: a refused command leaves
nothing on disk, so the corrected command is never blocked by a half-claimed
directory.  Each refusal is one sentence naming the setting and its flag.
Behind the gate nothing checks again: the trainer trusts what it is given.

What the gate checks is the *combination*: the seeds, the device, the data set
against the model that reads it (image shape, labels and their classes, the
batch against N, a label fraction that leaves labels), the memory the run
will hold against the memory the machine has (:func:`check_memory`), the run
to start from (``--init-from``) and the factors tracking needs.  The data's own content (a
file's arrays, pixel values in [0, 1], a CSV's cells) was checked once by the
reader that made the :class:`~welavae.data.Dataset` (:func:`welavae.data.load`,
:func:`welavae.data.from_arrays`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .. import memory
from ..config import RunConfig
from ..data.dataset import Dataset, check_labels, hide_labels
from ..device import check_device
from ..nn.conv import DECODER_CHANNELS, ENCODER_CHANNELS
from ..nn.vae import EnsembleVAE
from ..seeding import MAX_SEED
from .init_from import check_init_source

__all__ = ["parse_seeds", "check_seeds", "check_data", "check_run", "Checked", "observed_labels", "MAX_SEEDS",
           "estimate_memory", "check_memory", "seed_parameters", "activation_width"]

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


# ------------------------------------------------------------------------------------------------ memory
#
# What a run holds at its largest, in bytes (float32 = 4), for S seeds of P parameters each, batch B, N samples,
# K latents and m labels.  Each term is an upper bound of what the trainer keeps alive (welavae.train.trainer);
# their sum is compared with the memory the machine has (welavae.memory), so the estimate errs high:
#
#   weights, gradients, Adam's two moments       4 · S·P · 4
#   the checkpoint, serialised in memory         3 · S·P · 4  (weights and both moments; on CUDA twice: the
#                                                              host copies, then the bytes written)
#   activations of a step                        S·B · (3·A + 8·B·K) · 4
#       A = the values one sample makes in one seed's network (every layer's width, the image logits D
#       included: activation_width); 3 of each (the value, its ReLU, its gradient); 8 of the TC estimator's
#       (S, B, B, K) pairwise densities (the densities, their sums and logsumexp temporaries, their gradients)
#   an epoch's noise and the next one's          2 · S·N·K · 4  (drawn ahead in the background)
#   the encodings (mu, logvar, label_pred)       S·N·(2K·4 + m)
#   the images, on a CUDA device                 N·D · (bytes per stored value)
#
# On the CPU the images are not counted: they were read before the gate, so the memory available already
# excludes them (the trainer uses the array as it is).  P comes from the model itself, built for one seed on
# PyTorch's meta device (shapes without storage): every parameter is stacked per seed, so S seeds hold S·P.

#: Copies held of each kind of value (see above).
_STATE, _CHECKPOINT, _LAYER_COPIES, _TC_COPIES, _NOISE_EPOCHS = 4, 3, 3, 8, 2


def seed_parameters(config: RunConfig) -> int:
    """P: the parameters of one seed's network (built on the meta device: no memory is allocated)."""
    with torch.device("meta"):
        model = EnsembleVAE(config.model, [0])
    return sum(p.numel() for p in model.parameters())


def activation_width(config: RunConfig) -> int:
    """A: the values one sample makes in one seed's network in a forward pass, every layer's output summed."""
    m = config.model
    h, w, _ = m.image_shape
    labels = sum(m.label_dims)
    conv_maps = sum(c * (h >> (i + 1)) * (w >> (i + 1)) for i, c in enumerate(ENCODER_CHANNELS))
    if m.arch == "conv":
        dense = 256 + 2 * m.latent_dim + 256 + ENCODER_CHANNELS[-1] * (h // 16) * (w // 16)
        deconv_maps = sum(c * (h >> (3 - i)) * (w >> (3 - i)) for i, c in enumerate(DECODER_CHANNELS))
        return conv_maps + dense + deconv_maps + m.image_dim + labels
    encoder = sum(m.hidden) + 2 * m.latent_dim + (conv_maps if m.encoder == "conv" else 0)
    return encoder + sum(m.hidden) + m.image_dim + labels


def estimate_memory(config: RunConfig, seeds: int, n: int, *, image_bytes: int = 4, device="cpu",
                    params: int | None = None) -> dict:
    """The bytes a run of ``seeds`` seeds on ``n`` samples holds, by part: ``{part: (bytes, where)}`` with
    ``where`` "device" or "host" (the CPU's and MPS's memory is the host's).  ``image_bytes``: bytes per stored
    image value (4 for float32, 1 for bool/uint8 pixels); ``params``: :func:`seed_parameters` when known.
    The formula is in the comment above."""
    s, b, k = int(seeds), config.train.batch_size, config.model.latent_dim
    p = seed_parameters(config) if params is None else int(params)
    cuda = torch.device(device).type == "cuda"
    dev = "device" if cuda else "host"
    parts = {
        "weights, gradients and Adam state": (_STATE * s * p * 4, dev),
        "the checkpoint": (_CHECKPOINT * s * p * 4 * (2 if cuda else 1), "host"),
        "activations of a step": (s * b * (_LAYER_COPIES * activation_width(config) + _TC_COPIES * b * k) * 4, dev),
        "noise": (_NOISE_EPOCHS * s * n * k * 4, dev),
        "encodings": (s * n * (2 * k * 4 + config.model.num_labels), "host"),
    }
    if cuda:
        parts["images on the device"] = (n * config.model.image_dim * image_bytes, dev)
    return parts


#: The flag that shrinks each part, and what to say.
_REMEDY = {
    "weights, gradients and Adam state": ("--seeds", "train fewer seeds per run (several --out directories)"),
    "the checkpoint": ("--seeds", "train fewer seeds per run (several --out directories)"),
    "activations of a step": ("--batch-size", "use a smaller --batch-size (or fewer --seeds)"),
    "noise": ("--seeds", "train fewer seeds per run (or on a --subset of the data)"),
    "encodings": ("--seeds", "train fewer seeds per run (or on a --subset of the data)"),
    "images on the device": ("--subset", "train on a --subset of the data"),
}


def check_memory(config: RunConfig, seeds, data: Dataset, *, device="cpu") -> None:
    """Refuse, in one sentence naming the flag to change, a run that cannot fit in the memory this machine has
    (:func:`estimate_memory` against :func:`welavae.memory.available`, the device's and the host's)."""
    s, n, params = len(seeds), len(data.images), seed_parameters(config)
    parts = estimate_memory(config, s, n, image_bytes=np.asarray(data.images).dtype.itemsize, device=device,
                            params=params)
    places = {"host": "cpu"} if torch.device(device).type != "cuda" else {"host": "cpu", "device": device}
    for where, dev in places.items():
        mine = {name: size for name, (size, w) in parts.items() if w == where}
        need = sum(mine.values())
        have, said = memory.available(dev)
        if need <= have:
            continue
        top = max(mine, key=mine.get)
        flag, remedy = _REMEDY[top]
        if top in ("weights, gradients and Adam state", "the checkpoint") and need / s > have:
            # One seed alone does not fit: the network is too large, not the number of seeds.
            flag, remedy = (("--hidden", f"use smaller --hidden layers (each unit of the first reads all "
                                         f"{config.model.image_dim:,} values of an image) or smaller images")
                            if config.model.arch == "mlp" else
                            ("--arch conv", "use smaller images (the conv network grows with H x W)"))
        flag = {"--seeds": f"--seeds ({s:,} seeds)", "--batch-size": f"--batch-size {config.train.batch_size}",
                "--hidden": f"--hidden {','.join(map(str, config.model.hidden))}"}.get(flag, flag)
        largest = ", ".join(f"{name} {memory.size_text(mine[name])}"
                            for name in sorted(mine, key=mine.get, reverse=True)[:2])
        raise ValueError(f"{flag}: this run needs about {memory.size_text(need)} of memory ({s:,} seed"
                         f"{'s' if s != 1 else ''} of {params:,} parameters, {n:,} images of "
                         f"{'x'.join(map(str, config.model.image_shape))}; largest: {largest}) and "
                         f"{memory.size_text(have)} is {said}; {remedy}")


def check_run(config: RunConfig, seeds, data: Dataset, *, device="cpu", resuming: bool = False) -> Checked:
    """Every check of one run (see the module docstring).

    ``resuming``: the run directory holds a checkpoint of this run, so ``--init-from``'s source
    is not read again.
    """
    seeds = check_seeds(seeds)
    check_device(device)
    labels, observed = check_data(config, data)
    check_memory(config, seeds, data, device=device)
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
