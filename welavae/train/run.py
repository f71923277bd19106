"""A training run on disk: data preparation, training, and the run directory.

``DIR/config.json``      resolved :class:`~welavae.config.RunConfig`
``DIR/checkpoints/``     ``last.pt`` (weights-only torch file)
``DIR/mu.npy``           (S, N, K) float32 encoder means, seeds in the order given
``DIR/logvar.npy``       (S, N, K) float32 encoder log-variances
``DIR/label_pred.npy``   (S, N, m) int8 label predictions at z = μ (models with labels)
``DIR/factors.npy``      (N, 2) generative factors (when known)
``DIR/labels.npy``       (N, m) weak labels (models with labels)
``DIR/history.csv``      per-epoch loss terms per seed
``DIR/status.json``      seeds, diverged epochs, wall time
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from ..config import RunConfig
from ..data.blobs import weak_labels
from ..data.cache import atomic_write, load_blobs
from ..data.user import load_npz
from .trainer import TERMS, TrainResult, encode_dataset, train

__all__ = ["prepare_data", "train_run", "parse_seeds", "write_npy", "write_text", "read_run"]


def parse_seeds(text: str) -> list[int]:
    """'0-7' → [0..7]; '0,1,5' → [0, 1, 5]; '3' → [3]."""
    seeds: list[int] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                lo_i, hi_i = int(lo), int(hi)
                if hi_i < lo_i:
                    raise ValueError
                seeds.extend(range(lo_i, hi_i + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise ValueError(f"seeds must look like '0-7' or '0,1,2', got {text!r}") from None
    if min(seeds) < 0:
        raise ValueError(f"seeds must be >= 0, got {text!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {text!r}")
    return seeds


def prepare_data(config: RunConfig, *, data_dir=None):
    """(images (N, H, W) float32, labels (N, m) int64 or None, factors (N, 2) or None) for a config."""
    d = config.data
    if d.source == "npz":
        user = load_npz(d.path, label_dim=config.model.label_dim or None)
        labels = user.labels if config.model.has_labels else None
        if config.model.has_labels and labels is None:
            raise ValueError(f"{d.path} has no 'labels' array but model {config.name!r} needs weak labels")
        return user.images, labels, user.factors
    blobs = load_blobs(d.variants, size=d.size, seed=d.seed, shape=d.shape, sigma_range=d.sigma_range, data_dir=data_dir)
    labels = weak_labels(blobs.factors, config.model.label_dim, size=d.size) if config.model.has_labels else None
    return blobs.images, labels, blobs.factors


def write_npy(path, array) -> None:
    atomic_write(path, lambda f: np.save(f, np.asarray(array), allow_pickle=False))


def write_text(path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def history_csv(result_history: np.ndarray, seeds) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["epoch", "seed", *TERMS])
    for e, rows in enumerate(result_history):
        for s, row in zip(seeds, rows):
            w.writerow([e + 1, s, *("" if math.isnan(v) else f"{v:.6g}" for v in row)])
    return buf.getvalue()


def train_run(
    config: RunConfig,
    seeds,
    out_dir,
    *,
    data_dir=None,
    device="cpu",
    progress=None,
    on_epoch=None,
    data=None,
) -> TrainResult:
    """Train ``seeds`` of ``config`` and write the run directory (see module docstring).

    Resumes from ``out_dir/checkpoints`` when a checkpoint of the same run is there.
    ``data``: optional (images, labels, factors) to skip :func:`prepare_data`.
    """
    out = Path(out_dir)
    images, labels, factors = data if data is not None else prepare_data(config, data_dir=data_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = out / "config.json"
    if cfg_path.exists():
        try:
            old = RunConfig.from_json(cfg_path.read_text())
        except (ValueError, json.JSONDecodeError):
            old = None
        if old is None or old.to_dict() != config.to_dict():
            raise ValueError(f"{out} holds a run with another configuration; use a new --out directory")
    write_text(cfg_path, config.to_json() + "\n")
    result = train(config, seeds, images, labels, device=device, checkpoint_dir=out / "checkpoints",
                   progress=progress, on_epoch=on_epoch)
    mu, logvar, pred = encode_dataset(result.model, images, labels, batch_size=config.train.eval_batch_size)
    write_npy(out / "mu.npy", mu.astype(np.float32))
    write_npy(out / "logvar.npy", logvar.astype(np.float32))
    if pred is not None:
        write_npy(out / "label_pred.npy", pred.astype(np.int8))
        write_npy(out / "labels.npy", labels.astype(np.int64))
    if factors is not None:
        write_npy(out / "factors.npy", np.asarray(factors, dtype=np.float64))
    write_text(out / "history.csv", history_csv(result.history, result.seeds))
    status = {
        "name": config.name,
        "config_hash": config.hash(),
        "seeds": result.seeds,
        "diverged_epoch": [int(e) for e in result.diverged_epoch],
        "epochs": result.epochs_done,
        "resumed_from": result.resumed_from,
        "seconds": result.seconds,
        "device": str(device),
    }
    write_text(out / "status.json", json.dumps(status, indent=2) + "\n")
    return result


def read_run(run_dir) -> dict:
    """Load a run directory's arrays and metadata (raises ValueError naming a missing file)."""
    run = Path(run_dir)
    needed = ["config.json", "mu.npy", "status.json"]
    for name in needed:
        if not (run / name).exists():
            raise ValueError(f"{run} is not a finished run directory: {name} is missing")
    out = {
        "config": RunConfig.from_json((run / "config.json").read_text()),
        "status": json.loads((run / "status.json").read_text()),
        "mu": np.load(run / "mu.npy", allow_pickle=False),
    }
    for name in ("logvar", "label_pred", "labels", "factors"):
        p = run / f"{name}.npy"
        out[name] = np.load(p, allow_pickle=False) if p.exists() else None
    return out
