"""`welavae reproduce`: outputs per the contract, resumable after kill -9, idempotent, Ray backend."""
import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from welavae.config import DataConfig, TrainConfig
from welavae.experiments.plan import PRESETS, RunSpec, make_plan, model_config
from welavae.experiments.sweep import reproduce

CONTRACT = ("model,beta,gamma,label_dim,latent_dim,seeds,polar_lowest,polar_mean,polar_best10_mean,"
            "cartesian_lowest,cartesian_mean,cartesian_best10_mean,acc_angle,acc_distance")


def tiny_plan(epochs=2, seeds=2, models=("tcvae", "wela_p2")):
    data = DataConfig(variants=1)
    train = TrainConfig(epochs=epochs, batch_size=64, lr=1e-3, checkpoint_every=1)
    return [RunSpec(m, model_config(m, data=data, train=train, hidden=(16, 8)), tuple(range(seeds))) for m in models]


def test_presets_match_the_paper():
    plan = make_plan("paper")
    assert [s.model for s in plan] == ["tcvae"] + [f"wela_p{p}" for p in range(2, 9)]
    gammas = [s.config.objective.gamma for s in plan[1:]]
    assert gammas == [2000, 1500, 1000, 800, 750, 600, 500]  # Table 1
    for s in plan:
        c = s.config
        assert c.objective.beta == 40 and c.train.lr == 1e-4 and c.train.batch_size == 256 and c.train.epochs == 150
        assert c.model.hidden == (1200, 1200) and c.data.variants == 25 and len(s.seeds) == 50
        assert c.model.latent_dim == (5 if s.model == "tcvae" else 2)
    quick = make_plan("quick", seeds=3, epochs=4, models=["wela_p3"])
    assert quick[0].seeds == (0, 1, 2) and quick[0].config.train.epochs == 4 and quick[0].config.model.label_dim == 3
    with pytest.raises(ValueError, match="unknown model"):
        make_plan("quick", models=["vae"])
    assert PRESETS["quick"]["models"][:2] == ("tcvae", "wela_p2")


def test_reproduce_writes_the_contract_and_reruns_in_seconds(tmp_path):
    out = tmp_path / "res"
    rows = reproduce(out=out, plan=tiny_plan(), data_dir=tmp_path / "cache", progress=False)
    assert [r["model"] for r in rows] == ["tcvae", "wela_p2"]
    header = (out / "table.csv").read_text().splitlines()[0]
    assert header == CONTRACT
    table = list(csv.DictReader((out / "table.csv").open()))
    assert table[0]["acc_angle"] == "" and float(table[1]["acc_angle"]) > 0.5
    assert table[1]["gamma"] == "2000" and table[0]["latent_dim"] == "5"
    with sqlite3.connect(out / "results.sqlite") as db:
        assert db.execute("select count(*) from results where status='done'").fetchone()[0] == 4
    assert np.load(out / "runs" / "tcvae" / "mu.npy").shape == (2, 4096, 5)
    assert np.load(out / "runs" / "wela_p2" / "mu.npy").dtype == np.float32
    assert np.load(out / "runs" / "wela_p2" / "factors.npy").shape == (4096, 2)
    figs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert "mse_distributions.png" in figs and any(f.startswith("tcvae_seed") for f in figs)
    before = {p: p.read_bytes() for p in [out / "table.csv", out / "table.md", out / "runs" / "tcvae" / "mu.npy"]}
    t = time.perf_counter()
    reproduce(out=out, plan=tiny_plan(), data_dir=tmp_path / "cache", progress=False)
    assert time.perf_counter() - t < 20  # nothing to train
    assert all(p.read_bytes() == b for p, b in before.items())
    # More seeds later: only the new ones train.
    rows = reproduce(out=out, plan=tiny_plan(seeds=3), data_dir=tmp_path / "cache", progress=False)
    assert rows[0]["seeds"] == 3 and np.load(out / "runs" / "tcvae" / "mu.npy").shape == (3, 4096, 5)


def test_changed_config_in_same_directory_is_refused(tmp_path):
    reproduce(out=tmp_path, plan=tiny_plan(epochs=1, seeds=1, models=("tcvae",)), data_dir=tmp_path / "c", progress=False)
    with pytest.raises(ValueError, match="another configuration"):
        reproduce(out=tmp_path, plan=tiny_plan(epochs=2, seeds=1, models=("tcvae",)), data_dir=tmp_path / "c",
                  progress=False)


SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from test_experiments_sweep import tiny_plan
from welavae.experiments.sweep import reproduce
reproduce(out={out!r}, plan=tiny_plan(epochs=6), data_dir={cache!r}, progress=False)
"""


def test_kill_minus_9_mid_sweep_then_resume_equals_uninterrupted(tmp_path):
    cache = str(tmp_path / "cache")
    reference = tmp_path / "ref"
    reproduce(out=reference, plan=tiny_plan(epochs=6), data_dir=cache, progress=False)
    out = tmp_path / "killed"
    code = SCRIPT.format(tests=str(Path(__file__).parent), out=str(out), cache=cache)
    proc = subprocess.Popen([sys.executable, "-c", code])
    ckpt = out / "runs" / "wela_p2" / "chunks" / "seeds_0-1" / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)  # mid-way through the second model
    proc.wait()
    with sqlite3.connect(out / "results.sqlite") as db:
        assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
        models = {m for (m,) in db.execute("select distinct model from results")}
    assert models == {"tcvae"}
    assert not (out / "table.csv").exists() or "wela" not in (out / "table.csv").read_text()
    reproduce(out=out, plan=tiny_plan(epochs=6), data_dir=cache, progress=False)
    assert (out / "table.csv").read_bytes() == (reference / "table.csv").read_bytes()
    assert np.array_equal(np.load(out / "runs" / "wela_p2" / "mu.npy"), np.load(reference / "runs" / "wela_p2" / "mu.npy"))


def test_ray_backend_on_a_local_instance(tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        rows = reproduce(out=tmp_path / "ray", plan=tiny_plan(epochs=1), data_dir=tmp_path / "cache", backend="ray",
                         progress=False)
    finally:
        ray.shutdown()
    local = reproduce(out=tmp_path / "local", plan=tiny_plan(epochs=1), data_dir=tmp_path / "cache", progress=False)
    assert [r["model"] for r in rows] == ["tcvae", "wela_p2"]
    for a, b in zip(rows, local):
        assert a["polar_lowest"] == pytest.approx(b["polar_lowest"], rel=1e-4)
    assert json.loads((tmp_path / "ray" / "runs" / "tcvae" / "seeds.json").read_text()) == [0, 1]


@pytest.mark.slow
def test_quick_preset_shows_the_paper_finding(tmp_path):
    # The README's main job (≈ 6 min on 2 cores): WeLa-VAE p=2 learns a polar code, β-TCVAE does not.
    rows = {r["model"]: r for r in reproduce("quick", out=tmp_path, data_dir=tmp_path / "cache", progress=False)}
    tc, wela = rows["tcvae"], rows["wela_p2"]
    assert wela["polar_lowest"] < tc["polar_lowest"] / 2
    assert tc["cartesian_lowest"] < tc["polar_lowest"]
    assert wela["acc_angle"] >= 0.99 and wela["acc_distance"] >= 0.99
