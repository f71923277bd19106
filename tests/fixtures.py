"""Helpers shared by several test files: configs, data, and the command line run as a user runs it.

Pytest fixtures shared by several files are in ``tests/conftest.py``; sweep plans in ``tests/plans.py``.
"""
import contextlib
import csv
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from welavae.config import DataConfig, TrainConfig, make_run_config
from welavae.data import Dataset
from welavae.train import train

REPO = ROOT = Path(__file__).resolve().parents[1]
V020 = ROOT / "tests" / "data" / "run_0.2.0"  # run directories written by welavae 0.2.0 (commit 4ca4b81)
SIZE = 16  # 16×16 Blobs, N = 256: seconds per run
SPEC = "angle(posX,posY):3, distance(posX,posY):3"  # the paper's two weak labels on a benchmark's position


# ------------------------------------------------------------------------------------ configs

def blobs_cfg(model="wela", epochs=2, batch=64, hidden=(32, 16), lr=1e-3, **kw):
    """A run on 64×64 Blobs with one variant (conftest's ``blobs``); ``kw`` go to TrainConfig."""
    return make_run_config(model, label_dim=2 if model == "wela" else None, hidden=hidden,
                           data=DataConfig(variants=1),
                           train=TrainConfig(epochs=epochs, batch_size=batch, lr=lr, **kw))


def cfg16(model="wela", *, epochs=3, encoder_input="image", latent_dim=2, hidden=(16, 8), **train_kw):
    """A run on 16×16 Blobs (conftest's ``blobs16``), checkpointed every epoch."""
    return make_run_config(model, label_dim=2 if model == "wela" else None, latent_dim=latent_dim, hidden=hidden,
                           encoder_input=encoder_input, data=DataConfig(variants=1, size=SIZE),
                           train=TrainConfig(epochs=epochs, batch_size=32, lr=1e-3, checkpoint_every=1, **train_kw))


def small_cfg(epochs=2, **kw):
    """A WeLa-VAE run on conftest's ``small`` subset; ``kw`` go to the model."""
    return make_run_config("wela", label_dim=kw.pop("label_dim", 2), hidden=(32, 16), data=DataConfig(variants=1),
                           train=TrainConfig(epochs=epochs, batch_size=64, lr=1e-3), **kw)


def as_dataset(images, labels, factors):
    """What welavae.data.load gives train_run for Blobs with p = 2 (or without labels)."""
    return Dataset(images=images, labels=labels, label_dims=(2, 2) if labels is not None else (), factors=factors)


# ------------------------------------------------------------------------------------ training

class _Stop(Exception):
    pass


def train_interrupted(c, seeds, images, labels, checkpoint, after_epoch):
    """Train with checkpoints and stop once ``after_epoch`` epochs are done, as a kill would."""

    def interrupt(epoch, _):
        if epoch == after_epoch:
            raise _Stop

    with pytest.raises(_Stop):
        train(c, seeds, images, labels, checkpoint=checkpoint, progress=False, on_epoch=interrupt)


def _tracking(path):
    """The rows of a run's tracking.csv."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------------------------ data

def colour_blobs(n, size=16, seed=0):
    """(n, size, size, 3) images: a Gaussian blob of a random colour at a random place; labels (n, 2)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    c = rng.integers(2, size - 2, size=(n, 2))
    colour = rng.random((n, 3))
    blob = np.exp(-((yy - c[:, 0, None, None]) ** 2 + (xx - c[:, 1, None, None]) ** 2) / 6.0)
    images = (blob[..., None] * colour[:, None, None, :]).astype(np.float32)
    labels = np.stack([c[:, 0] >= size // 2, colour.argmax(1)], 1).astype(np.int64)
    return images, labels


def write_png(path, array, mode):
    """array (uint8 values) as a PNG in Pillow's ``mode`` ("L", "RGB", "RGBA")."""
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode=mode).save(path)


def _tiny_npz(path, n=64, size=8, seed=0):
    """n random 8×8 images in [0, 1] with two weak labels of 3 and 2 classes."""
    rng = np.random.default_rng(seed)
    labels = np.stack([np.arange(n) % 3, np.arange(n) % 2], axis=1)
    np.savez(path, images=rng.random((n, size, size)).astype(np.float32), labels=labels)
    return path


# ------------------------------------------------------------------------------------ the command line, processes

LOCK_NAME = ".welavae.lock"  # welavae.lock.LOCK_NAME (a literal: these probes also ran on the code before it)
TINY = ["--hidden", "16", "--latent-dim", "2", "--batch-size", "16", "--epochs", "1"]


def _env():
    return dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "welavae.cli", *map(str, args)], capture_output=True, text=True,
                          env=_env(), **kw)


def _error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines and "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("welavae: error:"), err
    return lines[0]


def _files(d: Path) -> dict:
    """Every file under d (but the lock) → its bytes."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file() and p.name != LOCK_NAME}


def _wait_for(path: Path, proc, timeout=300.0):
    t = time.monotonic()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t < timeout, f"{path} never appeared"
        time.sleep(0.02)


def fake_gpus(monkeypatch, count):
    """This machine as one with ``count`` CUDA devices (torch.cuda monkeypatched)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


# ------------------------------------------------------------------------------------ hostile input

def cli_refuses(capsys, *argv, out=None) -> str:
    """``welavae ARGV`` in this process: exit status 2, one line on stderr naming no traceback, and ``out``
    (the output it was asked to write) not there afterwards.  Returns the line."""
    from welavae.cli import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's refusal of a flag
        code = e.code
    line = _error_line(capsys.readouterr().err)
    assert code == 2, line
    assert out is None or not Path(out).exists(), f"{out} was written"
    return line


class AllocationRefused(AssertionError):
    """An array larger than the test's bound was asked for."""


@contextlib.contextmanager
def bounded_allocation(max_elements: int):
    """numpy's allocating constructors (empty, zeros, ones, full, arange) refuse, while inside, any array of
    more than ``max_elements`` elements: a reader must refuse hostile input before it allocates for it."""
    def guard(fn, size_of):
        def guarded(*args, **kwargs):
            n = size_of(*args, **kwargs)
            if n > max_elements:
                raise AllocationRefused(f"np.{fn.__name__} of {n} elements (bound {max_elements})")
            return fn(*args, **kwargs)
        return guarded

    def shape_size(shape, *args, **kwargs):
        return math.prod(shape) if isinstance(shape, (tuple, list)) else int(shape)

    def arange_size(*args, **kwargs):
        start, stop, step = (0, args[0], 1) if len(args) == 1 else (tuple(args) + (1,))[:3]
        stop = kwargs.get("stop", stop)
        return max(0, math.ceil((stop - start) / (kwargs.get("step") or step)))

    saved = {name: getattr(np, name) for name in ("empty", "zeros", "ones", "full", "arange")}
    try:
        for name, fn in saved.items():
            setattr(np, name, guard(fn, arange_size if name == "arange" else shape_size))
        yield
    finally:
        for name, fn in saved.items():
            setattr(np, name, fn)


def one_sentence(e: BaseException) -> str:
    """The message of a refusal, checked to be one line; returns it."""
    text = str(e)
    assert text and "\n" not in text and "Traceback" not in text, text
    return text
