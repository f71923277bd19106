"""Evaluation of trained runs: paper §4.2 (coordinate MSE, eqs. 5–7), training
label accuracy (§4.4), standard disentanglement metrics against both the
Cartesian and the polar factors, and the qualitative figure (Figures 1, 4, 5).

Everything works from what a run directory holds (:class:`welavae.run.Run`:
``mu.npy``, ``logvar.npy``, ``factors.npy``, ``label_pred.npy``,
``labels.npy``, ``observed.npy``, the checkpoint), so any metric can be
recomputed without retraining.

Label accuracy is reported on the labels the model was trained with
(``observed``) and, when some were hidden (``--label-fraction``), on the
hidden ones.  Active latents: :func:`welavae.metrics.latents.active_latents`
(mean posterior variance below 0.5).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .data.dataset import to_float
from .lock import locking
from .metrics import label_accuracy
from .metrics.latents import ACTIVE_VARIANCE, active_latents
from .plots import heatmaps_from_mu, latent_figure, latent_scatter, save_figure, traversal_grid
from .run import Run
from .selection import DEFAULT_CRITERION, rank_seeds
from .truth import GroundTruth, blobs_truth, ground_truth

__all__ = ["evaluate_seed", "evaluate_arrays", "evaluate_run", "seed_lines", "seed_figure", "plot_run", "figure_task"]


def figure_task(config) -> str:
    """The task a run's best seed is chosen by: ``"cartesian"`` for a model that reads no
    labels (β-TCVAE, the paper's Figure 4a), ``"polar"`` for one steered by weak labels (Figure 5)."""
    return "polar" if config.model.has_labels else "cartesian"


def _mse_dict(res) -> dict:
    return {"mse": float(res.mse), "channels": list(res.channels), "inverted": [bool(v) for v in res.inverted]}


def _truth(factors) -> GroundTruth | None:
    """A :class:`GroundTruth`, or Blobs' (N, 2) centres as one, or None."""
    if factors is None or isinstance(factors, GroundTruth):
        return factors
    return blobs_truth(factors)


def _accuracies(label_pred, labels, observed) -> dict:
    """accuracy (on the labels trained with) and accuracy_hidden (on the hidden ones, None if none were)."""
    if label_pred is None or labels is None:
        return {"accuracy": None, "accuracy_hidden": None}
    observed = (np.asarray(labels) >= 0) if observed is None else np.asarray(observed, dtype=bool)
    hidden = (np.asarray(labels) >= 0) & ~observed

    def listed(a):
        return [None if math.isnan(v) else float(v) for v in a]

    return {"accuracy": listed(label_accuracy(label_pred, labels, mask=observed)),
            "accuracy_hidden": listed(label_accuracy(label_pred, labels, mask=hidden)) if hidden.any() else None}


def evaluate_seed(mu, factors, *, label_pred=None, labels=None, observed=None, logvar=None,
                  standard: bool = True) -> dict:
    """Metrics of one seed.

    mu: (N, K) encoder means; factors: (N, 2) Cartesian (c1, c2) of Blobs, a
    :class:`welavae.truth.GroundTruth` (any data set's factors), or None (then
    only the label accuracies and active latents);
    label_pred, labels: (N, m) ints or None (labels −1 = unknown);
    observed: (N, m) bool, the labels trained with (default: all known ones);
    logvar: (N, K) for the active latents.  Returns a JSON-ready dict with
    ``cartesian`` and ``polar`` (and ``rotated`` for sum/diff labels) ({mse,
    channels, inverted}), ``accuracy`` and ``accuracy_hidden`` (per label, or
    None), ``active_latents`` and ``standard`` (one entry per factor set of the
    truth: Blobs' ``cartesian`` and ``polar``, a benchmark's ``factors`` and
    ``label_coordinates``; see :mod:`welavae.truth`).
    """
    truth = _truth(factors)
    mu = np.asarray(mu, dtype=np.float64)
    out: dict = {}
    if not np.isfinite(mu).all():
        nan = {"mse": math.nan, "channels": None, "inverted": None}
        out.update(cartesian=nan, polar=dict(nan), accuracy=None, accuracy_hidden=None, active_latents=None,
                   standard=None)
        return out
    out["active_latents"] = None if logvar is None else int(active_latents(logvar).sum())
    out.update(_accuracies(label_pred, labels, observed))
    if truth is None:
        return out
    if truth.pair is not None:
        out.update({system: _mse_dict(truth.mse(mu, system)) for system in truth.systems})
    out["standard"] = truth.standard(mu) if standard else None
    return out


STANDARD = ("best", "all", "none")


def _standard_choice(standard) -> str:
    choice = {True: "all", False: "none"}.get(standard, standard)
    if choice not in STANDARD:
        raise ValueError(f"standard must be one of {STANDARD}, got {standard!r}")
    return choice


def evaluate_arrays(mu, factors, *, label_pred=None, labels=None, observed=None, logvar=None, seeds=None,
                    diverged_epoch=None, standard="best") -> list[dict]:
    """:func:`evaluate_seed` for every seed of a run.  mu, logvar: (S, N, K); label_pred: (S, N, m).

    ``standard``: the disentanglement_lib metrics (a gradient-boosted classifier
    per factor, the slow part of an evaluation: docs/performance.md) for ``"all"`` seeds, the
    ``"best"`` one (lowest polar MSE; the default), or ``"none"``.
    """
    choice = _standard_choice(standard)
    mu = np.asarray(mu)
    if mu.ndim != 3:
        raise ValueError(f"mu must have shape (S, N, K), got {mu.shape}")
    if factors is not None and not isinstance(factors, GroundTruth):
        factors = np.asarray(factors, dtype=np.float64)
        if factors.shape != (mu.shape[1], 2):
            raise ValueError(f"factors must have shape (N={mu.shape[1]}, 2), got {factors.shape}")
    truth = _truth(factors)
    seeds = list(range(len(mu))) if seeds is None else list(seeds)
    rows = []
    for i, seed in enumerate(seeds):
        row = {"seed": int(seed)}
        row["diverged_epoch"] = int(diverged_epoch[i]) if diverged_epoch is not None else -1
        row.update(evaluate_seed(mu[i], truth, label_pred=None if label_pred is None else label_pred[i],
                                 labels=labels, observed=observed, logvar=None if logvar is None else logvar[i],
                                 standard=choice == "all"))
        rows.append(row)
    if choice == "best" and truth is not None:
        # The seed of lowest MSE in the labels' system (polar on Blobs); the first seed without a pair.
        task = [(r[truth.task]["mse"] if truth.pair is not None else 0.0)
                if r["diverged_epoch"] < 0 and np.isfinite(mu[i]).all() else math.inf for i, r in enumerate(rows)]
        if min(task, default=math.inf) < math.inf:
            i = int(np.argmin(task))
            rows[i]["standard"] = truth.standard(np.asarray(mu[i], dtype=np.float64))
    return rows


def seed_lines(rows: list[dict]) -> list[str]:
    """One line per seed of :func:`evaluate_arrays`' rows: its MSEs, label accuracies and active latents."""
    lines = []
    for row in rows:
        acc, hidden = row["accuracy"], row["accuracy_hidden"]
        line = f"seed {row['seed']:3d}"
        if "polar" in row:
            line += f"  polar MSE {row['polar']['mse']:9.2f}  Cartesian MSE {row['cartesian']['mse']:9.2f}"
        if "rotated" in row:
            line += f"  rotated MSE {row['rotated']['mse']:9.2f}"
        if acc:
            line += "  acc " + " ".join("-" if a is None else f"{a:.3f}" for a in acc)
        if hidden:
            line += "  acc hidden " + " ".join("-" if a is None else f"{a:.3f}" for a in hidden)
        if row.get("active_latents") is not None:
            line += f"  active latents {row['active_latents']}"
        lines.append(line)
    return lines


def run_truth(run: Run) -> GroundTruth | None:
    """The :class:`~welavae.truth.GroundTruth` of a run (from its config and ``factors.npy``), or None."""
    return ground_truth(run.config, run.array("factors"))


@locking("run_dir", create=False)  # it writes metrics.json into the run
def evaluate_run(run_dir, *, standard="best") -> dict:
    """Evaluate a run directory and write ``RUN_DIR/metrics.json``; returns its content.

    ``standard``: see :func:`evaluate_arrays`.  Without true factors (a
    user's own data) the coordinate MSE and the standard metrics are left
    out; accuracies and active latents remain.
    """
    run = Run(run_dir)
    config = run.config
    rows = evaluate_arrays(run.mu, run_truth(run), label_pred=run.array("label_pred"),
                           labels=run.array("labels"), observed=run.array("observed"), logvar=run.array("logvar"),
                           seeds=run.seeds, diverged_epoch=run.diverged_epoch, standard=standard)
    for row, gamma in zip(rows, run.gamma):
        row["gamma"] = gamma
    result = {"name": config.name, "config_hash": config.hash(), "active_variance": ACTIVE_VARIANCE,
              "seeds": rows}
    run.write_json(Run.METRICS, result)
    return result


# ------------------------------------------------------------------ figures ---


def seed_figure(model, images, mu, logvar, factors, *, title=None, n_originals: int = 8, steps: int = 10):
    """The paper's Figure 1 layout for a one-seed model.

    images: (N, H, W) or (N, H, W, C) (float, or a benchmark's bool/uint8); mu, logvar: (N, K) of
    this seed; factors: Blobs' (N, 2), a :class:`~welavae.truth.GroundTruth`, or None for data
    without true factors.  The traversals start from the sample nearest the middle of the
    position (of the codes' median without factors).  Heat maps: each latent's mean by position —
    Blobs' full grid (N a multiple of H²), or a benchmark's pair of class-index factors; other
    data get the figure without them.  Latents are shown in order of increasing mean posterior
    variance (the informative ones first).
    """
    import torch

    truth = _truth(factors)
    n = len(images)
    size = images.shape[1]
    pick = np.linspace(0, n - 1, n_originals + 2).astype(int)[1:-1]
    dev = next(model.parameters()).device

    def decode(z):
        with torch.no_grad():
            logits, _ = model.decode(torch.as_tensor(z, dtype=torch.float32, device=dev)[None])
        return torch.sigmoid(logits[0]).cpu().numpy().reshape(-1, *images.shape[1:])

    recon = decode(mu[pick])
    if truth is not None and truth.pair is not None:
        middle = (size - 1) / 2 if truth.paper else np.asarray(truth.widths) / 2
        centre = np.argmin(np.abs(truth.pair - middle).sum(1))
    else:
        centre = np.argmin(np.abs(mu - np.median(mu, axis=0)).sum(1))
    traversals = traversal_grid(decode, mu[centre], steps=steps)
    if truth is not None and truth.paper:
        heat = heatmaps_from_mu(mu, size=size) if n % (size * size) == 0 else None
    else:
        heat = None if truth is None else truth.heatmaps(mu)
    order = np.argsort(np.exp(logvar).mean(0))
    return latent_figure(to_float(np.asarray(images[pick])), recon, traversals, heat, order=list(order), title=title)


@locking("run_dir", create=False)  # it writes RUN_DIR/figures (by default)
def plot_run(run_dir, *, seed: int | None = None, out_dir=None, data=None, data_dir=None) -> list[Path]:
    """Draw the Figure-1 layout (and a 2-D scatter) of one seed of a run; default: the seed of lowest
    MSE on the run's :func:`figure_task` (Cartesian without labels, the labels' system — polar on
    Blobs — with them).  A run without true factors (your own data) gets the traversals of the
    seed ranked first by :func:`welavae.selection.rank_seeds` (weak-label alignment, or the
    training loss for a model without labels), and no heat maps or scatter.

    Writes ``OUT/<name>_seed<S>.png`` and ``OUT/<name>_seed<S>_scatter.png``
    (OUT defaults to ``RUN_DIR/figures``).  ``data``: optional images (N, H, W)
    to skip reading the data set again (:func:`welavae.data.load`).
    """
    run = Run(run_dir)
    seeds, truth = run.seeds, run_truth(run)
    if truth is None or truth.pair is None:
        return [_plot_without_factors(run, seed, out_dir, data, data_dir)]
    task = truth.task if figure_task(run.config) == "polar" else "cartesian"
    if seed is None:
        scores = [truth.mse(m, task).mse if np.isfinite(m).all() else math.inf for m in run.mu]
        seed = seeds[int(np.argmin(scores))]
    if seed not in seeds:
        raise ValueError(f"seed {seed} is not in {run.path} (seeds: {seeds})")
    i = seeds.index(seed)
    model, config = run.load_model().subset([seed]), run.config
    images = data if data is not None else run.data(data_dir=data_dir).images
    mu, logvar = run.mu[i], run.array("logvar")[i]
    pm, cm = truth.mse(mu, truth.task), truth.mse(mu, "cartesian")
    title = f"{config.name}, seed {seed}: {truth.task} MSE {pm.mse:.2f}, Cartesian MSE {cm.mse:.2f}"
    out = Path(out_dir) if out_dir is not None else run.path / Run.FIGURES
    figure = seed_figure(model, images, mu, logvar, truth, title=title)
    paths = [save_figure(figure, out / f"{config.name}_seed{seed}.png")]
    i, j = (pm if task != "cartesian" else cm).channels
    size = 64 if truth.paper else int(max(truth.widths)) + 1
    paths.append(save_figure(latent_scatter(mu[:, [i, j]], truth.pair, size=size,
                                            title=f"{config.name} seed {seed}: channels ({i}, {j})"),
                             out / f"{config.name}_seed{seed}_scatter.png"))
    return paths


def _plot_without_factors(run: Run, seed, out_dir, data, data_dir) -> Path:
    """The traversals of one seed of a run on data without true factors (see :func:`plot_run`)."""
    config, seeds = run.config, run.seeds
    if seed is None:
        seed = rank_seeds(run, by=DEFAULT_CRITERION if config.model.has_labels else "loss")["ranking"][0]
    if seed not in seeds:
        raise ValueError(f"seed {seed} is not in {run.path} (seeds: {seeds})")
    i = seeds.index(seed)
    images = data if data is not None else run.data(data_dir=data_dir).images
    figure = seed_figure(run.load_model().subset([seed]), images, run.mu[i], run.array("logvar")[i], None,
                         title=f"{config.name}, seed {seed}")
    out = Path(out_dir) if out_dir is not None else run.path / Run.FIGURES
    return save_figure(figure, out / f"{config.name}_seed{seed}.png")
