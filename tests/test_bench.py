"""The throughput benchmark: its counts, its naive reference and its output format (never its timings)."""
import json
import math
import os

import numpy as np
import pytest
import torch

from welavae.bench import (
    ARCHS,
    NaiveVAE,
    _PeakRSS,
    bench_config,
    count_parameters,
    main_table,
    naive_steps,
    run_benchmark,
    synthetic_data,
)
from welavae.config import DataConfig, TrainConfig, make_run_config
from welavae.nn import EnsembleVAE, plain_networks
from welavae.objectives import objective_terms
from welavae.train import train


def small_config(epochs=2, batch=32):
    return make_run_config("wela", label_dim=2, hidden=(32, 16), data=DataConfig(variants=1),
                           train=TrainConfig(epochs=epochs, batch_size=batch, lr=1e-3))


@pytest.mark.parametrize(
    "arch,expected",
    [
        # By hand, Σ (in+1)·out: encoder 4100→1200→1200→4, decoder 2→1200→1200→4100.
        ("paper", 4101 * 1200 + 1201 * 1200 + 1201 * 4 + 3 * 1200 + 1201 * 1200 + 1201 * 4100),  # 12,736,104
        # encoder 4100→64→32→4, decoder 2→32→64→4100.
        ("quick", 4101 * 64 + 65 * 32 + 33 * 4 + 3 * 32 + 33 * 64 + 65 * 4100),  # 533,384
    ],
)
def test_count_parameters(arch, expected):
    m = bench_config(arch).model
    assert count_parameters(m) == expected
    enc, dec = plain_networks(EnsembleVAE(m, [0]), 0)
    assert sum(p.numel() for p in [*enc.parameters(), *dec.parameters()]) == expected


def test_bench_configs_are_the_briefed_wela_vae():
    for arch, (hidden, batch) in ARCHS.items():
        c = bench_config(arch)
        assert (c.model.hidden, c.train.batch_size) == (hidden, batch)
        assert (c.model.label_dim, c.model.latent_dim, c.objective.regulariser) == (2, 2, "tc")
    with pytest.raises(ValueError, match="unknown benchmark architecture"):
        bench_config("huge")


def test_synthetic_data():
    images, labels = synthetic_data(10, bench_config("quick").model, seed=3)
    assert images.shape == (10, 64, 64) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert labels.shape == (10, 2) and labels.dtype == np.int64 and set(np.unique(labels)) <= {0, 1}


def test_naive_loss_equals_ensemble_loss():
    # The naive model is seed 5 of the ensemble written with nn.Sequential: same terms in float64.
    c = small_config()
    images, labels = synthetic_data(16, c.model, seed=1)
    x = torch.from_numpy(images.reshape(16, -1)).double()
    y = torch.from_numpy(labels)
    eps = torch.randn(16, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ens = EnsembleVAE(c.model, [5]).double()
    mu, lv = ens.encode(x, y)
    z = mu + torch.exp(0.5 * lv) * eps[None]
    img, lab = ens.decode(z)
    ref = objective_terms(c.objective, x=x, img_logits=img, mu=mu, logvar=lv, z=z, dataset_size=4096, y=y,
                          label_logits=lab)
    naive = NaiveVAE(c, 5)
    naive.encoder.double(), naive.decoder.double()
    got = naive.terms(x, y, eps, 4096)
    for name in ("loss", "image_nll", "label_nll", "kl", "tc"):
        assert got[name].shape == (1,)
        assert torch.allclose(got[name], ref[name], rtol=1e-12, atol=1e-9), name


def test_naive_training_follows_the_trainer():
    # Same initial weights, data order and noise: after 2 epochs × 4 steps the weights agree to float32
    # tolerance (the trainer's Adam is fused, the naive one is not, so not bitwise).
    c = small_config(epochs=2, batch=32)
    images, labels = synthetic_data(128, c.model, seed=2)
    res = train(c, [7], images, labels, progress=False)
    naive = NaiveVAE(c, 7)
    x_all = torch.from_numpy(images.reshape(128, -1))
    steps = naive_steps(naive, 7, x_all, torch.from_numpy(labels))
    for _ in range(2 * 4):
        next(steps)
    enc, dec = plain_networks(res.model, 0)
    start = plain_networks(EnsembleVAE(c.model, [7]), 0)
    moved = 0.0
    for p_trained, p_naive, p_init in zip([*enc.parameters(), *dec.parameters()], naive.parameters(),
                                          [*start[0].parameters(), *start[1].parameters()]):
        assert torch.allclose(p_naive, p_trained, atol=2e-5), (p_naive - p_trained).abs().max()
        moved = max(moved, (p_trained - p_init).abs().max().item())
    assert moved > 1e-3  # lr 1e-3 × 8 steps: the comparison is not between untouched weights


def test_fast_run_writes_the_contract(tmp_path):
    path = tmp_path / "bench.json"
    result = run_benchmark(archs=("quick",), fast=True, json_path=path, print_table=False)
    assert json.loads(path.read_text()) == json.loads(json.dumps(result))
    assert isinstance(result["peak_gflops"], float) and result["peak_gflops"] > 0
    assert [(r["arch"], r["impl"], r["seeds"]) for r in result["rows"]] == [
        ("quick", "naive", 1), ("quick", "welavae", 1), ("quick", "welavae", 2)]
    for r in result["rows"]:
        for key in ("seed_samples_per_s", "gflops", "peak_rss_mb"):
            assert isinstance(r[key], float) and math.isfinite(r[key]) and r[key] > 0, key
        assert r["steps"] == 2
        # gflops = 6 · P · seed-samples/s (module docstring)
        assert r["gflops"] == pytest.approx(6 * 533_384 * r["seed_samples_per_s"] / 1e9, rel=1e-12)
        assert r["fraction_of_peak"] == pytest.approx(r["gflops"] / result["peak_gflops"])
    naive = result["rows"][0]
    assert naive["speedup_vs_naive"] == 1.0
    # The naive loop ran before and after the welavae rows; the faster run is the reference.
    assert len(naive["naive_runs"]) == 2 and naive["seed_samples_per_s"] == max(naive["naive_runs"])
    for r in result["rows"][1:]:
        assert r["speedup_vs_naive"] == pytest.approx(r["seed_samples_per_s"] / naive["seed_samples_per_s"])
        assert r["compiled_nll"] is False  # a two-step run is too short for compiling to pay
    assert result["machine"]["torch_version"] == torch.__version__
    assert result["archs"]["quick"]["parameters_per_seed"] == 533_384


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown benchmark architecture"):
        run_benchmark(archs=("paper", "nope"), fast=True, print_table=False)
    with pytest.raises(ValueError, match="seed counts"):
        run_benchmark(archs=("quick",), seeds=(0, 2), fast=True, print_table=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            run_benchmark(device="cuda", fast=True, print_table=False)


def test_main_table():
    # Hand-built result: 50 GFLOP/s of a 200 GFLOP/s peak is 25.0 %.
    result = {"peak_gflops": 200.0, "rows": [
        {"arch": "paper", "impl": "naive", "seeds": 1, "seed_samples_per_s": 1000.0, "gflops": 25.0,
         "peak_rss_mb": 700.4, "speedup_vs_naive": 1.0},
        {"arch": "paper", "impl": "welavae", "seeds": 8, "seed_samples_per_s": 2500.0, "gflops": 50.0,
         "peak_rss_mb": 1500.0, "speedup_vs_naive": 2.5}]}
    lines = main_table(result).splitlines()
    assert "200.0 GFLOP/s" in lines[0]
    assert lines[1].split()[:3] == ["arch", "impl", "seeds"]
    assert lines[4].split() == ["paper", "welavae", "8", "2,500", "50.0", "25.0", "2.50", "1,500"]


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_peak_rss_is_per_block():
    # A 256 MB array touched inside the block raises its peak by ≥ 256 MB; one freed before it does not count.
    big = np.ones(64 * 2**20, dtype=np.float32)  # 256 MB, freed before the next block
    with _PeakRSS() as before:
        pass
    del big
    with _PeakRSS() as quiet:
        pass
    with _PeakRSS() as loud:
        a = np.ones(64 * 2**20, dtype=np.float32)
        del a
    assert quiet.mb < before.mb - 200
    assert loud.mb > quiet.mb + 250


def test_paired_rows_time_the_naive_loop_between_epochs():
    result = run_benchmark(archs=("quick",), seeds=(2,), steps=4, paired=True, print_table=False)
    naive, ours = result["rows"]
    assert "paired" not in naive and result["settings"]["paired"] is True
    p = ours["paired"]
    # Fixed steps: one pair per timed epoch.
    assert p["pairs"] == ours["steps"] // ours["steps_per_epoch"] >= 1
    assert math.isfinite(p["speedup_vs_naive_median"]) and p["speedup_vs_naive_median"] > 0
    assert p["naive_seed_samples_per_s_median"] > 0
    assert "× naive, paired" in main_table(result)
