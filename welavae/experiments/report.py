"""Table 1 of the paper from a results store (paper §4.4, Table 1).

For every model: its hyperparameters, the number of finished seeds, and over
the seeds that trained to the end the lowest, mean and best-10 % mean of the
coordinate MSE (paper eqs. 5–7) in polar and in Cartesian coordinates, with
the label accuracies of the seed of lowest polar MSE.  Diverged seeds
(non-finite loss) count as finished but are excluded from every statistic;
failed seeds (errors, retried on the next run) are not counted.

Outputs: ``table.csv`` (the public contract columns :data:`TABLE_COLUMNS`),
``table.md`` (laid out like the paper's Table 1) and the per-seed MSE strip
plot.  Files are written atomically and byte-for-byte deterministically.
"""
from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

import numpy as np

from ..data.cache import atomic_write
from ..metrics.stats import seed_summary

__all__ = ["TABLE_COLUMNS", "summarise", "write_tables", "write_distribution_plot", "display_name"]

#: ``table.csv`` columns, in this order (the ``welavae reproduce`` contract).
TABLE_COLUMNS = (
    "model", "beta", "gamma", "label_dim", "latent_dim", "seeds",
    "polar_lowest", "polar_mean", "polar_best10_mean",
    "cartesian_lowest", "cartesian_mean", "cartesian_best10_mean",
    "acc_angle", "acc_distance",
)
#: Extra keys of :func:`summarise` rows, after the contract columns (not in ``table.csv``).
EXTRA_COLUMNS = ("diverged", "failed", "best_seed", "best_k")

_MSE_COLUMNS = {c for c in TABLE_COLUMNS if c.startswith(("polar_", "cartesian_"))}
_ACC_COLUMNS = {"acc_angle", "acc_distance"}
_NAMES = {"tcvae": "β-TCVAE", "betavae": "β-VAE", "dipvae": "DIP-VAE"}


def _finite(x) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _mse(row: dict, system: str) -> float:
    v = row[f"{system}_mse"]
    return float("nan") if v is None else float(v)


def summarise(store) -> list[dict]:
    """One Table-1 row per model of ``store``, in registration order.

    Keys: :data:`TABLE_COLUMNS` then :data:`EXTRA_COLUMNS`.  ``seeds`` = done
    + diverged seeds under the model's current config hash; ``*_lowest``,
    ``*_mean``, ``*_best10_mean`` (mean of the best ceil(0.1·n) seeds) are
    over the n done seeds with a finite MSE; ``acc_angle`` / ``acc_distance``
    belong to the seed of lowest polar MSE (``best_seed``) and are None for
    models without labels.  A statistic with no seed to compute it is None.
    """
    table = []
    for m in store.models():
        rows = [r for r in store.rows(m["model"]) if r["config_hash"] == m["config_hash"]]
        finished = [r for r in rows if r["status"] in ("done", "diverged")]  # ascending seed
        done = np.array([r["status"] == "done" for r in finished], dtype=bool)
        out = {
            "model": m["model"], "beta": m["beta"], "gamma": m["gamma"],
            "label_dim": m["label_dim"], "latent_dim": m["latent_dim"], "seeds": len(finished),
        }
        summaries = {}
        for system in ("polar", "cartesian"):
            s = seed_summary([_mse(r, system) for r in finished], valid=done) if finished else None
            summaries[system] = s
            out[f"{system}_lowest"] = _finite(s["lowest"]) if s else None
            out[f"{system}_mean"] = _finite(s["mean"]) if s else None
            out[f"{system}_best10_mean"] = _finite(s["best_mean"]) if s else None
        polar = summaries["polar"]
        best = finished[polar["argmin"]] if polar and polar["argmin"] >= 0 else None
        has_labels = bool(m["label_dim"])
        out["acc_angle"] = _finite(best["acc_angle"]) if best and has_labels else None
        out["acc_distance"] = _finite(best["acc_distance"]) if best and has_labels else None
        out["diverged"] = sum(r["status"] == "diverged" for r in finished)
        out["failed"] = sum(r["status"] == "failed" for r in rows)
        out["best_seed"] = best["seed"] if best else None
        out["best_k"] = polar["best_k"] if polar else 0
        table.append(out)
    return table


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
    if column in _ACC_COLUMNS:
        return f"{x:.3f}"
    return _number(x)


def display_name(model: str) -> str:
    """Table key → the paper's name: 'tcvae' → 'β-TCVAE', 'wela_p3' → 'WeLa-VAE', 'betavae_p2' → 'WeLa-β-VAE'."""
    m = re.match(r"^(tcvae|betavae|dipvae|wela)(?:_p(\d+))?$", model)
    if not m:
        return model
    name, p = m.groups()
    if name == "wela":
        return "WeLa-VAE"
    return ("WeLa-" if p else "") + _NAMES[name]


def _csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(TABLE_COLUMNS)
    for r in rows:
        w.writerow([_csv_cell(c, r.get(c)) for c in TABLE_COLUMNS])
    return buf.getvalue()


def _md_text(rows: list[dict]) -> str:
    def f(x, fmt):
        return "-" if x is None or not math.isfinite(x) else format(x, fmt)

    header = ["Model", "β", "γ", "Label dim.", "Acc φ", "Acc d",
              "Polar MSE lowest", "mean", "best 10 % mean",
              "Cartesian MSE lowest", "mean", "best 10 % mean", "seeds"]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    for r in rows:
        seeds = str(r["seeds"]) + (f" ({r['diverged']} diverged)" if r.get("diverged") else "")
        cells = [display_name(r["model"]),
                 _number(r["beta"]) or "-", _number(r["gamma"]) or "-",
                 f"p={r['label_dim']}" if r["label_dim"] else "-",
                 f(r["acc_angle"], ".2f"), f(r["acc_distance"], ".2f"),
                 f(r["polar_lowest"], ".2f"), f(r["polar_mean"], ".2f"), f(r["polar_best10_mean"], ".2f"),
                 f(r["cartesian_lowest"], ".2f"), f(r["cartesian_mean"], ".2f"),
                 f(r["cartesian_best10_mean"], ".2f"), seeds]
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
    )
    return caption + "\n\n" + "\n".join(lines) + "\n"


def write_tables(rows: list[dict], out_dir) -> tuple[Path, Path]:
    """Write ``out_dir/table.csv`` and ``out_dir/table.md`` atomically; return their paths.

    rows: as returned by :func:`summarise`.  ``table.csv`` has exactly the
    columns :data:`TABLE_COLUMNS`; None/NaN is an empty cell, MSEs have 2
    decimals, accuracies 3.  ``table.md`` mirrors the paper's Table 1 with a
    one-line caption.  Same rows → same bytes.
    """
    out_dir = Path(out_dir)
    csv_path, md_path = out_dir / "table.csv", out_dir / "table.md"
    csv_bytes, md_bytes = _csv_text(rows).encode("utf-8"), _md_text(rows).encode("utf-8")
    atomic_write(csv_path, lambda fh: fh.write(csv_bytes))
    atomic_write(md_path, lambda fh: fh.write(md_bytes))
    return csv_path, md_path


def write_distribution_plot(store, path) -> Path | None:
    """Strip plot of every model's per-seed polar and Cartesian MSE (``plots.mse_distributions``) at ``path``.

    One x position per model in registration order over its finished seeds;
    diverged seeds enter as NaN (not drawn, counted in the tick label).
    Returns the PNG path, or None when no model has a finished seed yet.
    """
    from ..plots import mse_distributions, save_figure  # matplotlib only when a figure is asked for

    per_model = {}
    for m in store.models():
        finished = [r for r in store.rows(m["model"])
                    if r["config_hash"] == m["config_hash"] and r["status"] in ("done", "diverged")]
        if finished:
            per_model[m["model"]] = {
                system: np.array([_mse(r, system) if r["status"] == "done" else np.nan for r in finished])
                for system in ("polar", "cartesian")
            }
    if not per_model:
        return None
    fig = mse_distributions(per_model)
    return save_figure(fig, path)
