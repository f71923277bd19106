"""Table 1 of the paper from a results store (paper §4.4, Table 1).

For every model: its hyperparameters, the number of finished seeds, and over
the seeds that trained to the end the lowest, mean and best-10 % mean of the
coordinate MSE (paper eqs. 5–7) in polar and in Cartesian coordinates, with
the label accuracies of the seed of lowest polar MSE.  Diverged seeds
(non-finite loss) count as finished but are excluded from every statistic;
failed seeds (errors, retried on the next run) are not counted.

Beyond the paper (:mod:`welavae.metrics.stats`): the median, a 95 % bootstrap
interval of the mean and the success rate (the fraction of finished seeds
with MSE below :data:`~welavae.metrics.stats.SUCCESS_MSE`), then the counts
of diverged and failed seeds.

Outputs: ``table.csv`` (the public contract columns :data:`TABLE_COLUMNS`,
then :data:`STAT_COLUMNS`), ``table.md`` (laid out like the paper's Table 1,
the extra statistics after it) and the per-seed MSE strip plot.  Files are
written atomically and byte-for-byte deterministically (the bootstrap is
seeded).
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from .. import models as _models
from ..config import RunConfig
from ..io import write_text
from ..metrics.stats import BOOTSTRAP_RESAMPLES, SUCCESS_MSE, bootstrap_mean_ci, seed_summary, success_rate
from ..plots import mse_distributions, save_figure  # matplotlib only when a figure is asked for

__all__ = ["TABLE_COLUMNS", "STAT_COLUMNS", "CSV_COLUMNS", "summarise", "write_tables", "write_distribution_plot",
           "display_name"]

#: ``table.csv`` columns, in this order (the ``welavae reproduce`` contract).
TABLE_COLUMNS = (
    "model", "beta", "gamma", "label_dim", "latent_dim", "seeds",
    "polar_lowest", "polar_mean", "polar_best10_mean",
    "cartesian_lowest", "cartesian_mean", "cartesian_best10_mean",
    "acc_angle", "acc_distance",
)
_SYSTEMS = ("polar", "cartesian")
#: ``table.csv`` columns after the contract ones: statistics beyond the paper's, then seed counts.
STAT_COLUMNS = tuple(f"{s}_{c}" for s in _SYSTEMS for c in ("median", "mean_ci_low", "mean_ci_high", "success_rate")) \
    + ("diverged", "failed", "gamma_final_median", "gamma_final_min", "gamma_final_max")
CSV_COLUMNS = TABLE_COLUMNS + STAT_COLUMNS
#: Further keys of :func:`summarise` rows (not in ``table.csv``).
EXTRA_KEYS = ("best_seed", "best_k", "name", "error", "success_threshold")

_MSE_COLUMNS = {c for c in CSV_COLUMNS if c.startswith(_SYSTEMS) and not c.endswith("success_rate")}
_FRACTION_COLUMNS = {"acc_angle", "acc_distance"} | {f"{s}_success_rate" for s in _SYSTEMS}


def _finite(x) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _mse(row: dict, system: str) -> float:
    v = row[f"{system}_mse"]
    return float("nan") if v is None else float(v)


def summarise(store, *, threshold: float = SUCCESS_MSE, n_resamples: int = BOOTSTRAP_RESAMPLES,
              bootstrap_seed: int = 0) -> list[dict]:
    """One Table-1 row per model of ``store``, in registration order.

    Keys: :data:`TABLE_COLUMNS`, :data:`STAT_COLUMNS`, then :data:`EXTRA_KEYS`.
    ``seeds`` = done + diverged seeds under the model's current config hash;
    ``*_lowest``, ``*_mean``, ``*_median``, ``*_best10_mean`` (mean of the best
    ceil(0.1·n) seeds) and ``*_mean_ci_low/high`` (percentile bootstrap of the
    mean, ``n_resamples`` draws from ``bootstrap_seed``) are over the n done
    seeds with a finite MSE; ``*_success_rate`` is the fraction of all finished
    seeds (diverged ones count as failures) with MSE below ``threshold``;
    ``acc_angle`` / ``acc_distance`` belong to the seed of lowest polar MSE
    (``best_seed``) and are None for models without labels; ``failed`` counts
    seeds whose job raised (``error``: the first line of the latest such error).
    ``name`` is the paper's name of the model.  A statistic with no seed to
    compute it is None.
    """
    table = []
    for m in store.models():
        rows = [r for r in store.rows(m["model"]) if r["config_hash"] == m["config_hash"]]
        finished = [r for r in rows if r["status"] in ("done", "diverged")]  # ascending seed
        failed = [r for r in rows if r["status"] == "failed"]
        done = np.array([r["status"] == "done" for r in finished], dtype=bool)
        out = {
            "model": m["model"], "beta": m["beta"], "gamma": "auto" if m.get("gamma_target") else m["gamma"],
            "label_dim": m["label_dim"], "latent_dim": m["latent_dim"], "seeds": len(finished),
        }
        summaries = {}
        for system in _SYSTEMS:
            values = np.array([_mse(r, system) for r in finished])
            s = seed_summary(values, valid=done) if finished else None
            summaries[system] = s
            out[f"{system}_lowest"] = _finite(s["lowest"]) if s else None
            out[f"{system}_mean"] = _finite(s["mean"]) if s else None
            out[f"{system}_best10_mean"] = _finite(s["best_mean"]) if s else None
            out[f"{system}_median"] = _finite(s["median"]) if s else None
            lo, hi = bootstrap_mean_ci(values[done] if finished else [], n_resamples=n_resamples, seed=bootstrap_seed)
            out[f"{system}_mean_ci_low"], out[f"{system}_mean_ci_high"] = _finite(lo), _finite(hi)
            out[f"{system}_success_rate"] = _finite(success_rate(values, threshold, valid=done)) if finished else None
        polar = summaries["polar"]
        best = finished[polar["argmin"]] if polar and polar["argmin"] >= 0 else None
        has_labels = bool(m["label_dim"])
        out["acc_angle"] = _finite(best["acc_angle"]) if best and has_labels else None
        out["acc_distance"] = _finite(best["acc_distance"]) if best and has_labels else None
        out["diverged"] = sum(r["status"] == "diverged" for r in finished)
        final = [r["gamma"] for r in finished if r.get("gamma") is not None]  # the γ each seed ended with
        out["gamma_final_median"] = float(np.median(final)) if final else None
        out["gamma_final_min"], out["gamma_final_max"] = (min(final), max(final)) if final else (None, None)
        out["failed"] = len(failed)
        latest = max(failed, key=lambda r: (r["updated_at"] or "", r["seed"])) if failed else None
        row = {c: out[c] for c in CSV_COLUMNS}
        row.update(
            best_seed=best["seed"] if best else None,
            best_k=polar["best_k"] if polar else 0,
            name=display_name(m["model"], m.get("config_json")),
            error=(latest["error"] or "unknown error").splitlines()[0] if latest else None,
            success_threshold=float(threshold),
        )
        table.append(row)
    return table


def display_name(model: str, config_json: str | None = None) -> str:
    """The paper's name of a table row: 'β-TCVAE', 'WeLa-VAE', 'WeLa-β-VAE' (:func:`welavae.models.display_name`).

    From the registered config (its kind, and whether it has labels) when
    ``config_json`` holds one, else from the key (:func:`welavae.models.parse_key`:
    'wela_p3' → 'WeLa-VAE'); a key neither knows is its own name.  A variant
    key (``wela_p2-image-f0.1``, see :data:`welavae.experiments.plan.VARIANTS`)
    is shown after the name, so that the variants' rows can be told apart.
    """
    name = _paper_name(model, config_json)
    return f"{name} `{model}`" if "-" in model and name != model else name


def _paper_name(model: str, config_json: str | None) -> str:
    try:
        d = json.loads(config_json) if config_json else None
        if isinstance(d, dict) and d.get("kind") in _models.MODELS:
            cfg = RunConfig.from_dict(d)
            return _models.display_name(cfg.kind, labelled=cfg.model.has_labels)
    except (ValueError, TypeError, KeyError):
        pass  # not a config this version reads: fall back to the key
    try:
        kind, p = _models.parse_key(model.split("-")[0])  # a variant: its base key
    except ValueError:
        return model
    return _models.display_name(kind.name, labelled=p is not None)


# ------------------------------------------------------------- formatting ---
def _number(x) -> str:
    """Hyperparameters: 40.0 → '40', 0.5 → '0.5' (full precision otherwise)."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return ""
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x) if isinstance(x, float) else str(x)


def _csv_cell(column: str, x) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return ""
    if column in _MSE_COLUMNS:
        return f"{x:.2f}"
    if column in _FRACTION_COLUMNS:
        return f"{x:.3f}"
    return _number(x)


def _csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        w.writerow([_csv_cell(c, r.get(c)) for c in CSV_COLUMNS])
    return buf.getvalue()


def _gamma_cell(r: dict) -> str:
    """γ in the table: the fixed value, or auto with the median of the seeds' final γ."""
    if r["gamma"] == "auto":
        median = r.get("gamma_final_median")
        return "auto" + (f" ({median:.0f})" if median is not None else "")
    return _number(r["gamma"]) or "-"


def _md_text(rows: list[dict]) -> str:
    def f(x, fmt=".2f"):
        return "-" if x is None or not math.isfinite(x) else format(x, fmt)

    def ci(r, system):
        lo, hi = r.get(f"{system}_mean_ci_low"), r.get(f"{system}_mean_ci_high")
        return "-" if lo is None or hi is None else f"[{lo:.2f}, {hi:.2f}]"

    def success(r, system):
        rate = r.get(f"{system}_success_rate")
        return "-" if rate is None else f"{round(rate * r['seeds'])}/{r['seeds']}"

    threshold = rows[0].get("success_threshold", SUCCESS_MSE) if rows else SUCCESS_MSE
    below = f"< {_number(float(threshold))}"
    header = ["Model", "β", "γ", "Label dim.", "Acc φ", "Acc d",
              "Polar MSE lowest", "mean", "best 10 % mean",
              "Cartesian MSE lowest", "mean", "best 10 % mean", "seeds",
              "Polar median", "95 % CI of mean", below, "Cartesian median", "95 % CI of mean", below]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    for r in rows:
        marks = [f"{r[k]} {k}" for k in ("diverged", "failed") if r.get(k)]
        seeds = str(r["seeds"]) + (f" ({', '.join(marks)})" if marks else "")
        cells = [r.get("name") or display_name(r["model"]),
                 _number(r["beta"]) or "-", _gamma_cell(r),
                 f"p={r['label_dim']}" if r["label_dim"] else "-",
                 f(r["acc_angle"]), f(r["acc_distance"]),
                 f(r["polar_lowest"]), f(r["polar_mean"]), f(r["polar_best10_mean"]),
                 f(r["cartesian_lowest"]), f(r["cartesian_mean"]), f(r["cartesian_best10_mean"]), seeds,
                 f(r.get("polar_median")), ci(r, "polar"), success(r, "polar"),
                 f(r.get("cartesian_median")), ci(r, "cartesian"), success(r, "cartesian")]
        lines.append("| " + " | ".join(cells) + " |")
    total = sum(r["seeds"] for r in rows)
    diverged = sum(r.get("diverged") or 0 for r in rows)
    failed = sum(r.get("failed") or 0 for r in rows)
    caption = (
        "Table 1 (reproduced; paper §4.4): coordinate MSE (paper eqs. 5–7) of each model's seeds against the "
        "polar (φ, d) and the Cartesian (c1, c2) factors — lowest, mean, and mean of the best 10 % "
        "(ceil(0.1·n) seeds) over the n seeds that trained to the end; Acc φ / Acc d are the training label "
        "accuracies of the seed with the lowest polar MSE; "
        f"{diverged} of {total} finished seeds diverged (non-finite loss): counted in 'seeds', "
        "excluded from the statistics"
        + (f"; {failed} failed seed{'s' if failed != 1 else ''} will be retried." if failed else ".")
        + f" After 'seeds', beyond the paper: the median, a 95 % percentile-bootstrap interval of the mean, "
        f"and how many finished seeds reached an MSE {below} (a perfect Cartesian code scores 668.8 on the "
        "polar task)."
    )
    notes = [f"- **{r['model']} failed** ({r['failed']} seed{'s' if r['failed'] != 1 else ''}): "
             f"{r.get('error') or 'unknown error'}; run the same command again to retry."
             for r in rows if r.get("failed")]
    return caption + "\n\n" + "\n".join(lines) + "\n" + ("\n" + "\n".join(notes) + "\n" if notes else "")


def write_tables(rows: list[dict], out_dir) -> tuple[Path, Path]:
    """Write ``out_dir/table.csv`` and ``out_dir/table.md`` atomically; return their paths.

    rows: as returned by :func:`summarise`.  ``table.csv`` has the columns
    :data:`TABLE_COLUMNS` then :data:`STAT_COLUMNS`; None/NaN is an empty
    cell, MSEs have 2 decimals, accuracies and success rates 3.  ``table.md``
    mirrors the paper's Table 1 with a one-line caption, the extra statistics
    after its columns, and a note under it per failed model.  Same rows →
    same bytes.
    """
    out_dir = Path(out_dir)
    csv_path, md_path = out_dir / "table.csv", out_dir / "table.md"
    write_text(csv_path, _csv_text(rows))
    write_text(md_path, _md_text(rows))
    return csv_path, md_path


def write_distribution_plot(store, path, *, threshold: float = SUCCESS_MSE) -> Path | None:
    """Strip plot of every model's per-seed polar and Cartesian MSE (``plots.mse_distributions``) at ``path``.

    One x position per model in registration order over its finished seeds;
    diverged seeds enter as NaN (not drawn, counted in the tick label).  Each
    model's median is a black bar, its mean with the 95 % bootstrap interval
    an error bar beside the points, and ``threshold`` (the success rate's) a
    dashed line.  Returns the PNG path, or None when no model has a finished
    seed yet.
    """
    per_model = {}
    for m in store.models():
        finished = [r for r in store.rows(m["model"])
                    if r["config_hash"] == m["config_hash"] and r["status"] in ("done", "diverged")]
        if finished:
            per_model[m["model"]] = {
                system: np.array([_mse(r, system) if r["status"] == "done" else np.nan for r in finished])
                for system in _SYSTEMS
            }
    if not per_model:
        return None
    fig = mse_distributions(per_model, systems=_SYSTEMS)
    for ax, system in zip(fig.axes, _SYSTEMS):
        if ax.get_yscale() != "log":
            continue  # no finite MSE on this axis
        for i, entry in enumerate(per_model.values()):
            v = entry[system][np.isfinite(entry[system])]
            if v.size:
                lo, hi = bootstrap_mean_ci(v)
                mean = float(v.mean())
                ax.errorbar([i + 0.38], [mean], yerr=[[mean - lo], [hi - mean]], fmt="D", color="black",
                            markersize=3, capsize=2, linewidth=1, zorder=4)
        lo, hi = ax.get_ylim()
        ax.axhline(threshold, color="0.3", linestyle="--", linewidth=0.8, zorder=1)
        ax.set_ylim(min(lo, threshold / 1.5), max(hi, threshold * 1.5))
        ax.text(-0.55, threshold * 1.05, f"success: < {_number(float(threshold))}", fontsize=7, color="0.3",
                va="bottom")
        ax.set_title(f"{system} MSE per seed (bar: median; ◆: mean, 95 % CI)", fontsize=8)
    return save_figure(fig, path)


# ---------------------------------------------------------- tables of any rows (the presets' reports)
def _format_cell(v, fmt: str) -> str:
    return "" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


def rows_csv(rows: list[dict]) -> str:
    """Rows of one dict each as CSV text (columns: the first row's keys; NaN/inf empty)."""
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows({k: "" if isinstance(v, float) and not math.isfinite(v) else v for k, v in r.items()} for r in rows)
    return buf.getvalue()


def rows_md(rows: list[dict], formats: dict[str, str]) -> str:
    """Rows as a Markdown table; ``formats``: column → format spec (those columns right-aligned)."""
    if not rows:
        return "(no finished model)\n"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(":---" if c not in formats else "---:" for c in cols) + "|"]
    for r in rows:
        cells = (_format_cell(r[c], formats[c]) if c in formats else ("" if r[c] is None else str(r[c])) for c in cols)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
