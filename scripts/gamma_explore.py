"""How γ is set, explored on the table preset's data and network (docs/gamma.md, "How the rule was chosen").

    python scripts/gamma_explore.py P VARIANT [SEEDS] [--json FILE]

trains WeLa-VAE with p = P on the authors' 4,096 disk blobs (MLP 64-32, Adam 1e-3, batch 256,
150 epochs, MSS: ``welavae reproduce --preset table``'s settings), seeds 0 … SEEDS−1 (default 8),
with γ set by VARIANT:

* ``fixed:G``: γ = G throughout (``--gamma G``);
* ``auto:START:TARGET``: ``--gamma auto --gamma-target TARGET`` (``acc:A``, ``nll:K`` or
  ``grad:F``), starting from γ₀ = START (a number, or ``rule``: the paper's rule, which is what
  ``--gamma auto`` starts from).

Prints one JSON line (and appends it to ``--json``): each seed's polar and Cartesian MSE, label
accuracy and final γ, the median γ at 15 epochs spread over the run, the lowest and mean polar MSE
and the seeds below 100.  Only γ₀ needs this script; everything else is ``welavae train``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np

from welavae.config import DataConfig, TrainConfig, make_run_config
from welavae.data import load
from welavae.metrics import cartesian_mse, label_accuracy, polar_mse
from welavae.nn.encode import encode_dataset
from welavae.train import train


def config(p: int, variant: str):
    kw = dict(label_dim=p, hidden=(64, 32), data=DataConfig(variants=1, shape="disk"),
              train=TrainConfig(epochs=150, batch_size=256, lr=1e-3), tc_estimator="mss")
    how, _, rest = variant.partition(":")
    if how == "fixed":
        return make_run_config("wela", gamma=float(rest), **kw)
    if how != "auto" or ":" not in rest:
        raise SystemExit(f"VARIANT is fixed:G or auto:START:TARGET, got {variant!r}")
    start, _, target = rest.partition(":")
    c = make_run_config("wela", gamma="auto", gamma_target=target, **kw)
    if start != "rule":
        c = dataclasses.replace(c, objective=dataclasses.replace(c.objective, gamma=float(start)))
    return c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("p", type=int)
    ap.add_argument("variant")
    ap.add_argument("seeds", type=int, nargs="?", default=8)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    c = config(args.p, args.variant)
    ds = load(c)
    t = time.time()
    r = train(c, list(range(args.seeds)), ds.images, ds.labels, progress=False)
    mu, _, pred = encode_dataset(r.model, ds.images, ds.labels)
    polar = [polar_mse(m, ds.factors).mse for m in mu]
    out = dict(p=args.p, variant=args.variant, seeds=args.seeds, secs=round(time.time() - t),
               polar=[round(x, 1) for x in polar],
               cart=[round(cartesian_mse(m, ds.factors).mse, 1) for m in mu],
               acc=[round(float(np.mean(label_accuracy(pr, ds.labels))), 3) for pr in pred],
               gamma_final=[round(float(x), 1) for x in r.gamma[-1]],
               gamma_traj_median=[round(float(np.median(r.gamma[e])), 1)
                                  for e in range(0, len(r.gamma), max(1, len(r.gamma) // 15))],
               lowest=round(min(polar), 1), mean=round(float(np.mean(polar)), 1),
               below100=int(sum(x < 100 for x in polar)))
    print(json.dumps(out))
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
