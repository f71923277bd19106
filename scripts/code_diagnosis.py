"""Why a seed's coordinate MSE is high: lost position, or position kept but entangled.

    python scripts/code_diagnosis.py RUN_DIR [RUN_DIR ...]

RUN_DIR is a `welavae train` directory or a model of a `welavae reproduce`
output (``RESULTS/runs/<model>``): ``mu.npy`` (S, N, K) and ``factors.npy``
(N, 2) = (c1, c2) of Blobs.  Per seed, beside the paper's polar and Cartesian
MSE (eqs. 5–7):

``kNN``   how much of the position the code keeps at all: the squared L2 error
          of (c1, c2) predicted from μ (each channel standardised) by its 10
          nearest neighbours (in sample, so a lower bound).  A code that
          folds regions onto each other, or collapses, scores high here.
``φ mono``, ``d mono``  the RMS error of the best *monotone* map from the
          channel that eq. 6 assigns to φ (degrees) and to d (pixels) —
          isotonic regression, so any bend of the channel is forgiven and
          only non-monotonic dependence (a channel mixing φ with d, or
          folding back at a label boundary) remains.

A seed with a small kNN error but large monotone errors keeps the position in
an entangled form; a seed with both small is the paper's polar code.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.neighbors import KNeighborsRegressor

from welavae.data import polar_factors
from welavae.metrics import cartesian_mse, polar_mse


def monotone_rmse(x: np.ndarray, y: np.ndarray) -> float:
    """RMS error of the best monotone (increasing or decreasing) map x → y."""
    errors = []
    for increasing in (True, False):
        fit = IsotonicRegression(increasing=increasing).fit(x, y).predict(x)
        errors.append(float(np.mean((fit - y) ** 2)))
    return math.sqrt(min(errors))


def diagnose(mu: np.ndarray, factors: np.ndarray) -> dict:
    """One seed's μ (N, K) against Blobs' (c1, c2) (N, 2)."""
    polar = polar_mse(mu, factors)
    phi, dist = polar_factors(factors).T
    i, j = polar.channels
    sd = mu.std(axis=0)
    z = (mu - mu.mean(axis=0)) / np.where(sd > 0, sd, 1.0)  # each channel on one scale: neighbours by all of them
    knn = KNeighborsRegressor(n_neighbors=10).fit(z, factors).predict(z)
    return {"polar": polar.mse, "cartesian": cartesian_mse(mu, factors).mse,
            "knn": float(np.mean(np.sum((knn - factors) ** 2, axis=1))),
            "phi_mono_deg": math.degrees(monotone_rmse(mu[:, i], phi)),
            "d_mono_px": monotone_rmse(mu[:, j], dist)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    print("| run | seed | polar MSE | Cartesian MSE | kNN | φ mono (°) | d mono (px) |")
    print("|:---|---:|---:|---:|---:|---:|---:|")
    medians = []
    for run in args.run_dirs:
        try:
            mu = np.load(run / "mu.npy")
            factors = np.load(run / "factors.npy")
        except (OSError, ValueError) as e:
            print(f"error: {run} has no readable mu.npy and factors.npy ({e})", file=sys.stderr)
            return 2
        rows = [diagnose(m, factors) for m in mu]
        for s, r in enumerate(rows):
            print(f"| {run.name} | {s} | {r['polar']:.1f} | {r['cartesian']:.1f} | {r['knn']:.1f} "
                  f"| {r['phi_mono_deg']:.1f} | {r['d_mono_px']:.1f} |")
        medians.append((run.name, {k: float(np.median([r[k] for r in rows])) for k in rows[0]}))
    print("\nMedians over seeds:\n")
    print("| run | polar MSE | Cartesian MSE | kNN | φ mono (°) | d mono (px) |")
    print("|:---|---:|---:|---:|---:|---:|")
    for name, m in medians:
        print(f"| {name} | {m['polar']:.1f} | {m['cartesian']:.1f} | {m['knn']:.1f} "
              f"| {m['phi_mono_deg']:.1f} | {m['d_mono_px']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
