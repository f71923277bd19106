"""The ``sprites`` preset (issue 22): the first result beyond Blobs.

*Do weak labels make the position code polar when shape, scale and orientation
also vary, and do the free latents then carry those factors?*  On the dSprites
twin (:mod:`welavae.data.sprites`, rendered once into the data directory as
``sprites.npz``; a user with DeepMind's file trains on it with the same
commands), a uniform subset of :data:`SETTINGS["subset"]` images:

* β-TCVAE with K = 6 (``tcvae-k6``);
* WeLa-VAE with ``angle(posX,posY):p, distance(posX,posY):p`` for p = 2 and 3,
  K = 2 and K = 6 with the dense label head (the paper's), and for p = 3, K = 6
  the diagonal head and the label-free encoder q(z|x) (:data:`MODELS`);
* γ a tenth of the paper's rule (p = 2: 200, p = 3: 150): on a small network the
  rule's γ is about ten times too strong (docs/results.md, "Why p = 3 is among
  the worst here and the paper's best: γ"); β = 40 for every model, as in the paper.

Every model is evaluated by :mod:`welavae.truth` on the position pair (posX,
posY) in position-class units (0 … 31): the polar MSE (eqs. 6–7 about the
corner where both are 0) and the Cartesian MSE (eq. 5); MIG and DCI against
(shape, scale, orientation, posX, posY) and against (shape, scale,
orientation, φ, d) with φ and d binned 20 (DCI on :data:`DCI_SIZES` training and
test points: disentanglement_lib's 10,000 / 5,000 take about three minutes per
factor set on 2 cores, 40 minutes for the preset); label accuracy, active latents; and
how much the *free* latents — those not chosen for the position by the MSE —
carry each of shape, scale and orientation (the largest normalised mutual
information MI(z_k; f)/H(f) over the free latents k).

:func:`run` trains the sweep (:func:`welavae.experiments.sweep.reproduce` with
:func:`sprites_plan`; resumable) and writes ``sprites.{csv,md}`` and
``sprites.json`` (wall times) beside the sweep's own ``table.md`` and the best
seed's figure of each model (``figures/``).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from ..config import DataConfig, TrainConfig, paper_gamma
from ..data.cache import default_data_dir
from ..data.published import benchmark
from ..data.sprites import write_sprites_npz
from ..evaluate import evaluate_seed
from ..io import write_text
from ..metrics import dci, factor_entropy, mig, mutual_info_matrix
from ..metrics._mi import discretize_factors
from ..run import Run
from ..truth import ground_truth
from .plan import ModelSpec, Preset, RunSpec, plan_sizes
from .report import rows_csv, rows_md
from .sweep import run_plan
from .sweepdir import SweepDir

__all__ = ["run", "sprites_plan", "twin_path", "model_rows", "write_report", "free_nmi", "finite_codes", "MODELS",
           "SETTINGS", "SPEC", "FREE_FACTORS", "PRESET"]

NAME = "sprites"
SPEC = "angle(posX,posY):{p}, distance(posX,posY):{p}"
TWIN = "sprites.npz"
DATASETS = ("sprites", "dsprites")  # the twin, or DeepMind's file in the same layout
#: DCI's (num_train, num_test) in the report (see the module docstring).
DCI_SIZES = (2000, 1000)
#: The factors the free latents may carry (the twin's colour has one value).
FREE_FACTORS = ("shape", "scale", "orientation")
#: key → (model kind, p or None, settings).  β-TCVAE with K = 6; WeLa-VAE with angle/distance labels of
#: (posX, posY) for p = 2, 3 at K = 2 and 6, and for p = 3 at K = 6 the diagonal label head and the
#: label-free encoder (the two variants for p = 2 as well would not fit the hour).
MODELS = {
    "tcvae-k6": ("tcvae", None, dict(latent_dim=6)),
    **{f"wela_p{p}-k{k}": ("wela", p, dict(latent_dim=k)) for p in (2, 3) for k in (2, 6)},
    "wela_p3-k6-diagonal": ("wela", 3, dict(latent_dim=6, label_head="diagonal")),
    "wela_p3-k6-image": ("wela", 3, dict(latent_dim=6, encoder_input="image")),
}
#: A subset of the dSprites twin; γ = gamma_fraction × the paper's rule (docs/results.md: a tenth on
#: small networks).  Sized so that the preset fits an hour on 2 cores (docs/benchmarks.md).
SETTINGS = dict(subset=20_000, hidden=(128, 64), batch_size=64, lr=1e-3, epochs=25, checkpoint_every=5,
                seeds=8, models=tuple(MODELS), tc_estimator="mss", gamma_fraction=0.1)


def twin_path(data_dir=None) -> Path:
    """Where the preset keeps the twin: ``DATA_DIR/sprites.npz`` (:func:`welavae.data.cache.default_data_dir`)."""
    return Path(data_dir if data_dir is not None else default_data_dir()) / TWIN


def sprites_plan(data_path, *, seeds: int | None = None, epochs: int | None = None, models=None,
                 tc_estimator: str | None = None, subset: int | None = None, grid=None,
                 dataset: str = "sprites") -> list[ModelSpec]:
    """The preset's models on the twin at ``data_path`` (``dataset="dsprites"``: DeepMind's file, whose
    layout the twin shares).  For tests: ``subset`` another subset size, ``grid`` the factor sizes
    of a reduced twin (``write_sprites_npz(keep=…)``)."""
    if dataset not in DATASETS:
        raise ValueError(f"the sprites preset runs on {' or '.join(DATASETS)}, not {dataset!r}")
    p = SETTINGS
    n_seeds, n_epochs = plan_sizes(p, seeds=seeds, epochs=epochs)
    keys = tuple(models or p["models"])
    unknown = [k for k in keys if k not in MODELS]
    if unknown:
        raise ValueError(f"unknown model {unknown[0]!r} for the sprites preset; choose from {', '.join(MODELS)}")
    train = TrainConfig(epochs=n_epochs, batch_size=p["batch_size"], lr=p["lr"],
                        checkpoint_every=min(p["checkpoint_every"], n_epochs))
    plan = []
    for key in keys:
        kind, label_p, settings = MODELS[key]
        data = DataConfig(source="benchmark", dataset=dataset, data_path=str(data_path),
                          subset=int(subset or p["subset"]), subset_seed=0, grid=None if grid is None else tuple(grid),
                          weak_labels=SPEC.format(p=label_p) if label_p else None)
        gamma = dict(gamma=p["gamma_fraction"] * paper_gamma(label_p, 64 * 64)) if label_p else {}
        plan.append(ModelSpec(key, kind, data, tuple(range(n_seeds)),
                              hyper=dict(hidden=p["hidden"], train=train, name=key,
                                         tc_estimator=tc_estimator or p["tc_estimator"], **gamma, **settings)))
    return plan


def run(out="results", *, seeds: int | None = None, epochs: int | None = None, models=None,
        tc_estimator: str | None = None, data_dir=None, subset: int | None = None, dataset: str | None = None,
        data_path=None, **sweep) -> list[dict]:
    """``welavae reproduce --preset sprites [--dataset dsprites --data-path FILE]``: render the twin if it is
    not there (``sprites`` without ``data_path``), run the sweep, write the report."""
    t0 = time.perf_counter()
    dataset = dataset or "sprites"
    if dataset == "dsprites" and data_path is None:
        raise ValueError("--dataset dsprites needs --data-path (DeepMind's "
                         "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz, or its folder)")
    path = Path(data_path) if data_path is not None else twin_path(data_dir)
    if path.is_dir():
        path = path / benchmark(dataset).file_name
    plan = sprites_plan(path.resolve(), seeds=seeds, epochs=epochs, models=models, tc_estimator=tc_estimator,
                        subset=subset, dataset=dataset)  # refusals first: nothing rendered for a bad command
    if data_path is not None and not path.is_file():
        entry = benchmark(dataset)
        raise FileNotFoundError(f"{path} does not exist: {entry.title} is the file {entry.file_name}, {entry.where}")
    if not path.exists():
        write_sprites_npz(path)
    rendered = time.perf_counter() - t0
    table = run_plan(plan, out=out, preset=NAME, data_dir=data_dir, **sweep)
    write_report(out, SweepDir(out).plan(), started=t0, render_seconds=rendered)
    return table


PRESET = Preset(NAME, "β-TCVAE and WeLa-VAE on a subset of the dSprites twin (or DeepMind's file: --dataset dsprites "
                "--data-path FILE)", run=run, report="sprites.md", standard="none", options=("dataset", "data_path"),
                settings=SETTINGS)


# ----------------------------------------------------------------------------------- report
def free_nmi(mu, factors, names, position_channels) -> dict[str, float]:
    """For each of :data:`FREE_FACTORS`: max over the latents not in ``position_channels`` of MI(z_k; f)/H(f)."""
    free = [k for k in range(mu.shape[1]) if k not in position_channels]
    if not free:
        return {f: math.nan for f in FREE_FACTORS}
    cols = [names.index(f) for f in FREE_FACTORS]
    y = factors[:, cols]
    mi = mutual_info_matrix(mu[:, free], y)  # (free, 3)
    return {f: float(mi[:, j].max() / factor_entropy(y[:, [j]])[0]) for j, f in enumerate(FREE_FACTORS)}


def _mean(values) -> float:
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    return float(v.mean()) if v.size else math.nan


def finite_codes(out, model: str):
    """Yield (seed, its run, its index there, μ (N, K) float64, the run's ground truth) for each seed of ``model``
    under ``out`` whose code is finite, by seed; one Run (its arrays read once) and truth per chunk."""
    found = SweepDir(out).chunks_by_seed(model)
    runs = {chunk: Run(chunk) for chunk, _ in found.values()}
    truths = {chunk: ground_truth(r.config, r.array("factors")) for chunk, r in runs.items()}
    for seed in sorted(found):
        chunk, i = found[seed]
        mu = np.asarray(runs[chunk].mu[i], dtype=np.float64)
        if np.isfinite(mu).all():
            yield seed, runs[chunk], i, mu, truths[chunk]


def model_rows(out, spec: RunSpec) -> tuple[list[dict], dict | None]:
    """(one row per seed, the model's summary row) from the model's run directories under ``out``.

    Per seed: polar and Cartesian MSE, label accuracies, active latents, MIG against both factor
    sets and the free latents' NMI with shape, scale and orientation (position channels: those
    of the lower of the two MSEs).  Summary: lowest and mean over the seeds, and DCI of the seed
    of lowest MSE on the model's task (polar with labels, Cartesian without).
    """
    rows, best = [], None
    for seed, r, i, mu, truth in finite_codes(out, spec.model):
        pred = r.array("label_pred")
        ev = evaluate_seed(mu, truth, label_pred=None if pred is None else pred[i], labels=r.array("labels"),
                           logvar=r.array("logvar")[i], standard=False)
        position = min(("polar", "cartesian"), key=lambda s: ev[s]["mse"])
        f, names, _ = truth.factor_sets["factors"]
        lf, _, cont = truth.factor_sets["label_coordinates"]
        row = {"seed": seed, "polar_mse": ev["polar"]["mse"], "cartesian_mse": ev["cartesian"]["mse"],
               "acc_angle": (ev["accuracy"] or [math.nan])[0],
               "acc_distance": (ev["accuracy"] or [math.nan, math.nan])[1],
               "active_latents": ev["active_latents"],
               "mig_factors": mig(mu, f), "mig_label_coords": mig(mu, discretize_factors(lf, continuous=cont).codes),
               **{f"free_nmi_{k}": v for k, v in free_nmi(mu, f, names, ev[position]["channels"]).items()}}
        rows.append(row)
        task = "polar" if r.config.model.has_labels else "cartesian"
        if best is None or ev[task]["mse"] < best[0]:
            best = (ev[task]["mse"], seed, mu, truth)
    if not rows:
        return rows, None
    cfg = spec.config
    labelled = cfg.model.has_labels
    summary = {"model": spec.model, "p": cfg.model.label_dim if labelled else None, "K": cfg.model.latent_dim,
               "head": cfg.model.label_head if labelled else None,
               "encoder": cfg.model.encoder_input if labelled else "image",
               "gamma": cfg.objective.gamma if labelled else None, "seeds": len(rows)}
    for c in ("polar_mse", "cartesian_mse"):
        summary[f"{c}_lowest"] = min(r[c] for r in rows)
        summary[f"{c}_mean"] = _mean(r[c] for r in rows)
    for c in ("acc_angle", "acc_distance", "active_latents", "mig_factors", "mig_label_coords",
              *(f"free_nmi_{k}" for k in FREE_FACTORS)):
        summary[c] = _mean(r[c] for r in rows)
    _, seed, mu, truth = best
    summary["best_seed"] = seed
    for name, label in (("factors", "factors"), ("label_coordinates", "label_coords")):
        f, _, cont = truth.factor_sets[name]
        d = dci(mu, discretize_factors(f, continuous=cont).codes, num_train=DCI_SIZES[0], num_test=DCI_SIZES[1])
        summary[f"dci_d_{label}"], summary[f"dci_c_{label}"] = d.disentanglement, d.completeness
        summary[f"dci_i_{label}"] = d.informativeness_test
    return rows, summary


_FORMATS = {**{c: ".1f" for c in ("polar_mse_lowest", "polar_mse_mean", "cartesian_mse_lowest", "cartesian_mse_mean",
                                   "active_latents")},
            **{c: ".2f" for c in ("acc_angle", "acc_distance", "mig_factors", "mig_label_coords",
                                  *(f"free_nmi_{k}" for k in FREE_FACTORS),
                                  *(f"dci_{x}_{s}" for s in ("factors", "label_coords") for x in "dci"))},
            "gamma": "g"}


def write_report(out, plan: list[RunSpec], *, started: float | None = None, render_seconds: float = 0.0) -> dict:
    """``sprites.csv`` (one row per model), ``sprites_seeds.csv`` (one per seed), ``sprites.md`` and
    ``sprites.json``."""
    out = Path(out)
    t0 = time.perf_counter()
    summaries, per_seed = [], []
    for spec in plan:
        rows, summary = model_rows(out, spec)
        per_seed += [{"model": spec.model, **r} for r in rows]
        if summary is not None:
            summaries.append(summary)
    eval_seconds = time.perf_counter() - t0
    train_seconds = sum(float(Run(chunk).status.get("seconds", 0.0))
                        for spec in plan for chunk in {c for c, _ in SweepDir(out).chunks_by_seed(spec.model).values()})
    total = None if started is None else time.perf_counter() - started
    p = plan[0].config if plan else None
    text = [
        "# dSprites: does the position code become polar? (`welavae reproduce --preset sprites`)", "",
        (f"{p.data.subset} images of {'the dSprites twin' if p.data.dataset == 'sprites' else 'dSprites'} "
         f"(`{p.data.data_path}`, subset seed {p.data.subset_seed}), MLP "
         f"{'-'.join(map(str, p.model.hidden))}, {p.train.epochs} epochs, batch {p.train.batch_size}, "
         f"Adam {p.train.lr:g}, β = {p.objective.beta:g}. " if p else "")
        + "MSE of the position (posX, posY) in position-class units (0 … 31): lowest and mean over the seeds. "
          "MIG: mean over seeds, against (shape, scale, orientation, posX, posY) (`factors`) and (shape, scale, "
          "orientation, φ, d) with φ, d binned 20 (`label_coords`). DCI (disentanglement, completeness, test "
          f"informativeness; {DCI_SIZES[0]} training and {DCI_SIZES[1]} test points): the seed of lowest MSE on "
          "the model's task (`best_seed`). `free_nmi_f`: the largest "
          "MI(z_k; f)/H(f) over the latents not chosen for the position, mean over seeds.", "",
        rows_md(summaries, _FORMATS), "",
        f"Wall time: training {train_seconds:.0f} s (sum of the run directories' status.json); this report "
        f"{eval_seconds:.0f} s" + (f"; twin rendering {render_seconds:.0f} s" if render_seconds >= 1 else "")
        + (f"; whole command {total:.0f} s." if total is not None else "."),
    ]
    written = {"csv": write_text(out / "sprites.csv", rows_csv(summaries)),
               "seeds_csv": write_text(out / "sprites_seeds.csv", rows_csv(per_seed)),
               "md": write_text(out / "sprites.md", "\n".join(text) + "\n")}
    write_text(out / "sprites.json", json.dumps({"train_seconds": train_seconds, "report_seconds": eval_seconds,
                                                 "render_seconds": render_seconds, "total_seconds": total},
                                                indent=2) + "\n")
    return written

