"""welavae.perf.throughput: its counts, naive reference and output format (never its timings); no CUDA in the parent."""
import json
import math

import numpy as np
import pytest
import torch

from welavae.config import DataConfig, TrainConfig, make_run_config
from welavae.nn import EnsembleVAE, plain_networks
from welavae.objectives import bernoulli_nll, objective_terms
from welavae.perf.throughput import (
    ARCHS,
    NaiveVAE,
    Row,
    _in_own_process,
    _measure_row,
    _result_rows,
    bench_config,
    count_parameters,
    main_table,
    multiply_adds,
    naive_train,
    protocol,
    run_benchmark,
    synthetic_data,
)
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


def ensemble_terms(c, n, *, seed, dataset_size):
    """Float64 synthetic batch (x (n, D), y, eps (n, K)), seed ``seed`` alone as an ensemble, and its terms."""
    images, labels = synthetic_data(n, c.model, seed=1)
    x = torch.from_numpy(images.reshape(n, -1)).double()
    y = torch.from_numpy(labels)
    eps = torch.randn(n, c.model.latent_dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ens = EnsembleVAE(c.model, [seed]).double()
    mu, lv = ens.encode(x, y)
    z = mu + torch.exp(0.5 * lv) * eps[None]
    img, lab = ens.decode(z)
    ref = objective_terms(c.objective, image_nll=bernoulli_nll(img, x), mu=mu, logvar=lv, z=z, dataset_size=dataset_size, y=y,
                          label_logits=lab)
    return x, y, eps, ens, ref


def test_naive_loss_and_gradients_equal_the_ensemble():
    # The naive model is seed 5 of the ensemble written with nn.Sequential: same terms and same gradients
    # in float64 (each seed's gradient is its own: the ensemble's loss is a sum over independent seeds).
    c = small_config()
    x, y, eps, ens, ref = ensemble_terms(c, 16, seed=5, dataset_size=4096)
    naive = NaiveVAE(c, 5)
    naive.encoder.double(), naive.decoder.double()
    got = naive.terms(x, y, eps, 4096)
    for name in ("loss", "image_nll", "label_nll", "kl", "tc"):
        assert got[name].shape == (1,)
        assert torch.allclose(got[name], ref[name], rtol=1e-12, atol=1e-9), name
    ref["loss"].sum().backward()
    got["loss"].sum().backward()
    naive_layers = [m for m in [*naive.encoder, *naive.decoder] if isinstance(m, torch.nn.Linear)]
    ens_layers = [*ens.encoder, *ens.decoder]
    assert len(naive_layers) == len(ens_layers) == 6
    for lin, layer in zip(naive_layers, ens_layers):
        g_w, g_b = layer.seed_weight(0, grad=True)
        assert torch.allclose(lin.weight.grad, g_w, rtol=1e-10, atol=1e-12)
        assert torch.allclose(lin.bias.grad, g_b, rtol=1e-10, atol=1e-12)


def test_naive_training_follows_the_trainer():
    # Same initial weights, data order and noise: after 2 epochs × 4 steps the weights agree to float32
    # tolerance (the trainer's Adam is fused, the naive one is not, so not bitwise).
    c = small_config(epochs=2, batch=32)
    images, labels = synthetic_data(128, c.model, seed=2)
    res = train(c, [7], images, labels, progress=False)
    epochs_seen = []
    (naive,) = naive_train(c, [7], images, labels, on_epoch=lambda e, _: epochs_seen.append(e))
    assert epochs_seen == [1, 2]
    enc, dec = plain_networks(res.model, 0)
    start = plain_networks(EnsembleVAE(c.model, [7]), 0)
    moved = 0.0
    for p_trained, p_naive, p_init in zip([*enc.parameters(), *dec.parameters()], naive.parameters(),
                                          [*start[0].parameters(), *start[1].parameters()]):
        assert torch.allclose(p_naive, p_trained, atol=2e-5), (p_naive - p_trained).abs().max()
        moved = max(moved, (p_trained - p_init).abs().max().item())
    assert moved > 1e-3  # lr 1e-3 × 8 steps: the comparison is not between untouched weights


def test_protocol_brackets_each_arch_with_the_naive_reference():
    plan = protocol({"quick": (1, 8), "paper": (16,)}, paired=True)
    assert plan == (
        Row("quick", "naive", 1), Row("quick", "welavae", 1, True), Row("quick", "welavae", 8, True),
        Row("quick", "naive", 1),
        Row("paper", "naive", 1), Row("paper", "welavae", 16, True), Row("paper", "naive", 1),
    )
    assert all(not r.paired for r in protocol({"quick": (1,)}))


def test_ratios_come_from_the_rows():
    # Hand-made measurements, quick batch 64: naive 64·10/1.0 = 640 and 64·10/0.8 = 800 seed-samples/s
    # (the faster, 800, is the reference); welavae S = 8: 8·64·10/2.0 = 2560 → 3.2 × naive.
    plan = protocol({"quick": (8,)})
    measured = [{"seconds": 1.0, "steps": 10, "peak_rss_mb": 400.0}, {"seconds": 2.0, "steps": 10, "peak_rss_mb": 600.0},
                {"seconds": 0.8, "steps": 10, "peak_rss_mb": 410.0}]
    rows = _result_rows(plan, measured, peak=100.0)
    assert [(r["impl"], r["seeds"]) for r in rows] == [("naive", 1), ("welavae", 8)]
    naive, ours = rows
    assert naive["seed_samples_per_s"] == pytest.approx(800.0) and naive["peak_rss_mb"] == 410.0
    assert naive["naive_runs"] == pytest.approx([640.0, 800.0])
    assert ours["seed_samples_per_s"] == pytest.approx(2560.0)
    assert (naive["speedup_vs_naive"], ours["speedup_vs_naive"]) == (1.0, pytest.approx(3.2))
    # 6 · 533,384 FLOPs per seed-sample; the matmuls run skip the first layer's input gradient 2 · 4100 · 64.
    assert ours["gflops"] == pytest.approx(6 * 533_384 * 2560 / 1e9)
    assert ours["matmul_gflops"] == pytest.approx((6 * 533_384 - 2 * 4100 * 64) * 2560 / 1e9)
    assert ours["fraction_of_peak"] == pytest.approx(ours["gflops"] / 100.0)


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
    assert lines[4].split() == ["paper", "welavae", "8", "2,500", "50.0", "25.0", "2.50", "1,500", "-"]  # no GPU: "-"


def test_each_row_reports_its_own_peak_memory():
    # One paper seed holds weights, gradients and Adam's two moments, 16 bytes per fp32 parameter:
    # 16 · (12,736,104 − 533,384) bytes more than a quick seed.  The quick row runs after the paper row,
    # in a process of its own, so its peak must not include the paper row's.
    kw = dict(device="cpu", steps_per_epoch=1, timed_epochs=1, seconds=0.0, tf32=True)
    paper = _in_own_process(_measure_row, Row("paper", "welavae", 1), **kw)
    quick = _in_own_process(_measure_row, Row("quick", "welavae", 1), **kw)
    assert paper["steps"] == quick["steps"] == 1
    assert paper["peak_rss_mb"] - quick["peak_rss_mb"] > 16 * (12_736_104 - 533_384) / 2**20


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


def test_conv_rows_count_parameters_and_multiply_adds_by_hand():
    m = bench_config("conv_gray").model
    assert (m.arch, m.image_shape, bench_config("conv_rgb").model.image_shape) == ("conv", (64, 64, 1), (64, 64, 3))
    # Parameters: convs 32·17 + 32·513 + 64·513 + 64·1025; dense (1024+4+1)·256 + 257·4 + 3·256 + 257·1024
    # + the label head 257·4; transposed convs 64·64·16+64 + 64·32·16+32 + 32·32·16+32 + 32·1·16+1.
    assert count_parameters(m) == 115_392 + 529_416 + 115_329 == 760_137
    enc, dec = plain_networks(EnsembleVAE(m, [0]), 0)
    assert sum(p.numel() for p in [*enc.parameters(), *dec.parameters()]) == 760_137
    # Multiply-adds: conv 32²·32·17 + 16²·32·513 + 8²·64·513 + 4²·64·1025 = 7,910,400; dense 529,416;
    # transposed 4²·64·64·16 + 8²·64 + 8²·64·32·16 + 16²·32 + 16²·32·32·16 + 32²·32 + 32²·32·16 + 64² = 7,913,472.
    assert multiply_adds(m) == 7_910_400 + 529_416 + 7_913_472


def test_naive_conv_vae_loss_and_gradients_equal_the_ensemble():
    c = bench_config("conv_rgb")
    assert synthetic_data(2, c.model)[0].shape == (2, 64, 64, 3)
    x, y, eps, ens, ref = ensemble_terms(c, 4, seed=3, dataset_size=100)
    naive = NaiveVAE(c, 3)
    naive.encoder.double(), naive.decoder.double()
    got = naive.terms(x, y, eps, 100)
    for name in ("loss", "image_nll", "label_nll", "kl", "tc"):
        assert torch.allclose(got[name], ref[name], rtol=1e-12, atol=1e-9), name
    ref["loss"].sum().backward()
    got["loss"].sum().backward()
    first_conv, last_deconv = naive.encoder["features"][0], naive.decoder["image"][-1][-1]
    assert torch.allclose(first_conv.weight.grad, ens.conv.convs[0].weight.grad, rtol=1e-9, atol=1e-12)
    assert torch.allclose(last_deconv.bias.grad, ens.deconv.deconvs[-1].bias.grad, rtol=1e-9, atol=1e-12)


def test_bench_on_cuda_does_all_device_work_in_children(monkeypatch):
    # A GPU in exclusive-process mode admits one context: the parent must create none (issue 24, item 5).
    # CUDA is faked (one device); any CUDA call in this process would raise; children are replaced by a recorder.
    from welavae.perf import throughput as bench

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)

    def no_cuda(*a, **k):
        raise AssertionError("the parent touched CUDA")
    for name in ("init", "_lazy_init", "get_device_name", "synchronize", "max_memory_allocated", "set_device"):
        monkeypatch.setattr(torch.cuda, name, no_cuda)
    calls = []

    def child(fn, *args, **kwargs):
        calls.append(fn.__name__)
        if fn is bench._machine:
            return {"device": "cuda", "device_name": "GPU X"}
        if fn is bench.matmul_peak_gflops:
            return 1000.0
        return {"seconds": 1.0, "steps": 4, "steps_per_epoch": 4, "compiled_nll": False, "peak_rss_mb": 500.0,
                "peak_device_mb": 123.0}
    monkeypatch.setattr(bench, "_in_own_process", child)
    result = bench.run_benchmark(device="cuda", archs=("quick",), seeds=(2,), fast=True, print_table=False)
    assert calls == ["_machine", "matmul_peak_gflops", "_measure_row", "_measure_row", "_measure_row",
                     "matmul_peak_gflops"]  # naive, welavae S=2, naive again
    assert [r["peak_device_mb"] for r in result["rows"]] == [123.0, 123.0]
    assert bench.main_table(result).splitlines()[3].split()[-1] == "123"


def test_a_conv_row_records_its_seed_layout_and_the_table_shows_it():
    # A welavae conv row runs in the layout auto chose (or the one forced) and says which; the naive loop has none.
    kw = dict(device="cpu", steps_per_epoch=1, timed_epochs=1, seconds=0.0, tf32=False)
    forced = _measure_row(Row("conv_gray", "welavae", 2), seed_layout="per-seed", **kw)
    assert forced["seed_layout"] == {"layout": "per-seed", "chosen": "given", "seconds": {}}
    timed = _measure_row(Row("conv_gray", "welavae", 2), **kw)["seed_layout"]
    assert timed["chosen"] == "timed" and timed["layout"] in ("grouped", "per-seed")
    assert [len(timed["seconds"][k]) for k in ("grouped", "per-seed")] == [3, 3]
    assert _measure_row(Row("conv_gray", "welavae", 1), **kw)["seed_layout"] is None  # one seed: no choice
    assert _measure_row(Row("quick", "welavae", 2), **kw)["seed_layout"] is None  # the MLP: always stacked
    result = {"peak_gflops": 200.0, "rows": [
        {"arch": "conv_gray", "impl": "naive", "seeds": 1, "seed_samples_per_s": 1000.0, "gflops": 25.0,
         "peak_rss_mb": 400.0, "speedup_vs_naive": 1.0, "seed_layout": None},
        {"arch": "conv_gray", "impl": "welavae", "seeds": 2, "seed_samples_per_s": 1100.0, "gflops": 27.5,
         "peak_rss_mb": 500.0, "speedup_vs_naive": 1.1, "seed_layout": forced["seed_layout"]}]}
    lines = main_table(result).splitlines()
    assert lines[1].split("  ")[-1].strip() == "seed layout"
    assert lines[3].rstrip().endswith("-") and lines[4].rstrip().endswith("per-seed (given)")
    with pytest.raises(ValueError, match="seed layout must be one of auto, grouped, per-seed"):
        run_benchmark(archs=("conv_gray",), fast=True, print_table=False, seed_layout="loop")
