"""Per-seed analysis of a sweep: label accuracy, active latents, and seed selection without ground truth.

After a sweep, every model's chunk directories hold what the trainer wrote
(:class:`welavae.run.Run`).  From them and the results store this module
writes:

``seeds.csv``      one row per (model, seed): polar and Cartesian MSE, label
                   accuracy on the observed and on the hidden labels, active
                   latents, and every selection criterion's score
                   (:mod:`welavae.selection`; higher is better);
``selection.md``   per model and criterion: the seed the criterion picks, its
                   polar MSE, the lowest polar MSE (found with the ground
                   truth), the regret (their difference) and the Spearman
                   correlation of the criterion with the polar MSE over the
                   seeds (negative = the criterion finds low MSE); then,
                   over the models with weak labels, a summary per
                   criterion (:func:`selection_summary`) beside a random
                   pick's expected regret;
``questions.md``   for plans with variants (the ``open-questions`` preset):
                   one row per model with its encoder input, label fraction,
                   K and label head.
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from ..evaluate import evaluate_seed
from ..io import write_text
from ..metrics.stats import seed_summary
from ..run import Run
from ..selection import CRITERIA, last_terms, seed_scores
from .sweepdir import SweepDir

__all__ = ["seed_rows", "selection_rows", "selection_summary", "write_analysis"]


def seed_rows(out, spec, store) -> list[dict]:
    """One dict per finished seed of ``spec``'s model (see the module docstring); [] when none finished."""
    found = SweepDir(out).chunks_by_seed(spec.model)
    recorded = {r["seed"]: r for r in store.rows(spec.model)
                if r["config_hash"] == spec.config.hash() and r["status"] in ("done", "diverged")}
    seeds = sorted(s for s in found if s in recorded)
    if not seeds:
        return []
    runs = {chunk: Run(chunk) for chunk in {found[s][0] for s in seeds}}
    terms = {chunk: last_terms(run) for chunk, run in runs.items()}
    first = runs[found[seeds[0]][0]]
    labels, observed = first.array("labels"), first.array("observed")
    mu = np.stack([runs[found[s][0]].mu[found[s][1]] for s in seeds])
    logvar = np.stack([runs[found[s][0]].array("logvar")[found[s][1]] for s in seeds])
    last = {t: np.array([terms[found[s][0]][t][found[s][1]] for s in seeds]) for t in terms[found[seeds[0]][0]]} \
        if all(terms.values()) else None
    trained_labels = None if labels is None else np.where(observed, labels, -1)
    scores = seed_scores(mu, logvar, trained_labels, last)
    rows = []
    for i, s in enumerate(seeds):
        chunk, j = found[s]
        run = runs[chunk]
        pred = run.array("label_pred")
        ev = evaluate_seed(mu[i], None, label_pred=None if pred is None else pred[j], labels=labels,
                           observed=observed, logvar=logvar[i], standard=False)
        rec = recorded[s]
        rows.append({
            "model": spec.model, "seed": s, "status": rec["status"],
            "polar_mse": rec["polar_mse"], "cartesian_mse": rec["cartesian_mse"],
            "acc": ev["accuracy"], "acc_hidden": ev["accuracy_hidden"], "active_latents": ev["active_latents"],
            **{f"score_{c}": (None if c not in scores or not np.isfinite(scores[c][i]) else float(scores[c][i]))
               for c in CRITERIA},
        })
    return rows


def _spearman(a, b) -> float:
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return math.nan
    return float(spearmanr(a[ok], b[ok]).statistic)


def selection_rows(rows: list[dict]) -> list[dict]:
    """Per criterion: the picked seed, its polar MSE, the lowest, the regret, Spearman ρ(score, polar MSE)."""
    out = []
    polar = np.array([np.nan if r["polar_mse"] is None else r["polar_mse"] for r in rows])
    cart = np.array([np.nan if r["cartesian_mse"] is None else r["cartesian_mse"] for r in rows])
    if not np.isfinite(polar).any():
        return out
    lowest = float(np.nanmin(polar))
    for c in CRITERIA:
        score = np.array([np.nan if r[f"score_{c}"] is None else r[f"score_{c}"] for r in rows])
        if not np.isfinite(score).any():
            continue
        pick = int(np.nanargmax(score))
        out.append({"model": rows[0]["model"], "criterion": c, "seed": rows[pick]["seed"],
                    "polar_mse": float(polar[pick]), "polar_lowest": lowest, "regret": float(polar[pick] - lowest),
                    "spearman_polar": _spearman(score, polar), "spearman_cartesian": _spearman(score, cart),
                    "cartesian_mse": float(cart[pick]), "cartesian_lowest": float(np.nanmin(cart))})
    return out


def selection_summary(sel: list[dict], rows_by_model: dict[str, list[dict]], models) -> list[dict]:
    """Over ``models`` (their :func:`selection_rows` in ``sel``), per criterion: the mean Spearman ρ(score,
    polar MSE), how many times it picks the lowest-MSE seed, the median and mean regret.  First row
    ``random``: a seed drawn uniformly, whose expected regret is the model's mean polar MSE − its lowest."""
    models = [m for m in models if any(s["model"] == m for s in sel)]
    chance = []  # a uniformly drawn seed's expected regret, per model
    for m in models:
        polar = np.array([np.nan if r["polar_mse"] is None else r["polar_mse"] for r in rows_by_model[m]])
        chance.append(float(np.nanmean(polar) - np.nanmin(polar)))
    out = [{"criterion": "random", "models": len(models), "mean_spearman": math.nan, "picks_lowest": math.nan,
            "median_regret": float(np.median(chance)) if chance else math.nan,
            "mean_regret": float(np.mean(chance)) if chance else math.nan}]
    for c in CRITERIA:
        picked = [s for s in sel if s["criterion"] == c and s["model"] in models]
        if not picked:
            continue
        regret = [s["regret"] for s in picked]
        rho = [s["spearman_polar"] for s in picked if math.isfinite(s["spearman_polar"])]
        out.append({"criterion": c, "models": len(picked), "mean_spearman": float(np.mean(rho)) if rho else math.nan,
                    "picks_lowest": sum(r == 0 for r in regret), "median_regret": float(np.median(regret)),
                    "mean_regret": float(np.mean(regret))})
    return out


def _f(x, fmt=".2f") -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, fmt)


def _accs(a) -> str:
    return "-" if not a else "/".join(_f(v) for v in a)


def questions_rows(plan, rows_by_model) -> list[dict]:
    out = []
    for spec in plan:
        rows = rows_by_model.get(spec.model) or []
        polar = [r["polar_mse"] if r["polar_mse"] is not None else math.nan for r in rows]
        if not rows:
            continue
        summ = seed_summary(polar, valid=np.isfinite(polar))
        best = rows[int(summ["argmin"])] if summ["argmin"] >= 0 else rows[0]
        m, d = spec.config.model, spec.config.data
        out.append({
            "model": spec.model, "encoder_input": m.encoder_input if m.has_labels else "image",
            "label_fraction": d.label_fraction if m.has_labels else 0.0,
            "latent_dim": m.latent_dim, "label_head": m.label_head, "seeds": len(rows),
            "polar_lowest": summ["lowest"], "polar_mean": summ["mean"], "polar_best10_mean": summ["best_mean"],
            "best_seed": best["seed"], "acc": best["acc"], "acc_hidden": best["acc_hidden"],
            "active_latents": best["active_latents"],
            "active_latents_mean":
                float(np.mean([r["active_latents"] for r in rows if r["active_latents"] is not None]))
            if any(r["active_latents"] is not None for r in rows) else None,
        })
    return out


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: json.dumps(v) if isinstance(v, list) else ("" if v is None else v) for k, v in r.items()})
    return buf.getvalue()


def write_analysis(out, plan, store) -> dict[str, Path]:
    """Write ``seeds.csv``, ``selection.md`` and (for plans with variants) ``questions.md`` into ``out``."""
    out = Path(out)
    rows_by_model = {spec.model: seed_rows(out, spec, store) for spec in plan}
    all_rows = [r for spec in plan for r in rows_by_model[spec.model]]
    written = {"seeds": write_text(out / "seeds.csv", _csv(all_rows))}
    sel = [s for spec in plan for s in selection_rows(rows_by_model[spec.model]) if rows_by_model[spec.model]]
    lines = ["Seed selection without ground truth (`welavae select`): the seed each criterion picks, its polar MSE, "
             "the lowest polar MSE of the model (ground truth), the regret, and Spearman ρ of the criterion's "
             "score with the polar (and Cartesian) MSE over the seeds (negative: a high score goes with a low MSE).",
             "", "| model | criterion | picked seed | its polar MSE | lowest | regret | ρ polar | its Cartesian MSE | "
             "lowest Cartesian | ρ Cartesian |", "|:---|:---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in sel:
        lines.append(f"| {s['model']} | {s['criterion']} | {s['seed']} | {_f(s['polar_mse'])} "
                     f"| {_f(s['polar_lowest'])} "
                     f"| {_f(s['regret'])} | {_f(s['spearman_polar'])} | {_f(s['cartesian_mse'])} "
                     f"| {_f(s['cartesian_lowest'])} | {_f(s['spearman_cartesian'])} |")
    labelled = [spec.model for spec in plan if spec.config.model.has_labels]
    summary = selection_summary(sel, rows_by_model, labelled)
    if len(summary) > 1:
        lines += ["", f"Summary over the {summary[0]['models']} models with weak labels (regret: the picked seed's "
                  "polar MSE minus the model's lowest; `random`: a seed drawn uniformly, expected regret = mean − "
                  "lowest):", "", "| criterion | mean ρ(score, polar MSE) | picks the lowest-MSE seed | median regret "
                  "| mean regret |", "|:---|---:|---:|---:|---:|"]
        for r in summary:
            picks = "-" if r["criterion"] == "random" else f"{r['picks_lowest']}/{r['models']}"
            lines.append(f"| {r['criterion']} | {_f(r['mean_spearman'])} | {picks} | {_f(r['median_regret'], '.1f')} "
                         f"| {_f(r['mean_regret'], '.1f')} |")
    written["selection"] = write_text(out / "selection.md", "\n".join(lines) + "\n")
    write_text(out / "selection.csv", _csv(sel))
    if any("-" in spec.model for spec in plan):  # variant keys (open-questions): wela_p2-image-f0.1
        q = questions_rows(plan, rows_by_model)
        lines = ["| model | encoder input | label fraction | K | label head | seeds | polar MSE lowest | mean | "
                 "best 10 % mean | acc φ/d observed | acc φ/d hidden | active latents (best seed) | "
                 "active latents (mean) |", "|:---|:---|---:|---:|:---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in q:
            lines.append(f"| {r['model']} | {r['encoder_input']} | {r['label_fraction']:g} | {r['latent_dim']} | "
                         f"{r['label_head']} | {r['seeds']} | {_f(r['polar_lowest'])} | {_f(r['polar_mean'])} | "
                         f"{_f(r['polar_best10_mean'])} | {_accs(r['acc'])} | {_accs(r['acc_hidden'])} | "
                         f"{_f(r['active_latents'], 'd')} | {_f(r['active_latents_mean'], '.1f')} |")
        written["questions"] = write_text(out / "questions.md", "\n".join(lines) + "\n")
        write_text(out / "questions.csv", _csv(q))
    return written
