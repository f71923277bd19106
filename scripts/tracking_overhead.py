"""Tracking overhead (--track-every 1) on the quick preset's size: N = 4,096 disk blobs, MLP 64-32, batch 64, 8 seeds,
label-free WeLa-VAE p = 2, every epoch tracked (the conjectures preset's setting); paired A/B runs.

    python scripts/tracking_overhead.py 10      # epochs per run; prints the overhead as JSON
"""
import json
import sys
import tempfile
import time

import torch

from welavae.config import DataConfig, TrainConfig, make_run_config
from welavae.data import make_blobs, weak_labels
from welavae.run import Run
from welavae.train import train
from welavae.train.tracking import Tracker

E = int(sys.argv[1]) if len(sys.argv) > 1 else 10
b = make_blobs(1, seed=0, shape="disk")
labels = weak_labels(b.factors, 2)


def cfg(track):
    return make_run_config("wela", label_dim=2, encoder_input="image", hidden=(64, 32),
                           data=DataConfig(variants=1, shape="disk"),
                           train=TrainConfig(epochs=E, batch_size=64, lr=1e-3, track_every=track))



res = {"plain": [], "tracked": []}
for rep in range(2):
    for kind in ("plain", "tracked"):
        c = cfg(1 if kind == "tracked" else 0)
        tr = Tracker(Run(tempfile.mkdtemp()), c, b.images, b.factors, labels) if kind == "tracked" else None
        t0, c0 = time.perf_counter(), time.process_time()
        r = train(c, range(8), b.images, labels, progress=False, track=tr, compile_nll=False)
        res[kind].append((time.perf_counter() - t0, time.process_time() - c0))
        print(kind, rep, f"wall {res[kind][-1][0]:.1f}s cpu {res[kind][-1][1]:.1f}s", flush=True)
w = {k: sum(x[0] for x in v) for k, v in res.items()}
c = {k: sum(x[1] for x in v) for k, v in res.items()}
print(json.dumps({"epochs": E, "wall": w, "cpu": c, "wall_overhead_pct": 100 * (w["tracked"] / w["plain"] - 1),
                  "cpu_overhead_pct": 100 * (c["tracked"] / c["plain"] - 1), "threads": torch.get_num_threads()}))
