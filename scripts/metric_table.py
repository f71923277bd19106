"""Markdown table of the standard disentanglement metrics of a ``welavae reproduce`` output.

    python scripts/metric_table.py RESULTS_DIR [--seed 0] [--num-train 10000] [--num-test 5000]

Rows: a perfect Cartesian code (μ = (c1, c2)), a perfect polar code
(μ = (φ, d)), and the best seed (lowest polar MSE, paper eq. 6–7) of every
model in ``RESULTS_DIR/runs/<model>/`` (``mu.npy`` (S, N, K), ``factors.npy``
(N, 2) = (c1, c2), ``seeds.json``), each scored against the Cartesian factors
(c1, c2) — 64 classes each — and against the polar factors (φ, d) binned into
``--factor-bins`` equal-width bins.  Every metric is
:func:`welavae.metrics.standard_metrics` with disentanglement_lib's
definitions; the FactorVAE score reads a model's stored μ as its encoder's
output on the data set's images (the encoder is deterministic).  Samples
sharing a position form one group of the DCI/SAP train/test split.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from welavae.data import polar_factors
from welavae.metrics import polar_mse, standard_metrics

COLUMNS = [("MIG", "mig"), ("DCI D", "dci_disentanglement"), ("DCI C", "dci_completeness"),
           ("DCI I train", "dci_informativeness_train"), ("DCI I test", "dci_informativeness_test"),
           ("SAP", "sap"), ("Modularity", "modularity"), ("FactorVAE", "factor_vae")]


def load_models(results_dir: Path):
    """[(model, mu (S, N, K), factors (N, 2), seeds)] from RESULTS_DIR/runs/<model>/."""
    runs = results_dir / "runs"
    if not runs.is_dir():
        raise SystemExit(f"{runs} does not exist: RESULTS_DIR must be a `welavae reproduce` output directory")
    out = []
    for d in sorted(p for p in runs.iterdir() if (p / "mu.npy").is_file()):
        mu, factors = np.load(d / "mu.npy"), np.load(d / "factors.npy")
        seeds = json.loads((d / "seeds.json").read_text())
        if mu.ndim != 3 or len(seeds) != mu.shape[0] or factors.shape != (mu.shape[1], 2):
            raise SystemExit(f"{d}: mu.npy {mu.shape}, factors.npy {factors.shape} and "
                             f"{len(seeds)} seeds in seeds.json do not fit together")
        out.append((d.name, mu, factors, seeds))
    if not out:
        raise SystemExit(f"{runs} holds no runs/<model>/mu.npy")
    return out


def best_seed(mu, factors, seeds):
    """(index, seed, polar MSE) of the finite seed with the lowest polar MSE."""
    scores = [polar_mse(m, factors).mse if np.isfinite(m).all() else math.inf for m in mu]
    i = int(np.argmin(scores))
    return i, seeds[i], scores[i]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results_dir", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-train", type=int, default=10_000)
    ap.add_argument("--num-test", type=int, default=5_000)
    ap.add_argument("--bins", type=int, default=20, help="bins per latent (MIG, modularity)")
    ap.add_argument("--factor-bins", type=int, default=20, help="bins for each polar factor")
    args = ap.parse_args(argv)

    models = load_models(args.results_dir)
    factors = models[0][2]
    for name, _, f, _ in models[1:]:
        if not np.array_equal(f, factors):
            raise SystemExit(f"runs/{name}/factors.npy differs from runs/{models[0][0]}/factors.npy")
    polar = polar_factors(factors)
    groups = np.unique(factors, axis=0, return_inverse=True)[1].reshape(-1)  # one group per position

    codes = [("perfect Cartesian μ = (c1, c2)", factors), ("perfect polar μ = (φ, d)", polar)]
    for name, mu, f, seeds in models:
        i, seed, mse = best_seed(mu, f, seeds)
        codes.append((f"{name} seed {seed} (polar MSE {mse:.2f})", mu[i]))

    kw = dict(seed=args.seed, num_train=args.num_train, num_test=args.num_test, bins=args.bins,
              factor_bins=args.factor_bins, groups=groups)
    header = ["Code", "Factors"] + [c for c, _ in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|:---|:---|" + "---:|" * len(COLUMNS)]
    params = None
    for label, mu in codes:
        for fname, f, cont in (("Cartesian (c1, c2)", factors, ()),
                               (f"polar (φ, d), {args.factor_bins} bins", polar, (0, 1))):
            t = time.perf_counter()
            m = standard_metrics(mu, f, continuous=cont, **kw)
            print(f"{label} vs {fname}: {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
            params = params or m["params"]
            lines.append(f"| {label} | {fname} | " + " | ".join(f"{m[k]:.3f}" for _, k in COLUMNS) + " |")

    print(f"Standard disentanglement metrics of {args.results_dir} (disentanglement_lib definitions): "
          f"N = {params['num_samples']}, {params['representation_bins']} bins per latent, DCI/SAP on "
          f"{params['num_train']} train / {params['num_test']} test samples split by position, "
          f"seed {args.seed}; FactorVAE: {params['factor_vae']['num_train']} train / "
          f"{params['factor_vae']['num_eval']} eval votes of batch {params['factor_vae']['batch_size']}.")
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
