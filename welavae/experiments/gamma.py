"""The ``gamma`` preset (issue 28): γ chosen by the labels, beside the paper's rule and a tenth of it.

The paper's one requirement is tuning γ (§4.3); a user has no ground truth to
tune it with.  On the ``table`` preset's data and network (the authors' 4,096
disk blobs, MLP 64-32, Adam 1e-3, batch 256, 150 epochs, 16 seeds, MSS), for
every p = 2 … 8 of Table 1, three WeLa-VAE models that differ only in γ:

* ``wela_pP-rule``: the paper's rule, image dimension ≈ γ × label dimension
  (Table 1's 2,000 … 500; :func:`welavae.config.paper_gamma`);
* ``wela_pP-tenth``: a tenth of it (docs/results.md: on this small network the
  rule is about ten times too strong for p ≥ 3);
* ``wela_pP-auto``: ``--gamma auto`` — γ found per seed during training from the
  labels alone (:mod:`welavae.train.gamma`, its default target), no γ given;

and β-TCVAE as the unsupervised baseline.  :func:`write_report` writes
``gamma.{md,csv}`` (one row per model: polar MSE lowest / mean / seeds < 100,
Cartesian lowest, label accuracy of the best seed, final γ median and range
over the seeds) and two figures: γ per seed over the epochs for the auto
models (log scale), and every seed's polar MSE against its final γ.
"""
from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import numpy as np

from ..config import paper_gamma
from ..io import write_text
from ..plots import save_figure
from ..run import Run
from .plan import PAPER_MODELS, TABLE, Preset, blobs_plan
from .report import rows_csv, rows_md
from .store import ResultsStore
from .sweep import run_plan
from .sweepdir import SweepDir

__all__ = ["PRESET", "SETTINGS", "VARIANTS", "run", "write_report", "gamma_curves", "GAMMAS"]

NAME = "gamma"
#: How each WeLa-VAE model sets γ: the rule, a tenth of it, or found during training.
GAMMAS = ("rule", "tenth", "auto")
PS = tuple(int(k.split("_p")[1]) for k in PAPER_MODELS[1:])  # 2 … 8


def _gamma_setting(how: str, p: int) -> dict:
    if how == "rule":
        return {}
    if how == "tenth":
        return {"gamma": 0.1 * paper_gamma(p, 64 * 64)}
    return {"gamma": "auto"}


#: Variant keys → (Table-1 key, settings).
VARIANTS = {f"wela_p{p}-{how}": (f"wela_p{p}", _gamma_setting(how, p)) for p in PS for how in GAMMAS}
SETTINGS = dict(TABLE, models=("tcvae", *VARIANTS), variants_of=VARIANTS)


def run(out="results", *, seeds=None, epochs=None, models=None, tc_estimator=None, **sweep) -> list[dict]:
    """``welavae reproduce --preset gamma [--models ...]``: the sweep, then :func:`write_report`."""
    t0 = time.perf_counter()
    plan = blobs_plan(SETTINGS, seeds=seeds, epochs=epochs, models=models, tc_estimator=tc_estimator)
    table = run_plan(plan, out=out, preset=NAME, **sweep)
    write_report(out, started=t0)
    return table


def gamma_curves(out, model: str) -> dict[int, np.ndarray]:
    """seed → γ at the end of each epoch (E,), from the history.csv of the model's run directories."""
    curves: dict[int, list] = {}
    for chunk in {c for c, _ in SweepDir(out).chunks_by_seed(model).values()}:
        with open(Path(chunk) / Run.HISTORY, newline="") as f:
            for r in csv.DictReader(f):
                curves.setdefault(int(r["seed"]), []).append(float(r["gamma"]) if r.get("gamma") else math.nan)
    return {s: np.array(v) for s, v in sorted(curves.items())}


def _summary(model: str, config: dict, rows: list[dict]) -> dict:
    done = [r for r in rows if r["status"] == "done" and r["polar_mse"] is not None]
    polar = np.array([r["polar_mse"] for r in done])
    best = done[int(np.argmin(polar))] if done else None
    final = [r["gamma"] for r in done if r.get("gamma") is not None]
    how = model.rsplit("-", 1)[1] if "-" in model else "-"
    return {"model": model, "p": config["model"]["label_dims"][0] if config["model"]["label_dims"] else None,
            "gamma": how, "seeds": len(done),
            "polar_lowest": float(polar.min()) if done else math.nan,
            "polar_mean": float(polar.mean()) if done else math.nan,
            "below_100": int((polar < 100).sum()),
            "cartesian_lowest": min((r["cartesian_mse"] for r in done), default=math.nan),
            "acc_angle": best["acc_angle"] if best and best["acc_angle"] is not None else math.nan,
            "acc_distance": best["acc_distance"] if best and best["acc_distance"] is not None else math.nan,
            "gamma_final_median": float(np.median(final)) if final else math.nan,
            "gamma_final_min": float(min(final)) if final else math.nan,
            "gamma_final_max": float(max(final)) if final else math.nan}


_FORMATS = {**{c: ".1f" for c in ("polar_lowest", "polar_mean", "cartesian_lowest", "gamma_final_median",
                                   "gamma_final_min", "gamma_final_max")},
            "acc_angle": ".2f", "acc_distance": ".2f"}


def write_report(out, *, started: float | None = None) -> dict[str, Path]:
    """``gamma.csv``, ``gamma_seeds.csv`` (per seed: polar MSE, final γ), ``gamma.md`` and the two figures."""
    out = Path(out)
    plan = SweepDir(out).plan()
    summaries, per_seed = [], []
    with ResultsStore(SweepDir(out).database) as store:
        for spec in plan:
            rows = [r for r in store.rows(spec.model) if r["config_hash"] == spec.config.hash()]
            summaries.append(_summary(spec.model, spec.config.to_dict(), rows))
            per_seed += [{"model": spec.model, "seed": r["seed"], "polar_mse": r["polar_mse"],
                          "cartesian_mse": r["cartesian_mse"], "gamma_final": r["gamma"]}
                         for r in rows if r["status"] == "done"]
    train_seconds = sum(float(Run(c).status.get("seconds", 0.0)) for spec in plan
                        for c in {c for c, _ in SweepDir(out).chunks_by_seed(spec.model).values()})
    figures = {"curves": _curve_figure(out, [s.model for s in plan if s.model.endswith("-auto")]),
               "scatter": _scatter_figure(out, per_seed)}
    total = None if started is None else time.perf_counter() - started
    p = plan[0].config if plan else None
    text = ["# γ from the labels (`welavae reproduce --preset gamma`)", "",
            (f"N = 4,096 disk blobs, MLP {'-'.join(map(str, p.model.hidden))}, Adam {p.train.lr:g}, batch "
             f"{p.train.batch_size}, {p.train.epochs} epochs, β = 40. " if p else "")
            + "γ: `rule` (the paper's, Table 1), `tenth` (a tenth of it), `auto` (found per seed during training "
              "from the labels, `--gamma auto`). Polar MSE lowest / mean over the seeds and the seeds below 100; "
              "label accuracy of the seed of lowest polar MSE; the γ each seed ended with (median, min, max).", "",
            rows_md(summaries, _FORMATS), "",
            f"Training: {train_seconds:.0f} s (the run directories' status.json)"
            + (f"; whole command {total:.0f} s." if total is not None else "."), "",
            "![γ per seed over the epochs](figures/gamma_by_epoch.png)", "",
            "![polar MSE against the final γ](figures/polar_mse_by_gamma.png)"]
    return {"csv": write_text(out / "gamma.csv", rows_csv(summaries)),
            "seeds_csv": write_text(out / "gamma_seeds.csv", rows_csv(per_seed)),
            "md": write_text(out / "gamma.md", "\n".join(text) + "\n"), **figures}


def _curve_figure(out: Path, models: list[str]) -> Path | None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    curves = {m: gamma_curves(out, m) for m in models}
    curves = {m: c for m, c in curves.items() if c}
    if not curves:
        return None
    fig = Figure(figsize=(3.2 * min(len(curves), 4), 2.8 * math.ceil(len(curves) / 4)), dpi=100)
    FigureCanvasAgg(fig)
    for i, (model, by_seed) in enumerate(curves.items()):
        ax = fig.add_subplot(math.ceil(len(curves) / 4), min(len(curves), 4), i + 1)
        for gamma in by_seed.values():
            ax.plot(np.arange(1, len(gamma) + 1), gamma, lw=0.8, alpha=0.7)
        ax.set_yscale("log")
        ax.set_title(model, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return save_figure(fig, out / "figures" / "gamma_by_epoch.png")


def _scatter_figure(out: Path, per_seed: list[dict]) -> Path | None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    points = [r for r in per_seed if r["gamma_final"] is not None and r["polar_mse"] is not None]
    if not points:
        return None
    fig = Figure(figsize=(6.4, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for how, marker in zip(GAMMAS, ("s", "^", "o")):
        sel = [r for r in points if r["model"].endswith(f"-{how}")]
        if sel:
            ax.scatter([r["gamma_final"] for r in sel], [r["polar_mse"] for r in sel], s=12, marker=marker,
                       label=how, alpha=0.7)
    ax.axhline(100, color="gray", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("γ at the end of training")
    ax.set_ylabel("polar MSE")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out / "figures" / "polar_mse_by_gamma.png")


PRESET = Preset(NAME, "γ chosen by the labels (--gamma auto) beside the paper's rule and a tenth of it, p = 2..8 "
                "on the table preset's data and network", run=run, report="gamma.md", standard="none",
                settings=SETTINGS)
