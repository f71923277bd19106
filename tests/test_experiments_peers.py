"""The peers preset (issue 29): its plan as literal values, and the sweep and report end to end on tiny data.

Known answers: the plan's numbers written out from the issue and the presets it borrows from (the table
preset's Blobs network, the sprites preset's twin settings; γ a tenth of Table 1's 2,000 and 1,500;
γ_sup disentanglement_lib's 4, times the batch for xent); every reported number recomputed from the run
directories with the metric functions themselves.
"""
import csv
import math

import numpy as np
import pytest
from plans import resolved
from threadpoolctl import threadpool_limits

from welavae.data.sprites import write_sprites_npz
from welavae.experiments import sprites
from welavae.experiments.peers import KEYS, peers_plan, write_report
from welavae.experiments.presets import PRESETS
from welavae.experiments.sweep import run_plan
from welavae.experiments.sweepdir import SweepDir
from welavae.metrics import downstream_task, label_accuracy, mig, split_indices
from welavae.metrics._mi import discretize_factors
from welavae.run import Run
from welavae.truth import ground_truth

KEEP = {"scale": [0, 5], "orientation": [0, 10], "posX": list(range(0, 32, 4)), "posY": list(range(0, 32, 4))}
GRID = (1, 3, 2, 2, 8, 8)  # 768 images


def test_the_plan_is_every_method_on_every_data_set_with_all_and_a_hundredth_of_the_labels(tmp_path):
    plan = {s.model: s for s in peers_plan(tmp_path / "sprites.npz")}
    # 6 methods; the 5 labelled ones twice (fractions 1 and 0.01) on 3 data sets; β-TCVAE once on Blobs, once on
    # the twin: 2 + 3·10 = 32
    assert len(plan) == 32 and list(plan)[:3] == ["tcvae", "p2-wela", "p2-wela-f0.01"]
    assert list(plan)[-2:] == ["twin-ccvae", "twin-ccvae-f0.01"] and list(plan) == list(KEYS)
    assert all(s.seeds == (0, 1, 2) for s in plan.values())  # cut from 16 (table) and 8 (sprites) to fit the hour
    t, w = plan["tcvae"], plan["p3-wela-f0.01"]
    assert (t.kind, t.label_dim, t.hyper["latent_dim"], t.data.label_fraction) == ("tcvae", None, 5, 1.0)
    assert (w.kind, w.label_dim, w.hyper["latent_dim"], w.data.label_fraction, w.hyper["gamma"]) == \
        ("wela", 3, 2, 0.01, 150.0)  # Table 1's 1,500 / 10
    assert plan["p2-wela"].hyper["gamma"] == 200.0 and plan["twin-wela"].hyper["gamma"] == 200.0
    assert plan["p2-wela-auto"].hyper["gamma"] == "auto" and plan["twin-s2-embed"].hyper["supervised_loss"] == "embed"
    assert plan["p3-ccvae"].kind == "ccvae" and "gamma" not in plan["p3-ccvae"].hyper
    # Blobs: the table preset's data, network and 150 epochs
    b = plan["p2-s2-xent"]
    assert (b.data.variants, b.data.shape, b.hyper["hidden"], b.hyper["train"].batch_size, b.hyper["train"].lr,
            b.hyper["train"].epochs, b.hyper["tc_estimator"]) == (1, "disk", (64, 32), 256, 1e-3, 150, "mss")
    # the twin: the sprites preset's subset, network and 25 epochs, K = 6, p = 2
    tw = plan["twin-ccvae-f0.01"]
    assert (tw.data.dataset, tw.data.subset, tw.data.weak_labels, tw.data.label_fraction) == \
        ("sprites", 20_000, "angle(posX,posY):2, distance(posX,posY):2", 0.01)
    assert (tw.hyper["hidden"], tw.hyper["train"].batch_size, tw.hyper["train"].epochs, tw.hyper["latent_dim"]) == \
        ((128, 64), 64, 25, 6)
    assert plan["twin-tcvae"].data.weak_labels is None and plan["twin-tcvae"].hyper["latent_dim"] == 6
    # resolved: S2's γ_sup is disentanglement_lib's 4 × the batch of 256 for xent, 4 for embed; CCVAE no label weight
    cfg = {s.model: s.config for s in resolved([plan[k] for k in ("p2-s2-xent", "p2-s2-embed", "p2-ccvae")])}
    assert cfg["p2-s2-xent"].objective.gamma_sup == 1024.0 and cfg["p2-s2-embed"].objective.gamma_sup == 4.0
    assert cfg["p2-ccvae"].label_weight is None and cfg["p2-ccvae"].model.encoder_input == "image"
    assert peers_plan(tmp_path / "t.npz", seeds=2, epochs=3)[0].hyper["train"].epochs == 3
    with pytest.raises(ValueError, match="unknown model 'p4-wela'"):
        peers_plan(tmp_path / "t.npz", models=["p4-wela"])
    assert PRESETS["peers"].report == "peers.md" and not any(tmp_path.iterdir())


MODELS = ["tcvae", "p2-wela-auto-f0.01", "p2-s2-xent", "p3-ccvae-f0.01", "twin-tcvae", "twin-s2-embed-f0.01",
          "twin-ccvae"]


def test_the_preset_trains_and_reports_each_number_from_the_run_directories(tmp_path):
    twin = write_sprites_npz(tmp_path / "sprites.npz", keep=KEEP)
    plan = peers_plan(twin, seeds=2, epochs=1, models=MODELS, size=16, subset=512, grid=GRID)
    out = tmp_path / "out"
    run_plan(plan, out=out, progress=False, standard="none")
    write_report(out, SweepDir(out).plan())
    summary = {(r["data"], r["model"]): r for r in csv.DictReader(open(out / "peers.csv"))}
    seeds = list(csv.DictReader(open(out / "peers_seeds.csv")))
    # β-TCVAE is one model on Blobs, listed in both Blobs tables
    assert set(summary) == {("blobs-p2", "tcvae"), ("blobs-p2", "p2-wela-auto-f0.01"), ("blobs-p2", "p2-s2-xent"),
                            ("blobs-p3", "tcvae"), ("blobs-p3", "p3-ccvae-f0.01"), ("twin", "twin-tcvae"),
                            ("twin", "twin-s2-embed-f0.01"), ("twin", "twin-ccvae")}
    assert len(seeds) == 2 * 8 and (out / "peers.md").exists()
    targets = {}
    for row in seeds:
        r = Run(out / "runs" / row["model"] / "chunks" / "seeds_0-1")
        if r.array("labels") is not None:
            targets[row["data"]] = r.array("labels")
    for row in seeds:
        r = Run(out / "runs" / row["model"] / "chunks" / "seeds_0-1")
        truth = ground_truth(r.config, r.array("factors"))
        mu = r.mu[int(row["seed"])].astype(np.float64)
        assert float(row["polar_mse"]) == pytest.approx(truth.mse(mu, "polar").mse)
        assert float(row["cartesian_mse"]) == pytest.approx(truth.mse(mu, "cartesian").mse)
        sets = list(truth.factor_sets.values())
        for col, (f, _, cont) in zip(("mig_factors", "mig_label_coords"), sets):
            assert float(row[col]) == pytest.approx(mig(mu, discretize_factors(f, continuous=cont).codes))
        y = targets[row["data"]]
        pred = r.array("label_pred")
        if pred is None:  # β-TCVAE: no label predictor
            assert row["acc"] == ""
        else:  # each method's own predictor against every sample's labels, hidden ones included
            assert float(row["acc"]) == pytest.approx(np.mean(label_accuracy(pred[int(row["seed"])], y)))
        tr, te = split_indices(len(mu), num_train=100, num_test=len(mu) - 100, groups=truth.groups)
        with threadpool_limits(1):  # tiny fits: a second thread only waits (as in the report)
            d = downstream_task(mu[tr], y[tr], mu[te], y[te], num_train=(10, 100))
        assert float(row["down_10"]) == pytest.approx(d["10:mean_test_accuracy"])
        assert float(row["down_100"]) == pytest.approx(d["100:mean_test_accuracy"])
        if row["data"] == "twin":  # the free latents: those the lower MSE did not pick
            system = min(("polar", "cartesian"), key=lambda s: truth.mse(mu, s).mse)
            f, names, _ = truth.factor_sets["factors"]
            want = sprites.free_nmi(mu, f, names, truth.mse(mu, system).channels)
            assert float(row["free_nmi_scale"]) == pytest.approx(want["scale"])
        else:
            assert "free_nmi_scale" not in row or row["free_nmi_scale"] == ""
    s = summary[("blobs-p2", "p2-s2-xent")]
    assert (s["method"], s["labels"], s["K"], s["weight"], s["seeds"]) == ("S2-β-TCVAE (xent)", "1", "2",
                                                                           "γ_sup=1024", "2")
    mine = [float(r["polar_mse"]) for r in seeds if r["model"] == "p2-s2-xent"]
    assert float(s["polar_mse_lowest"]) == pytest.approx(min(mine))
    assert float(s["polar_mse_mean"]) == pytest.approx(np.mean(mine))
    assert s["polar_success"] == f"{sum(m < 100 for m in mine)}/2"
    assert summary[("blobs-p2", "p2-wela-auto-f0.01")]["weight"] == "auto"
    assert summary[("twin", "twin-s2-embed-f0.01")]["weight"] == "γ_sup=4"
    assert summary[("twin", "twin-ccvae")]["method"] == "CCVAE" and summary[("twin", "twin-ccvae")]["weight"] == ""
    assert math.isnan(float(summary[("twin", "twin-tcvae")]["acc"] or "nan"))
    figures = sorted(p.name for p in (out / "figures").glob("*_seed*.png"))
    assert any(n.startswith("twin-ccvae_seed") for n in figures)
