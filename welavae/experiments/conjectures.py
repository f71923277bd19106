"""The ``conjectures`` preset: the paper's last two §5 claims, measured (issue 23).

(a) "Disentangled representations learned by WeLa-VAE can be useful for
downstream tasks which relate to the given weak labels."  For β-TCVAE,
WeLa-VAE p = 2 with all and with 1 % of the labels, and WeLa-VAE with the
label-free encoder, and beside them the raw pixels reduced by PCA, the
downstream accuracy of disentanglement_lib's protocol
(:func:`welavae.metrics.downstream_task`, logistic regression and gradient
boosting, four training sizes) on targets :data:`TARGETS`: the two weak
labels themselves, 10 bins of the angle and of the distance, 10 bins of c1
and of c2 — so the table shows what a polar code gains on polar tasks and
costs on Cartesian ones.  Train and test samples come from one seeded split
with the positions grouped (:func:`welavae.metrics.split_indices`): no test
position is ever a training one.  The PCA is fitted on the training split only.

(b) A WeLa-VAE whose encoder reads no labels "could be trained in a dynamic
setting where the labels become available incrementally and for a short
amount of time".  Label-free WeLa-VAE p = 2 with the labels observed in a
window of the epochs (:data:`welavae.experiments.plan.CONJECTURES`), and
β-TCVAE (K = 2, the same network) fine-tuned with labels from its trained
weights (``--init-from``); from each run's ``tracking.csv``: the polar MSE
when the labels stop and at the end (forgetting = end − window end), the
label accuracy on the held-out samples' labels, mean and lowest over the
seeds, and a figure of polar MSE against epoch.

:func:`run` trains both parts as two sweeps into one results folder (the
fine-tuned model starts from a model of the first) and writes
``downstream.{csv,md}``, ``windows.{csv,md}``, ``figures/polar_mse_by_epoch.png``
and ``conjectures.md`` (both tables, the measured wall time).
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np

from ..config import TrainConfig
from ..data.blobs import weak_labels
from ..data.dataset import to_float
from ..data.load import load
from ..io import write_text
from ..metrics import downstream_task, label_accuracy, split_indices
from ..plots import save_figure
from ..run import Run
from .plan import QUICK, ModelSpec, Preset, RunSpec, blobs_plan, blobs_spec
from .report import rows_csv, rows_md
from .sweep import SweepFailed, run_plan
from .sweepdir import SweepDir

__all__ = ["run", "conjecture_plans", "downstream_targets", "downstream_rows", "window_rows", "write_report",
           "TARGETS", "TRAIN_SIZES", "PREDICTORS", "SOURCE"]

NAME = "conjectures"
#: Downstream targets, in the columns of ``y`` (:func:`downstream_targets`).
TARGETS = ("angle_label", "distance_label", "angle_10", "distance_10", "c1_10", "c2_10")
TRAIN_SIZES = (10, 100, 1000, 10000)  # disentanglement_lib's num_train
NUM_TEST = 5000  # its num_test; fewer when the data set is smaller (split_indices shrinks both 2 : 1)
PREDICTORS = ("logistic", "gbt")
#: The model the fine-tuned one starts from: β-TCVAE with K = 2 (open-questions' control), tracked.
SOURCE = "tcvae-k2"
FIGURE = "polar_mse_by_epoch.png"


#: The preset's settings: the quick preset's data and network, 8 seeds; part (a)'s models.
SETTINGS = dict(QUICK, seeds=8, models=("tcvae", "wela_p2", "wela_p2-f0.01", "wela_p2-image"))
#: The variants part (a) uses (key → (Table-1 key, settings)).
VARIANTS = {"wela_p2-f0.01": ("wela_p2", dict(label_fraction=0.01)),
            "wela_p2-image": ("wela_p2", dict(encoder_input="image")),
            "tcvae-k2": ("tcvae", dict(latent_dim=2))}
#: The label-window part: label-free WeLa-VAE p = 2 whose labels (of 1 − ``held_out`` of the samples; the
#: rest held out for the accuracy) are observed in the epochs round(a·E) … round(b·E) − 1 of each
#: ``windows`` entry (a, b), and β-TCVAE with K = 2 (the same network) trained E epochs, then fine-tuned
#: with labels for round(``finetune``·E) more from its weights; every ``track_every``-th epoch's polar MSE
#: recorded; the PCA baselines of part (a) with ``pca_dims`` components.
CONJECTURES = dict(
    windows={"first10": (0.0, 0.1), "first25": (0.0, 0.25), "first50": (0.0, 0.5), "last25": (0.75, 1.0),
             "always": (0.0, 1.0)},
    held_out=0.1, finetune=0.25, track_every=1, pca_dims=(2, 5),
)


# ------------------------------------------------------------------------------------- plan
def _window(fractions, epochs: int) -> tuple[int, int]:
    """(a, b) fractions → epochs (round(a·E), round(b·E)), half up, at least one epoch long."""
    a, b = (int(math.floor(f * epochs + 0.5)) for f in fractions)
    return a, min(max(b, a + 1), epochs) if a < epochs else epochs


def conjecture_plans(out, *, seeds: int | None = None, epochs: int | None = None,
                     tc_estimator: str | None = None,
                     size: int | None = None) -> tuple[list[ModelSpec], list[ModelSpec]]:
    """(first sweep, whole plan): the whole plan adds the fine-tuned model, which starts from the first's source.

    Part (a): :data:`SETTINGS`' ``models``.  Part (b): ``wela_p2-image-<window>``
    for each window, ``tcvae-k2`` and ``tcvae-k2-finetune``.  ``size``: Blobs
    of size × size instead of 64 × 64 (for tests).
    """
    c = CONJECTURES
    plan = blobs_plan(dict(SETTINGS, variants_of=VARIANTS), seeds=seeds, epochs=epochs, tc_estimator=tc_estimator)
    base = plan[0]
    data = base.data if size is None else dataclasses.replace(base.data, size=int(size))
    train, n_seeds = base.hyper["train"], base.seeds
    common = dict(data=data, hidden=SETTINGS["hidden"], seeds=n_seeds, tc_estimator=base.hyper["tc_estimator"],
                  variants=VARIANTS)
    first = [blobs_spec(s.model, train=train, **common) for s in plan]
    n_epochs = train.epochs
    tracked = dataclasses.replace(train, track_every=c["track_every"])
    held = dataclasses.replace(data, label_fraction=1.0 - c["held_out"])

    def label_free(name: str, train_: TrainConfig) -> ModelSpec:
        spec = blobs_spec("wela_p2-image", train=train_, **common)
        return dataclasses.replace(spec, model=name, data=held, hyper=dict(spec.hyper, name=name))

    for name, fractions in c["windows"].items():
        first.append(label_free(f"wela_p2-image-{name}",
                                dataclasses.replace(tracked, label_epochs=_window(fractions, n_epochs))))
    first.append(blobs_spec(SOURCE, train=tracked, **common))
    extra = max(int(math.floor(c["finetune"] * n_epochs + 0.5)), 1)
    source_dir = SweepDir(Path(out).resolve()).chunk(SOURCE, n_seeds)
    finetune = dataclasses.replace(tracked, epochs=extra, checkpoint_every=min(tracked.checkpoint_every, extra),
                                   init_from=str(source_dir))
    return first, first + [label_free(f"{SOURCE}-finetune", finetune)]


def run(out="results", *, seeds: int | None = None, epochs: int | None = None, tc_estimator: str | None = None,
        size: int | None = None, models=None, seeds_per_task: int | None = None, **sweep) -> list[dict]:
    """``welavae reproduce --preset conjectures``: both sweeps, then the report (:func:`write_report`).

    Returns the whole plan's Table-1 rows (:func:`welavae.experiments.sweep.run_plan`).
    Resumable like every sweep.  ``models`` and ``seeds_per_task`` are refused: the
    plan is fixed, and the fine-tuned model needs its source's seeds in one run directory.
    """
    if models:
        raise ValueError("--models does not apply to the conjectures preset (its plan is fixed)")
    if seeds_per_task:
        raise ValueError("--seeds-per-task does not apply to the conjectures preset: the fine-tuned model "
                         "starts from its source's seeds in one run directory")
    t0 = time.perf_counter()
    first, whole = conjecture_plans(out, seeds=seeds, epochs=epochs, tc_estimator=tc_estimator, size=size)
    try:
        run_plan(first, out=out, preset=NAME, **sweep)
    except SweepFailed:
        pass  # the whole plan's sweep retries what failed, and raises if it fails again
    table = run_plan(whole, out=out, preset=NAME, **sweep)
    write_report(out, SweepDir(out).plan(), data_dir=sweep.get("data_dir"), started=t0)
    return table


PRESET = Preset(NAME, "the paper's last two §5 conjectures: downstream tasks, labels that come and go",
                run=run, report="conjectures.md", standard="none", settings=dict(SETTINGS, conjectures=CONJECTURES))


# ------------------------------------------------------------------------------- downstream
def downstream_targets(factors, *, label_dim: int = 2, bins: int = 10, size: int = 64) -> np.ndarray:
    """factors (N, 2) = (c1, c2) → (N, 6) int64 targets in the order of :data:`TARGETS`.

    The weak labels (p = ``label_dim``), the angle and the distance in
    ``bins`` equal-width bins (the weak labels' bins, :func:`welavae.data.weak_labels`),
    and c1, c2 in ``bins`` equal-width bins of [0, size): ⌊c·bins/size⌋.
    """
    f = np.asarray(factors, dtype=np.float64)
    cart = np.clip(np.floor(f * bins / size), 0, bins - 1).astype(np.int64)
    return np.concatenate([weak_labels(f, label_dim, size=size), weak_labels(f, bins, size=size), cart], axis=1)


def _test_accuracies(result: dict, size: int, n_targets: int) -> list[float]:
    """Per-target test accuracies at one training size from downstream_task's dict (disentanglement_lib's keys)."""
    keys = [f"{size}:test_accuracy_factor_{j}" for j in range(n_targets)]
    missing = [k for k in keys if k not in result]
    if missing:
        raise ValueError(f"downstream_task's result lacks {missing[0]!r} (has {sorted(result)[:6]} ...)")
    return [float(result[k]) for k in keys]


def downstream_rows(codes: dict, y, train_idx, test_idx, *, sizes=TRAIN_SIZES, predictors=PREDICTORS,
                    seed: int = 0) -> list[dict]:
    """One row per (representation, predictor, training size): each target's test accuracy, mean over seeds.

    codes: name → (S, N, K) codes (S seeds; a baseline has S = 1); y: (N, T)
    targets; train_idx, test_idx: disjoint sample indices.  Training sizes
    larger than the training split are cut to it (the row says the size used).
    Every representation and seed is trained on the same draws (``seed``).
    """
    y = np.asarray(y)
    used = tuple(dict.fromkeys(min(int(s), len(train_idx)) for s in sizes))
    rows = []
    for name, mu in codes.items():
        mu = np.asarray(mu, dtype=np.float64)
        for predictor in predictors:
            acc = np.full((len(mu), len(used), y.shape[1]), np.nan)
            for i, m in enumerate(mu):
                if not np.isfinite(m).all():
                    continue  # a diverged seed has no code
                result = downstream_task(m[train_idx], y[train_idx], m[test_idx], y[test_idx],
                                         num_train=used, predictor=predictor, seed=seed)
                for k, size in enumerate(used):
                    acc[i, k] = _test_accuracies(result, size, y.shape[1])
            for k, size in enumerate(used):
                per_target = np.nanmean(acc[:, k], axis=0) if np.isfinite(acc[:, k]).any() else acc[0, k]
                rows.append({"representation": name, "predictor": predictor, "num_train": size,
                             "seeds": int(np.isfinite(acc[:, k, 0]).sum()),
                             **{t: float(v) for t, v in zip(TARGETS, per_target)},
                             "mean": float(np.mean(per_target))})
    return rows


def pca_codes(images, train_idx, k: int, *, seed: int = 0) -> np.ndarray:
    """Raw pixels (N, H, W) → (1, N, k) PCA codes, the PCA fitted on the training split only."""
    from sklearn.decomposition import PCA

    x = to_float(np.asarray(images)).reshape(len(images), -1)  # uint8 pixels (the data path's) → k/255
    pca = PCA(n_components=k, svd_solver="randomized", random_state=seed).fit(x[train_idx])
    return pca.transform(x)[None].astype(np.float64)


# ---------------------------------------------------------------------------------- windows
def _polar_curves(runs: dict[int, tuple[Run, int]]) -> dict[int, dict[int, float]]:
    """seed → {epoch: polar MSE} from the ``tracking.csv`` of each run directory (each file read once)."""
    out: dict[int, dict[int, float]] = {}
    for run in {r.path: r for r, _ in runs.values()}.values():
        for row in run.tracking():
            if row["seed"] in runs and runs[row["seed"]][0].path == run.path:
                out.setdefault(row["seed"], {})[row["epoch"]] = row["polar_mse"]
    return out


def _stats(values) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return (float(v.mean()), float(v.min())) if v.size else (math.nan, math.nan)


def _model_runs(out: Path, model: str) -> dict[int, tuple[Run, int]]:
    return {s: (Run(chunk), i) for s, (chunk, i) in SweepDir(out).chunks_by_seed(model).items()}


def window_rows(out, plan: list[RunSpec]) -> list[dict]:
    """One row per model of part (b) (those tracked): polar MSE at the window's end and at the end, their
    difference (forgetting), and the label accuracy on the held-out samples — each mean and lowest over seeds.

    Epochs count from the model's own start; the fine-tuned model's window is
    its whole run (so its forgetting is 0 by construction).
    """
    out = Path(out)
    rows = []
    for spec in plan:
        t = spec.config.train
        if not t.track_every or not spec.config.model.has_labels:
            continue
        runs = _model_runs(out, spec.model)
        if not runs:
            continue
        window = t.label_epochs or (0, t.epochs)
        at_window, at_end, forgetting, held_out = [], [], [], []
        curves = _polar_curves(runs)
        for seed, (run, i) in sorted(runs.items()):
            curve = curves.get(seed, {})
            w, e = curve.get(window[1], math.nan), curve.get(t.epochs, math.nan)
            at_window.append(w)
            at_end.append(e)
            forgetting.append(e - w)
            labels, observed, pred = run.array("labels"), run.array("observed"), run.array("label_pred")
            hidden = (labels >= 0) & ~observed if labels is not None and observed is not None else None
            held_out.append(float(np.nanmean(label_accuracy(pred[i], labels, mask=hidden)))
                            if hidden is not None and hidden.any() else math.nan)
        source = Path(t.init_from).parent.parent.name if t.init_from else ""
        rows.append({"model": spec.model, "start": f"{source} ({Run(t.init_from).config.train.epochs} epochs)"
                     if t.init_from else "scratch", "window": f"{window[0]}:{window[1]}", "epochs": t.epochs,
                     "seeds": len(at_end),
                     **dict(zip(("polar_window_mean", "polar_window_lowest"), _stats(at_window))),
                     **dict(zip(("polar_end_mean", "polar_end_lowest"), _stats(at_end))),
                     **dict(zip(("forgetting_mean", "forgetting_lowest"), _stats(forgetting))),
                     **dict(zip(("acc_held_out_mean", "acc_held_out_lowest"), _stats(held_out)))})
    return rows


def _curves(out: Path, plan: list[RunSpec]) -> dict[str, tuple[np.ndarray, np.ndarray, tuple | None]]:
    """model → (epochs (E,), polar MSE (S, E), label window or None) from tracking.csv; a fine-tuned
    model's epochs (and window) after its source's."""
    curves = {}
    for spec in plan:
        t = spec.config.train
        if not t.track_every:
            continue
        runs = _model_runs(out, spec.model)
        curves_of = _polar_curves(runs)
        per_seed = [curves_of.get(seed, {}) for seed in sorted(runs)]
        if not per_seed:
            continue
        epochs = np.array(sorted(per_seed[0]))
        offset = Run(t.init_from).config.train.epochs if t.init_from else 0
        window = (t.label_epochs or (0, t.epochs)) if spec.config.model.has_labels else None
        curves[spec.model] = (epochs + offset, np.array([[c.get(e, math.nan) for e in epochs] for c in per_seed]),
                              None if window is None else (window[0] + offset, window[1] + offset))
    return curves


def write_figure(out, plan: list[RunSpec]) -> Path | None:
    """``figures/polar_mse_by_epoch.png``: each tracked model's mean polar MSE over its seeds (band: lowest–highest)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    curves = _curves(Path(out), plan)
    if not curves:
        return None
    fig = Figure(figsize=(7.5, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for model, (epochs, mse, window) in curves.items():
        ok = np.isfinite(mse).any(axis=0)
        if not ok.any():
            continue
        e, m = epochs[ok], mse[:, ok]
        (line,) = ax.plot(e, np.nanmean(m, axis=0), label=model, linewidth=1.4)
        ax.fill_between(e, np.nanmin(m, axis=0), np.nanmax(m, axis=0), color=line.get_color(), alpha=0.12, linewidth=0)
        if window is not None and window[0] < window[1]:
            ax.axvspan(window[0], window[1], color=line.get_color(), alpha=0.04)
    ax.set_yscale("log")
    ax.set_xlabel("epoch (the fine-tuned model's after its source's)")
    ax.set_ylabel("polar MSE (tracked subset)")
    ax.set_title("Polar MSE against epoch: mean over seeds, band lowest–highest; shade: label window", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return save_figure(fig, Path(out) / "figures" / FIGURE)


# ----------------------------------------------------------------------------------- report
def write_report(out, plan: list[RunSpec], *, data=None, data_dir=None, started: float | None = None,
                 sizes=TRAIN_SIZES, predictors=PREDICTORS, split_seed: int = 0) -> dict[str, Path]:
    """Both tables, the figure and ``conjectures.md`` from the run directories under ``out``.

    ``data``: (images (N, H, W), factors (N, 2)) instead of the preset's Blobs.
    """
    out = Path(out)
    t0 = time.perf_counter()
    downstream_models = [s for s in plan if not s.config.train.track_every]
    if data is None:
        ds = load(downstream_models[0].config, data_dir=data_dir)
        images, factors = ds.images, ds.factors
    else:
        images, factors = data
    size = downstream_models[0].config.data.size
    y = downstream_targets(factors, size=size)
    groups = np.unique(np.asarray(factors), axis=0, return_inverse=True)[1].reshape(-1)  # one group per position
    tr, te = split_indices(len(y), num_train=max(sizes), num_test=NUM_TEST, seed=split_seed, groups=groups)
    codes = {}
    for spec in downstream_models:
        merged = out / "runs" / spec.model / "mu.npy"
        if merged.exists():
            codes[spec.model] = np.load(merged, allow_pickle=False)
    for k in CONJECTURES["pca_dims"]:
        codes[f"pca-k{k}"] = pca_codes(images, tr, k, seed=split_seed)
    down = downstream_rows(codes, y, tr, te, sizes=sizes, predictors=predictors, seed=split_seed)
    down_seconds = time.perf_counter() - t0
    windows = window_rows(out, plan)
    written = {
        "downstream_csv": write_text(out / "downstream.csv", rows_csv(down)),
        "windows_csv": write_text(out / "windows.csv", rows_csv(windows)),
    }
    figure = write_figure(out, plan)
    train_seconds = 0.0
    for spec in plan:
        for run, _ in {r.path: (r, i) for r, i in _model_runs(out, spec.model).values()}.values():
            train_seconds += float(run.status.get("seconds", 0.0))
    acc = {t: ".3f" for t in (*TARGETS, "mean")}
    stat = {c: ".2f" for c in windows[0]} if windows else {}
    for c in ("model", "start", "window", "epochs", "seeds"):
        stat.pop(c, None)
    stat.update({c: ".3f" for c in ("acc_held_out_mean", "acc_held_out_lowest")})
    text = [
        "# Conjectures (paper §5): downstream tasks, and labels for a window of training", "",
        f"`welavae reproduce --preset {NAME}`: {len(tr)} training and {len(te)} test samples (positions grouped, "
        f"split seed {split_seed}); targets {', '.join(TARGETS)}; test accuracy, mean over each model's seeds.", "",
        "## (a) Downstream accuracy", "", rows_md(down, acc),
        "## (b) Labels for a window of training", "",
        "Polar MSE on the tracked subset when the labels stop (`polar_window`) and after the last epoch "
        "(`polar_end`); forgetting = end − window end per seed; accuracy on the held-out samples' labels.", "",
        rows_md(windows, stat), f"Figure: `figures/{FIGURE}`." if figure else "", "",
        "## Wall time", "",
        f"training (sum over the run directories' status.json): {train_seconds:.0f} s; downstream tables: "
        f"{down_seconds:.0f} s" + (f"; whole command: {time.perf_counter() - started:.0f} s" if started else "") + ".",
    ]
    written["downstream_md"] = write_text(out / "downstream.md", rows_md(down, acc))
    written["windows_md"] = write_text(out / "windows.md", rows_md(windows, stat))
    written["report"] = write_text(out / "conjectures.md", "\n".join(text) + "\n")
    write_text(out / "conjectures.json", json.dumps({"train_seconds": train_seconds, "downstream_seconds": down_seconds,
                                                     "total_seconds": None if started is None
                                                     else time.perf_counter() - started}, indent=2) + "\n")
    return written
