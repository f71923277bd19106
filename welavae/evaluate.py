"""Evaluation of trained runs: paper §4.2 (coordinate MSE, eqs. 5–7), training
label accuracy (§4.4), standard disentanglement metrics against both the
Cartesian and the polar factors, and the qualitative figure (Figures 1, 4, 5).

Everything works from what a run directory holds (``mu.npy``,
``factors.npy``, ``label_pred.npy``, ``labels.npy``, the checkpoint), so
any metric can be recomputed without retraining.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from .data.blobs import polar_factors
from .metrics import all_metrics, cartesian_mse, label_accuracy, polar_mse
from .train.run import read_run, write_text
from .train.trainer import CHECKPOINT, load_checkpoint, model_from_checkpoint

__all__ = ["evaluate_seed", "evaluate_arrays", "evaluate_run", "seed_figure", "plot_run", "single_seed_model"]


def _mse_dict(res) -> dict:
    return {"mse": float(res.mse), "channels": list(res.channels), "inverted": [bool(v) for v in res.inverted]}


def evaluate_seed(mu, factors, *, label_pred=None, labels=None, standard: bool = True) -> dict:
    """Metrics of one seed.

    mu: (N, K) encoder means; factors: (N, 2) Cartesian (c1, c2);
    label_pred, labels: (N, m) ints or None.  Returns a JSON-ready dict with
    ``cartesian`` and ``polar`` ({mse, channels, inverted}), ``accuracy``
    (per label, or None) and ``standard`` ({"cartesian": {...}, "polar": {...}}
    of :func:`welavae.metrics.all_metrics`).
    """
    mu = np.asarray(mu, dtype=np.float64)
    out: dict = {}
    if not np.isfinite(mu).all():
        nan = {"mse": math.nan, "channels": None, "inverted": None}
        out.update(cartesian=nan, polar=dict(nan), accuracy=None, standard=None)
        return out
    out["cartesian"] = _mse_dict(cartesian_mse(mu, factors))
    out["polar"] = _mse_dict(polar_mse(mu, factors))
    out["accuracy"] = None
    if label_pred is not None and labels is not None:
        out["accuracy"] = [float(a) for a in label_accuracy(label_pred, labels)]
    if standard:
        out["standard"] = {
            "cartesian": all_metrics(mu, factors),
            "polar": all_metrics(mu, polar_factors(factors)),
        }
    return out


def evaluate_arrays(mu, factors, *, label_pred=None, labels=None, seeds=None, diverged_epoch=None,
                    standard: bool = True) -> list[dict]:
    """:func:`evaluate_seed` for every seed of a run.  mu: (S, N, K); label_pred: (S, N, m)."""
    mu = np.asarray(mu)
    if mu.ndim != 3:
        raise ValueError(f"mu must have shape (S, N, K), got {mu.shape}")
    factors = np.asarray(factors, dtype=np.float64)
    if factors.shape != (mu.shape[1], 2):
        raise ValueError(f"factors must have shape (N={mu.shape[1]}, 2), got {factors.shape}")
    seeds = list(range(len(mu))) if seeds is None else list(seeds)
    rows = []
    for i, seed in enumerate(seeds):
        row = {"seed": int(seed)}
        row["diverged_epoch"] = int(diverged_epoch[i]) if diverged_epoch is not None else -1
        row.update(evaluate_seed(mu[i], factors, label_pred=None if label_pred is None else label_pred[i],
                                 labels=labels, standard=standard))
        rows.append(row)
    return rows


def evaluate_run(run_dir, *, standard: bool = True) -> dict:
    """Evaluate a run directory and write ``RUN_DIR/metrics.json``; returns its content."""
    run = Path(run_dir)
    r = read_run(run)
    if r["factors"] is None:
        raise ValueError(f"{run} has no factors.npy: the coordinate MSE needs the true factors")
    status = r["status"]
    rows = evaluate_arrays(r["mu"], r["factors"], label_pred=r["label_pred"], labels=r["labels"],
                           seeds=status["seeds"], diverged_epoch=status["diverged_epoch"], standard=standard)
    result = {"name": r["config"].name, "config_hash": r["config"].hash(), "seeds": rows}
    write_text(run / "metrics.json", json.dumps(result, indent=2, allow_nan=True) + "\n")
    return result


# ------------------------------------------------------------------ figures ---


def single_seed_model(state: dict, seed: int, device="cpu"):
    """The one-seed network of ``seed`` from a checkpoint state (weights sliced, not retrained)."""
    model, config = model_from_checkpoint(state, device)
    seeds = model.seeds
    if seed not in seeds:
        raise ValueError(f"seed {seed} is not in this run (seeds: {seeds})")
    i = seeds.index(seed)
    from .nn.vae import EnsembleVAE

    one = EnsembleVAE(config.model, [seed]).to(device)
    with torch.no_grad():
        for (p_one, dim_one), (p_all, dim_all) in zip(one.parameter_seed_dims(), model.parameter_seed_dims()):
            one.seed_slice(p_one, dim_one, 0).copy_(model.seed_slice(p_all, dim_all, i))
    one.eval()
    return one, config


@torch.no_grad()
def seed_figure(model, images, mu, logvar, factors, *, title=None, n_originals: int = 8, steps: int = 10):
    """The paper's Figure 1 layout for a one-seed model.

    images: (N, H, W); mu, logvar: (N, K) of this seed; factors: (N, 2).
    Latents are shown in order of increasing mean posterior variance (the
    informative ones first).
    """
    from .plots import heatmaps_from_mu, latent_figure, traversal_grid

    n = len(images)
    size = images.shape[1]
    pick = np.linspace(0, n - 1, n_originals + 2).astype(int)[1:-1]
    dev = next(model.parameters()).device

    def decode(z):
        logits, _ = model.decode(torch.as_tensor(z, dtype=torch.float32, device=dev)[None])
        return torch.sigmoid(logits[0]).cpu().numpy().reshape(-1, size, size)

    recon = decode(mu[pick])
    centre = np.argmin(np.abs(factors - (size - 1) / 2).sum(1))
    traversals = traversal_grid(decode, mu[centre], steps=steps)
    heat = heatmaps_from_mu(mu, size=size)
    order = np.argsort(np.exp(logvar).mean(0))
    return latent_figure(images[pick], recon, traversals, heat, order=list(order), title=title)


def plot_run(run_dir, *, seed: int | None = None, out_dir=None, data=None, data_dir=None) -> list[Path]:
    """Draw the Figure-1 layout (and a 2-D scatter) of one seed of a run; default: the lowest polar MSE.

    Writes ``OUT/<name>_seed<S>.png`` and ``OUT/<name>_seed<S>_scatter.png``
    (OUT defaults to ``RUN_DIR/figures``).  ``data``: optional images (N, H, W)
    to skip regenerating the data set.
    """
    from .plots import latent_scatter, save_figure
    from .train.run import prepare_data

    run = Path(run_dir)
    r = read_run(run)
    seeds = r["status"]["seeds"]
    if seed is None:
        scores = [polar_mse(m, r["factors"]).mse if np.isfinite(m).all() else math.inf for m in r["mu"]]
        seed = seeds[int(np.argmin(scores))]
    if seed not in seeds:
        raise ValueError(f"seed {seed} is not in {run} (seeds: {seeds})")
    i = seeds.index(seed)
    state = load_checkpoint(run / "checkpoints" / CHECKPOINT)
    model, config = single_seed_model(state, seed)
    images = data if data is not None else prepare_data(config, data_dir=data_dir)[0]
    mu, logvar, factors = r["mu"][i], r["logvar"][i], r["factors"]
    pm, cm = polar_mse(mu, factors), cartesian_mse(mu, factors)
    title = f"{config.name}, seed {seed}: polar MSE {pm.mse:.2f}, Cartesian MSE {cm.mse:.2f}"
    out = Path(out_dir) if out_dir is not None else run / "figures"
    paths = [save_figure(seed_figure(model, images, mu, logvar, factors, title=title), out / f"{config.name}_seed{seed}.png")]
    i_phi, j_d = pm.channels
    pair = mu[:, [i_phi, j_d]]
    paths.append(save_figure(latent_scatter(pair, factors, title=f"{config.name} seed {seed}: channels ({i_phi}, {j_d})"),
                             out / f"{config.name}_seed{seed}_scatter.png"))
    return paths
