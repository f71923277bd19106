"""The sprites preset (issue 22) on a reduced twin: the plan, the sweep on benchmark data, and the report."""
import csv
import math

import numpy as np
import pytest

from welavae.data.sprites import write_sprites_npz
from welavae.experiments.sprites import sprites_plan, write_report
from welavae.experiments.sweep import run_plan
from welavae.experiments.sweepdir import SweepDir
from welavae.metrics import factor_entropy, mutual_info_matrix
from welavae.run import Run
from welavae.truth import ground_truth

KEEP = {"scale": [0, 5], "orientation": [0, 10], "posX": list(range(0, 32, 4)), "posY": list(range(0, 32, 4))}
GRID = (1, 3, 2, 2, 8, 8)  # 768 images


def test_the_plan_is_the_issues_models_with_a_tenth_of_the_rules_gamma(tmp_path):
    plan = {s.model: s for s in sprites_plan(tmp_path / "sprites.npz")}
    assert list(plan) == ["tcvae-k6", "wela_p2-k2", "wela_p2-k6", "wela_p3-k2", "wela_p3-k6", "wela_p3-k6-diagonal",
                          "wela_p3-k6-image"]
    assert all(s.seeds == tuple(range(8)) for s in plan.values())
    t, w = plan["tcvae-k6"], plan["wela_p3-k6-diagonal"]
    assert t.kind == "tcvae" and t.hyper["latent_dim"] == 6 and t.data.weak_labels is None and "gamma" not in t.hyper
    assert w.data.weak_labels == "angle(posX,posY):3, distance(posX,posY):3" and w.hyper["label_head"] == "diagonal"
    assert w.hyper["gamma"] == 150 and plan["wela_p2-k2"].hyper["gamma"] == 200  # Table 1's 1,500 and 2,000 / 10
    assert plan["wela_p3-k6-image"].hyper["encoder_input"] == "image"
    assert {s.data.subset for s in plan.values()} == {20_000}
    with pytest.raises(ValueError, match="unknown model 'wela_p9'"):
        sprites_plan(tmp_path / "t.npz", models=["wela_p9"])
    assert not any(tmp_path.iterdir())


def test_the_preset_trains_on_the_twin_and_reports_each_model(tmp_path):
    twin = write_sprites_npz(tmp_path / "sprites.npz", keep=KEEP)
    plan = sprites_plan(twin, seeds=2, epochs=1, models=["tcvae-k6", "wela_p2-k2", "wela_p3-k6"], subset=512,
                        grid=GRID)
    out = tmp_path / "out"
    run_plan(plan, out=out, progress=False, standard="none")
    write_report(out, SweepDir(out).plan())
    summary = {r["model"]: r for r in csv.DictReader(open(out / "sprites.csv"))}
    seeds = list(csv.DictReader(open(out / "sprites_seeds.csv")))
    assert set(summary) == {"tcvae-k6", "wela_p2-k2", "wela_p3-k6"} and len(seeds) == 6
    assert (out / "sprites.md").exists() and (out / "table.md").exists()
    # each seed's numbers are those of its run evaluated against the twin's ground truth
    for row in seeds:
        r = Run(out / "runs" / row["model"] / "chunks" / "seeds_0-1")
        truth = ground_truth(r.config, r.array("factors"))
        mu = r.mu[int(row["seed"])].astype(np.float64)
        assert float(row["polar_mse"]) == pytest.approx(truth.mse(mu, "polar").mse)
        assert truth.pair_names == ("posX", "posY") and truth.widths == (7.0, 7.0)
        if row["model"] == "wela_p2-k2":  # no latent is left once the position has two
            assert row["free_nmi_shape"] == ""
        else:  # the free latents are those the lower MSE did not pick
            sysname = min(("polar", "cartesian"), key=lambda s: truth.mse(mu, s).mse)
            free = [k for k in range(mu.shape[1]) if k not in truth.mse(mu, sysname).channels]
            f, names, _ = truth.factor_sets["factors"]
            shape = f[:, [names.index("shape")]]
            want = mutual_info_matrix(mu[:, free], shape).max() / factor_entropy(shape)[0]
            assert float(row["free_nmi_shape"]) == pytest.approx(want)
    s = summary["wela_p3-k6"]
    assert s["seeds"] == "2" and float(s["gamma"]) == 150 and 0 <= float(s["dci_d_label_coords"]) <= 1
    assert math.isclose(float(s["polar_mse_lowest"]), min(float(r["polar_mse"]) for r in seeds
                                                           if r["model"] == "wela_p3-k6"))
    figures = sorted(p.name for p in (out / "figures").glob("*_seed*.png"))
    assert any(n.startswith("wela_p3-k6_seed") for n in figures)


def test_the_preset_runs_on_deepminds_file_by_name_and_refuses_in_one_sentence(tmp_path, capsys):
    from welavae.cli import main

    plan = sprites_plan(tmp_path / "d.npz", dataset="dsprites", models=["wela_p2-k2"])
    assert plan[0].data.dataset == "dsprites" and plan[0].data.data_path == str(tmp_path / "d.npz")
    base = ["reproduce", "--preset", "sprites", "--out", str(tmp_path / "out")]
    for extra, msg in ((["--dataset", "dsprites"], "--dataset dsprites needs --data-path"),
                       (["--dataset", "dsprites", "--data-path", str(tmp_path)],
                        "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz, published at"),
                       (["--data-path", str(tmp_path / "none.npz")], "none.npz does not exist")):
        assert main(base + extra) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1
    assert main(["reproduce", "--preset", "quick", "--dataset", "sprites", "--out", str(tmp_path / "q")]) == 2
    assert "--dataset does not apply to the quick preset" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written, not even the results folder
