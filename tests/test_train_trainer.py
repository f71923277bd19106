"""welavae.train.trainer: the multi-seed trainer's invariants, resume, divergence, the label window, fast paths.

Known answers: a seed trained alone equals the same seed beside others; the
trainer's output before partial labels existed (pinned arrays, welavae 0.1.0);
a missing label adds exactly 0 to the loss and every gradient
(categorical_nll), so an empty label window trains exactly as labels that are
all missing, and a full window exactly as no window; the window is a function
of the epoch, so a killed run resumes into the same result.

No host wait in a training step, proved on the ``meta`` device (issue 24): a
``meta`` tensor has a shape and no values (``.item()``, ``bool()``,
``.tolist()`` or a copy to the CPU raise on it), so a step that runs to the end
on ``meta`` reads nothing back from the device, which on a GPU is what keeps
the step from waiting for the host.
"""
import dataclasses
import json

import numpy as np
import pytest
import torch
from fixtures import SIZE, as_dataset, cfg16, small_cfg, train_interrupted
from fixtures import blobs_cfg as cfg

from welavae.checkpoint import load_checkpoint, save_checkpoint
from welavae.config import DataConfig, TrainConfig, make_run_config
from welavae.data import Dataset
from welavae.data.dataset import from_arrays, hide_labels, to_float
from welavae.nn import EnsembleVAE
from welavae.nn.encode import encode_dataset
from welavae.objectives.tc import log_importance_weights
from welavae.resolve import resolve
from welavae.run import Run
from welavae.train import train, trainer
from welavae.train.rundir import train_run
from welavae.train.trainer import _to_tensors


def test_seed_alone_equals_seed_beside_others(blobs):
    images, labels, _ = blobs
    # 3 · 128 = 384 steps at the paper's lr.  The one-wide-matmul first layer rounds differently
    # for S=1 and S=3 (~1e-7); at lr 1e-3 with the MSS estimator the dynamics are chaotic enough
    # to grow that to O(1) over a few hundred steps, at 1e-4 it stays ~1e-6.
    c = cfg(epochs=3, batch=32, lr=1e-4)
    together = train(c, [0, 1, 2], images, labels, progress=False)
    alone = train(c, [1], images, labels, progress=False)
    mu3, _, _ = encode_dataset(together.model, images, labels)
    mu1, _, _ = encode_dataset(alone.model, images, labels)
    assert np.abs(mu3[1] - mu1[0]).max() < 1e-4
    assert np.abs(mu3[0] - mu1[0]).max() > 1e-3  # and seeds do differ


def test_same_config_and_seed_is_bitwise_reproducible(blobs):
    images, labels, _ = blobs
    a = train(cfg(), [4, 5], images, labels, progress=False)
    b = train(cfg(), [4, 5], images, labels, progress=False)
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k
    assert np.array_equal(a.history, b.history)


def test_wela_reaches_label_accuracy(blobs):
    # A real training run end to end: WeLa-VAE p=2 on the N=4096 set (paper §4.4: accuracy ≈ 1).
    images, labels, _ = blobs
    c = cfg(epochs=6, hidden=(64, 32))
    res = train(c, [0], images, labels, progress=False)
    _, _, pred = encode_dataset(res.model, images, labels)
    acc = (pred[0] == labels).mean(0)
    assert acc.min() >= 0.99, acc
    assert res.history[-1, 0, 0] < res.history[0, 0, 0]  # the loss went down


def test_resume_equals_uninterrupted(blobs, tmp_path):
    images, labels, _ = blobs
    c = cfg(epochs=4, checkpoint_every=2)
    full = train(c, [0, 1], images, labels, progress=False)
    train_interrupted(c, [0, 1], images, labels, tmp_path / "last.pt", after_epoch=3)
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 2
    resumed = train(c, [0, 1], images, labels, checkpoint=tmp_path / "last.pt", progress=False)
    assert resumed.resumed_from == 2
    for va, vb in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(va, vb)
    assert np.array_equal(full.history, resumed.history)


def test_checkpoint_from_another_run_is_refused(blobs, tmp_path):
    images, labels, _ = blobs
    train(cfg(epochs=1), [0], images, labels, checkpoint=tmp_path / "last.pt", progress=False)
    with pytest.raises(ValueError, match="another run"):
        train(cfg(epochs=1, lr=5e-4), [0], images, labels, checkpoint=tmp_path / "last.pt", progress=False)


def test_diverging_seed_is_frozen_and_others_continue(blobs, tmp_path):
    images, labels, _ = blobs
    c = cfg(epochs=3, checkpoint_every=1)
    clean = train(c, [0, 1, 2], images, labels, progress=False)
    # Train one epoch, then poison seed 1 so that its posterior variance overflows (σ = e^5000).
    first = cfg(epochs=3, checkpoint_every=1)
    with pytest.raises(KeyboardInterrupt):
        def stop(epoch, _):
            raise KeyboardInterrupt
        train(first, [0, 1, 2], images, labels, checkpoint=tmp_path / "last.pt", progress=False, on_epoch=stop)
    state = load_checkpoint(tmp_path / "last.pt")
    model = EnsembleVAE(c.model, [0, 1, 2])
    model.load_state_dict(state["model"])
    with torch.no_grad():
        model.encoder[-1].bias[1, 0, c.model.latent_dim:] = 1e4
    poisoned = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam(model.parameters())
    opt.load_state_dict(state["optimizer"])
    save_checkpoint(tmp_path / "last.pt", model=model, optimizer=opt, config=c, epoch=1,
                    history=state["history"].numpy(), diverged_epoch=state["diverged_epoch"].numpy())
    res = train(c, [0, 1, 2], images, labels, checkpoint=tmp_path / "last.pt", progress=False)
    assert res.diverged_epoch.tolist() == [-1, 1, -1]
    assert np.isnan(res.history[1:, 1]).all() and np.isfinite(res.history[:, [0, 2]]).all()
    for k, v in res.model.state_dict().items():  # seed 1 frozen where it diverged
        dim = 1 if k == "encoder.0.weight" else 0
        assert torch.equal(v.select(dim, 1), poisoned[k].select(dim, 1)), k
    for a, b in zip(res.model.state_dict().values(), clean.model.state_dict().values()):
        for i in (0, 2):  # the others are untouched by their neighbour's failure
            dim = 1 if a.dim() == 3 and a.shape[1] == 3 and a.shape[0] != 3 else 0
            assert torch.allclose(a.select(dim, i), b.select(dim, i), atol=1e-5)


def test_conv_encoder_seeds_are_independent_and_train(blobs):
    # Grouped convolutions keep seeds apart: seed 1 alone equals seed 1 beside seeds 0 and 2.
    images, labels, _ = blobs
    c = make_run_config("wela", label_dim=2, hidden=(16,), encoder="conv", data=DataConfig(variants=1),
                        train=TrainConfig(epochs=1, batch_size=64, lr=1e-3))
    sub = slice(0, 512)
    together = train(c, [0, 1, 2], images[sub], labels[sub], progress=False)
    alone = train(c, [1], images[sub], labels[sub], progress=False)
    mu3, _, _ = encode_dataset(together.model, images[sub], labels[sub])
    mu1, _, _ = encode_dataset(alone.model, images[sub], labels[sub])
    assert np.abs(mu3[1] - mu1[0]).max() < 1e-4
    assert np.isfinite(together.history).all()


def test_divergence_guard_selects_zero_over_nan_and_keeps_live_seeds_bitwise():
    # A dead seed's gradient and Adam momentum may be NaN; 0·NaN = NaN, so the guard must select, not multiply.
    from welavae.train.trainer import _Divergence

    c = make_run_config("wela", label_dim=2, hidden=(8,), encoder="conv")  # grouped conv (S·c, …) and stacked parameters
    model = EnsembleVAE(c.model, [0, 1, 2])
    opt = torch.optim.Adam(model.parameters())
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    opt.step()
    grads = {}
    for (p, dim) in model.parameter_seed_dims():
        p.grad = torch.randn_like(p)
        model.seed_slice(p.grad, dim, 1).fill_(float("nan"))
        model.seed_slice(opt.state[p]["exp_avg"], dim, 1).fill_(float("nan"))
        grads[p] = (p.grad.clone(), opt.state[p]["exp_avg"].clone())
    guard = _Divergence(model, opt, np.full(3, -1), "cpu")
    guard.check(torch.tensor([1.0, float("nan"), 2.0]), epoch=4)
    guard.hold()
    assert guard.sync().tolist() == [-1, 4, -1]
    for p, dim in model.parameter_seed_dims():
        for now, before in zip((p.grad, opt.state[p]["exp_avg"]), grads[p]):
            assert torch.equal(model.seed_slice(now, dim, 1), torch.zeros_like(model.seed_slice(now, dim, 1)))
            for i in (0, 2):
                assert torch.equal(model.seed_slice(now, dim, i), model.seed_slice(before, dim, i))
    guard.check(torch.tensor([float("inf"), 0.0, 2.0]), epoch=6)  # a dead seed keeps its epoch
    assert guard.sync().tolist() == [6, 4, -1]


def _masked_fills(guard) -> int:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        guard.hold()
    return sum(e.count for e in prof.key_averages() if e.key == "aten::masked_fill_")


def test_divergence_guard_on_the_cpu_selects_nothing_while_every_seed_is_alive():
    # The selections keep every value while all seeds live, so on the CPU (a host read waits for nothing) hold()
    # skips them: 0 masked_fill_ (the quick MLP had 24 per step, docs/performance.md); one dead seed: a gradient and
    # a momentum per parameter, 2·P.
    from welavae.train.trainer import _Divergence

    c = make_run_config("wela", label_dim=2, hidden=(8,), encoder="conv")
    model = EnsembleVAE(c.model, [0, 1, 2])
    opt = torch.optim.Adam(model.parameters())
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    opt.step()
    guard = _Divergence(model, opt, np.full(3, -1), "cpu")
    assert _masked_fills(guard) == 0
    guard.check(torch.tensor([1.0, float("nan"), 2.0]), epoch=0)
    assert _masked_fills(guard) == 2 * len(list(model.parameters()))


def test_checkpoints_by_wall_time_follow_a_fake_clock(blobs, tmp_path, monkeypatch):
    # checkpoint_minutes=10, each epoch "takes" 6 minutes: due after epoch 3 (12 min since the start), then at the end.
    from welavae.train import trainer

    images, labels, _ = blobs
    now, saved = [0.0], []
    monkeypatch.setattr(trainer, "_clock", lambda: now[0])
    real_save = trainer.save_checkpoint
    monkeypatch.setattr(trainer, "save_checkpoint", lambda path, **kw: (saved.append(kw["epoch"]), real_save(path, **kw)))

    def tick(epoch, _):
        now[0] += 360

    c = cfg(model="tcvae", epochs=4, hidden=(8,), checkpoint_every=1, checkpoint_minutes=10)
    train(c, [0], images[:256], checkpoint=tmp_path / "last.pt", progress=False, on_epoch=tick)
    assert saved == [3, 4]  # checkpoint_every=1 is replaced by the wall-time cadence
    # The cadence is not part of the run's identity: the same run with another cadence resumes from it.
    res = train(cfg(model="tcvae", epochs=4, hidden=(8,), checkpoint_every=1), [0], images[:256],
                checkpoint=tmp_path / "last.pt", progress=False)
    assert res.resumed_from == 4


def test_environment_is_recorded_and_a_resume_elsewhere_warns(blobs, tmp_path, monkeypatch):
    from welavae.train import trainer

    images, labels, _ = blobs
    c = cfg(model="tcvae", epochs=2, hidden=(8,), checkpoint_every=1)
    with pytest.raises(KeyboardInterrupt):
        def stop(epoch, _):
            raise KeyboardInterrupt
        train(c, [0], images[:256], checkpoint=tmp_path / "last.pt", progress=False, on_epoch=stop)
    first = json.loads(load_checkpoint(tmp_path / "last.pt")["environment"])
    assert first == [dict(trainer.environment_record("cpu", tf32=False), from_epoch=0)]
    real = trainer.environment_record
    monkeypatch.setattr(trainer, "environment_record",
                        lambda device, tf32: dict(real(device, tf32=tf32), device_name="GPU X", torch="9.9"))
    with pytest.warns(UserWarning, match=r"resuming at epoch 1 on another device or software \(device_name 'cpu' "
                                         r"-> 'GPU X'; torch '.*' -> '9.9'\)"):
        res = train(c, [0], images[:256], checkpoint=tmp_path / "last.pt", progress=False)
    assert [(e["device_name"], e["from_epoch"]) for e in res.environment] == [("cpu", 0), ("GPU X", 1)]
    assert json.loads(load_checkpoint(tmp_path / "last.pt")["environment"]) == res.environment


def test_prefetched_draws_give_bit_identical_results(blobs):
    # The background thread draws the same (seed, epoch) noise and (data_seed, epoch) order as the foreground.
    images, labels, _ = blobs
    c = cfg(epochs=3, hidden=(16,))
    a = train(c, [0, 2], images[:512], labels[:512], progress=False, prefetch=True)
    b = train(c, [0, 2], images[:512], labels[:512], progress=False, prefetch=False)
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k
    assert np.array_equal(a.history, b.history)


class _MetaAdam(torch.optim.Optimizer):
    """Adam's two moments and update in tensor ops (fused Adam has no ``meta`` kernel; on CUDA it reads no host value)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                state = self.state[p]
                if not state:
                    state["exp_avg"], state["exp_avg_sq"] = torch.zeros_like(p), torch.zeros_like(p)
                state["exp_avg"].lerp_(p.grad, 1 - b1)
                state["exp_avg_sq"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                p.sub_(group["lr"] * state["exp_avg"] / (state["exp_avg_sq"].sqrt() + group["eps"]))


def test_meta_tensors_refuse_host_reads():
    # The premise of the tests below: were the step to read a value, it would raise.
    t = torch.ones(3, device="meta")
    for read in (lambda: bool(t.all()), lambda: t.sum().item(), lambda: t.cpu().numpy()):
        with pytest.raises((RuntimeError, NotImplementedError)):
            read()


OPTIONS = [
    dict(model="tcvae"),
    dict(model="tcvae", tc_estimator="mws"),
    dict(model="betavae"),
    dict(model="dipvae"),
    dict(model="wela", label_dim=2),
    dict(model="wela", label_dim=2, tc_estimator="mws"),
    dict(model="wela", label_dim=3, label_head="diagonal"),
    dict(model="wela", label_dim=2, encoder_input="image"),
    dict(model="wela", label_dim=2, encoder="conv"),
    dict(model="dipvae", label_dim=2, label_head="diagonal", encoder_input="image"),
]


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(f"{v}" for v in o.values()))
def test_a_training_step_reads_nothing_from_the_device(opts):
    opts = dict(opts)
    kind = opts.pop("model")
    c = make_run_config(kind, hidden=(8,), data=DataConfig(variants=1), train=TrainConfig(batch_size=4), **opts)
    model = EnsembleVAE(c.model, [0, 1]).to("meta")
    optimizer = _MetaAdam(model.parameters())
    guard = trainer._Divergence(model, optimizer, np.array([-1, 3]), "meta")  # seed 1 diverged before
    x = torch.empty(4, c.model.image_dim, device="meta")
    # Partial labels: on meta the values are unknown, so the −1 paths run as for any label.
    y = torch.empty(4, c.model.num_labels, dtype=torch.int64, device="meta") if c.model.has_labels else None
    noise = torch.empty(2, 4, c.model.latent_dim, device="meta")
    log_w = log_importance_weights(4, 64, device="meta") if c.objective.tc_estimator == "mss" else None
    for _ in range(2):  # the second step also holds the dead seed's Adam momentum
        terms = trainer._step(model, optimizer, guard, c, x, y, noise, epoch=5, n=64, log_w=log_w, compiled=False)
    assert terms["loss"].shape == (2,) and terms["loss"].device.type == "meta"
    assert guard.alive.device.type == "meta" and guard.diverged_at.shape == (2,)


# --------------------------------------------------------------------------- the convolutions' seed layout


def _conv_run(epochs=2):
    """A tiny --arch conv run (16×16×3, two labels, 3 batches of 32) on arrays."""
    c = make_run_config("wela", label_dims=(2, 3), latent_dim=3, arch="conv", image_shape=(16, 16, 3),
                        data=DataConfig(source="arrays"),
                        train=TrainConfig(epochs=epochs, batch_size=32, lr=1e-3, checkpoint_every=1))
    g = np.random.default_rng(0)
    images = g.random((96, 16, 16, 3)).astype(np.float32) ** 3
    labels = np.stack([g.integers(0, p, 96) for p in (2, 3)], 1)
    return c, images, labels


def _favour(monkeypatch, fast: str):
    """The trainer's time_layouts on the real kernels, read by a clock on which a step in ``fast`` takes 0.5 s
    and in the other layout 1 s (the clock is read at a step's start and end, in one layout)."""
    from welavae.nn.conv import time_layouts as real

    def timed(modules, x, **kw):
        now = [0.0]

        def clock():
            now[0] += 0.5 if modules[0].layout == fast else 1.0
            return now[0]
        return real(modules, x, clock=clock, **kw)
    monkeypatch.setattr(trainer, "time_layouts", timed)


def test_a_seed_trains_to_the_same_numbers_in_either_seed_layout():
    # The same stacked weights run by other kernels (welavae/nn/conv.py): equal to float32 rounding, not bit for bit.
    c, images, labels = _conv_run()
    runs = {layout: train(c, [0, 1, 2], images, labels, progress=False, seed_layout=layout)
            for layout in ("grouped", "per-seed")}
    grouped, per_seed = runs["grouped"], runs["per-seed"]
    assert per_seed.seed_layout == {"layout": "per-seed", "chosen": "given", "seconds": {}}
    assert per_seed.environment[0]["seed_layout"] == "per-seed"
    assert per_seed.model.conv.layout == per_seed.model.deconv.layout == "grouped"  # left after the loop
    mu_g, _, _ = encode_dataset(grouped.model, images, labels)
    mu_p, _, _ = encode_dataset(per_seed.model, images, labels)
    assert np.abs(mu_g - mu_p).max() < 1e-5
    assert np.allclose(grouped.history, per_seed.history, rtol=1e-5, atol=1e-5)  # terms near 0 (TC): absolute
    assert not np.array_equal(mu_g, mu_p) or not np.array_equal(grouped.history, per_seed.history)
    with pytest.raises(ValueError, match="seed layout must be one of auto, grouped, per-seed, got 'loop'"):
        train(c, [0, 1], images, labels, progress=False, seed_layout="loop")


def test_auto_keeps_the_faster_layout_and_status_json_records_the_choice(tmp_path, monkeypatch):
    c, images, labels = _conv_run(epochs=1)
    _favour(monkeypatch, "per-seed")
    ds = Dataset(images=images, labels=labels, label_dims=(2, 3))
    result = train_run(c, [0, 1], tmp_path / "run", data=ds, progress=False)
    # Known answer from the fake clock: three timed steps of each layout, 1 s grouped and 0.5 s per seed.
    expected = {"layout": "per-seed", "chosen": "timed", "seconds": {"grouped": [1.0] * 3, "per-seed": [0.5] * 3}}
    assert result.seed_layout == expected
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["seed_layout"] == expected
    assert [e["seed_layout"] for e in status["environment"]] == ["per-seed"]
    with pytest.raises(ValueError, match="seed layout must be one of auto, grouped, per-seed, got 'loop'"):
        train_run(c, [0, 1], tmp_path / "bad", data=ds, progress=False, seed_layout="loop")
    assert not (tmp_path / "bad").exists()  # refused before anything was written


def test_a_resumed_run_keeps_its_recorded_layout_and_equals_the_uninterrupted_one(tmp_path, monkeypatch):
    c, images, labels = _conv_run(epochs=3)
    _favour(monkeypatch, "per-seed")
    whole = train(c, [0, 1], images, labels, progress=False)
    train_interrupted(c, [0, 1], images, labels, tmp_path / "last.pt", after_epoch=1)
    _favour(monkeypatch, "grouped")  # the machine changed its mind: the resumed run must not
    resumed = train(c, [0, 1], images, labels, checkpoint=tmp_path / "last.pt", progress=False)
    assert whole.seed_layout["layout"] == "per-seed"
    assert resumed.seed_layout == {"layout": "per-seed", "chosen": "resumed", "seconds": {}}
    assert [(e["seed_layout"], e["from_epoch"]) for e in resumed.environment] == [("per-seed", 0)]
    for (k, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    assert np.array_equal(whole.history, resumed.history)
    # A layout given for the resume is used, and recorded as a change (its numbers round differently).
    train_interrupted(c, [0, 1], images, labels, tmp_path / "again.pt", after_epoch=1)  # timed: grouped now
    with pytest.warns(UserWarning, match=r"seed_layout 'grouped' -> 'per-seed'"):
        other = train(c, [0, 1], images, labels, checkpoint=tmp_path / "again.pt", progress=False,
                      seed_layout="per-seed")
    assert [(e["seed_layout"], e["from_epoch"]) for e in other.environment] == [("grouped", 0), ("per-seed", 1)]


def test_a_checkpoint_from_before_layouts_resumes_grouped_and_the_mlp_has_no_layout(blobs, monkeypatch):
    # Before layouts were recorded every conv run was grouped, the only layout the trainer had.
    conv = EnsembleVAE(_conv_run()[0].model, [0, 1])
    records = [{"device": "cpu", "from_epoch": 0}]
    assert trainer._recorded_layout(conv, records) == ([{"device": "cpu", "from_epoch": 0,
                                                        "seed_layout": "grouped"}], "grouped")
    assert trainer._recorded_layout(conv, []) == ([], "grouped")
    assert trainer._recorded_layout(EnsembleVAE(_conv_run()[0].model, [0]), records) == (records, None)  # one seed
    # The MLP's dense layers always run stacked: no choice, nothing timed, nothing recorded.
    monkeypatch.setattr(trainer, "time_layouts", lambda *a, **k: pytest.fail("an MLP has no layout to time"))
    images, labels, _ = blobs
    mlp = train(cfg(epochs=1, hidden=(8,)), [0, 1], images[:128], labels[:128], progress=False)
    assert trainer._recorded_layout(mlp.model, records) == (records, None)
    assert mlp.seed_layout is None and "seed_layout" not in mlp.environment[0]


def test_compile_pays_only_for_long_cpu_runs(monkeypatch):
    assert trainer.compile_pays("cpu", trainer.COMPILE_MIN_LOGITS)
    assert not trainer.compile_pays("cpu", trainer.COMPILE_MIN_LOGITS / 2)
    assert not trainer.compile_pays("meta", 1e15)
    monkeypatch.setenv("WELAVAE_COMPILE", "0")
    assert not trainer.compile_pays("cpu", 1e15)


def test_training_with_the_compiled_likelihood_matches_eager():
    from welavae.data import make_blobs, weak_labels

    blobs = make_blobs(1, seed=0)
    labels = weak_labels(blobs.factors, 2)
    c = make_run_config("wela", label_dim=2, hidden=(32, 16), data=DataConfig(variants=1),
                        train=TrainConfig(epochs=1, batch_size=64, lr=1e-4))
    eager = trainer.train(c, [0, 1], blobs.images, labels, progress=False, compile_nll=False)
    fast = trainer.train(c, [0, 1], blobs.images, labels, progress=False, compile_nll=True)
    assert abs(fast.history - eager.history).max() < 1e-3 * abs(eager.history).max()
    for (k, a), b in zip(eager.model.state_dict().items(), fast.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), k


@pytest.mark.parametrize("kind", ["uint8", "bool"])
def test_training_from_stored_pixels_keeps_them_and_equals_the_float_run(kind):
    rng = np.random.default_rng(0)
    pixels = (rng.integers(0, 256, (32, 8, 8)) if kind == "uint8" else rng.random((32, 8, 8)) < 0.3).astype(kind)
    cfg = make_run_config("tcvae", hidden=(8,), image_shape=(8, 8), train=TrainConfig(epochs=2, batch_size=8))
    x, _ = _to_tensors(pixels, None, "cpu")
    assert x.dtype == getattr(torch, kind) and x.element_size() * x.nelement() == pixels.size  # no float copy
    as_float = to_float(pixels)
    a = train(cfg, [0, 1], pixels, progress=False, compile_nll=False)
    b = train(cfg, [0, 1], as_float, progress=False, compile_nll=False)
    mu_a = encode_dataset(a.model, pixels, batch_size=8)[0]  # batches convert one by one
    mu_b = encode_dataset(b.model, as_float, batch_size=8)[0]  # the same batches: BLAS sums alike
    assert mu_a.tobytes() == mu_b.tobytes()


def mu_of(result, images, labels=None):
    return encode_dataset(result.model, images, labels)[0]


# ------------------------------------------------------------------------------ label window
@pytest.mark.parametrize("encoder_input", ["image", "image+labels"])
def test_empty_window_equals_every_label_missing(blobs16, encoder_input, monkeypatch):
    images, labels, _ = blobs16
    seeds = [0, 1]
    # The trainer refuses labels none of which is observed (a user's mistake); the window
    # produces exactly that inside the loop, so the check is lifted for the reference run.
    monkeypatch.setattr("welavae.train.preflight.check_labels", lambda y, n, dims: np.asarray(y, dtype=np.int64))
    windowed = train(cfg16(encoder_input=encoder_input, label_epochs=(0, 0)), seeds, images, labels, progress=False)
    missing = train(cfg16(encoder_input=encoder_input), seeds, images, np.full_like(labels, -1), progress=False)
    for (k, a), b in zip(windowed.model.state_dict().items(), missing.model.state_dict().values()):
        assert torch.equal(a, b), k
    # and no label ever reached a gradient: the label heads are still their initialisation
    init = EnsembleVAE(windowed.config.model, seeds).state_dict()
    last = len(windowed.model.decoder) - 1
    for name in (f"decoder.{last}.weight1", f"decoder.{last}.bias1"):
        assert torch.equal(windowed.model.state_dict()[name], init[name])
    assert (windowed.history[:, :, 2] == 0).all()  # label_nll


def test_full_window_equals_the_normal_run_and_a_short_one_does_not(blobs16):
    images, labels, _ = blobs16
    normal = train(cfg16(), [0, 1], images, labels, progress=False)
    full = train(cfg16(label_epochs=(0, 3)), [0, 1], images, labels, progress=False)
    short = train(cfg16(label_epochs=(1, 2)), [0, 1], images, labels, progress=False)
    assert np.array_equal(mu_of(full, images), mu_of(normal, images))
    assert np.array_equal(full.history, normal.history)
    assert not np.array_equal(mu_of(short, images), mu_of(normal, images))
    # outside the window the label term is exactly 0
    label_nll = short.history[:, :, 2]
    assert (label_nll[[0, 2]] == 0).all() and (label_nll[1] > 0).all()


def test_empty_window_from_a_tcvae_start_equals_the_tcvae_run(blobs16, tmp_path):
    """A label-free WeLa-VAE whose labels never arrive is β-TCVAE with two more, untouched, label heads.

    Without --init-from the two differ at the start: the dense head is drawn as one
    layer of D + Σp outputs, so the image bias comes from other draws than β-TCVAE's
    D outputs.  Starting both from one 1-epoch β-TCVAE removes that difference (a run
    of 0 epochs is refused unless it copies another: ``--epochs 0`` alone trains nothing);
    then the WeLa-VAE's encoder means equal β-TCVAE's bit for bit after training.
    """
    images, labels, factors = blobs16
    train_run(cfg16("tcvae", epochs=1), [0, 1], tmp_path / "tc1", data=as_dataset(images, None, factors))
    tc = train(cfg16("tcvae", init_from=str(tmp_path / "tc1")), [0, 1], images, progress=False)
    wela = train(cfg16(label_epochs=(0, 0), init_from=str(tmp_path / "tc1")), [0, 1], images, labels, progress=False)
    assert np.array_equal(mu_of(wela, images), mu_of(tc, images))
    assert not np.array_equal(mu_of(train(cfg16(label_epochs=(0, 0)), [0, 1], images, labels, progress=False), images),
                              mu_of(tc, images))


def test_killed_mid_window_resumes_into_the_same_run(blobs16, tmp_path):
    images, labels, factors = blobs16
    c = cfg16(epochs=4, label_epochs=(1, 3), track_every=1)
    whole = train_run(c, [0, 1], tmp_path / "whole", data=as_dataset(images, labels, factors))

    class Killed(Exception):
        pass

    def kill(epoch, _):
        if epoch == 2:  # after epoch 2's checkpoint, inside the window
            raise Killed

    with pytest.raises(Killed):
        train_run(c, [0, 1], tmp_path / "cut", data=as_dataset(images, labels, factors), on_epoch=kill)
    resumed = train_run(c, [0, 1], tmp_path / "cut", data=as_dataset(images, labels, factors))
    assert resumed.resumed_from == 2
    assert np.array_equal(Run(tmp_path / "cut").mu, Run(tmp_path / "whole").mu)
    assert np.array_equal(resumed.history, whole.history)
    assert (tmp_path / "cut" / "tracking.csv").read_text() == (tmp_path / "whole" / "tracking.csv").read_text()


PINNED = "tests/data/wela_p2_before_partial_labels.npz"


def test_all_labels_observed_gives_the_trainer_before_partial_labels(small):
    # tests/data/…npz: mu, logvar, history of this exact run, written by welavae 0.1.0 (commit 430b37c)
    # before labels could be missing, label_dims existed or the encoder could drop its labels.
    images, labels, _ = small
    r = train(small_cfg(), [0, 3], images, labels, progress=False)
    mu, logvar, _ = encode_dataset(r.model, images, labels)
    ref = np.load(PINNED)
    # Bit for bit on the kind of CPU that wrote them (an AMD EPYC); another CPU's BLAS kernels round
    # differently (an Intel Xeon: 6e-7 in mu, 6e-5 relative in the history), so: to float rounding.
    np.testing.assert_allclose(mu, ref["mu"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(logvar, ref["logvar"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(r.history, ref["history"], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kw", [dict(encoder_input="image"), dict(label_head="diagonal", latent_dim=3),
                                dict(latent_dim=4)])
def test_seed_alone_equals_seed_beside_others_with_partial_labels(small, kw):
    images, labels, _ = small
    partial = labels.copy()
    partial[np.random.default_rng(0).random(partial.shape) < 0.7] = -1  # 70 % of the entries missing
    c = make_run_config("wela", label_dim=2, hidden=(32, 16), data=DataConfig(variants=1),
                        train=TrainConfig(epochs=2, batch_size=64, lr=1e-4), **kw)
    together = train(c, [0, 1, 2], images, partial, progress=False)
    alone = train(c, [1], images, partial, progress=False)
    mu3, _, _ = encode_dataset(together.model, images, partial)
    mu1, _, _ = encode_dataset(alone.model, images, partial)
    assert np.abs(mu3[1] - mu1[0]).max() < 1e-5


def test_k_larger_than_m_trains_with_either_head(small):
    images, labels, _ = small
    for kw in (dict(latent_dim=4), dict(latent_dim=3, label_head="diagonal")):
        r = train(small_cfg(epochs=1, **kw), [0], images, labels, progress=False)
        assert np.isfinite(r.history).all()
    with pytest.raises(ValueError, match="K >= m"):
        make_run_config("wela", label_dim=2, latent_dim=1, label_head="diagonal")


# --------------------------------------------------------------------------- γ found during training (--gamma auto)


def auto_cfg16(target="acc:0.99", **kw):
    """cfg16 with γ found during training: a per-seed GammaController starting at the paper's rule."""
    c = cfg16(encoder_input="image+labels", **kw)
    return make_run_config("wela", label_dim=2, hidden=c.model.hidden, data=c.data, train=c.train, gamma="auto",
                           gamma_target=target)


@pytest.mark.parametrize("target", ["acc:0.99", "nll:0.05", "grad:1"])
def test_auto_gamma_seed_alone_equals_seed_beside_others(blobs16, target):
    # One controller per seed: seed 1's γ trajectory and code do not depend on seeds 0 and 2 (to the
    # float rounding of the S-wide first layer, as for a fixed γ).
    images, labels, _ = blobs16
    c = auto_cfg16(target, epochs=3)
    together = train(c, [0, 1, 2], images, labels, progress=False)
    alone = train(c, [1], images, labels, progress=False)
    np.testing.assert_allclose(together.gamma[:, 1], alone.gamma[:, 0], rtol=1e-5)
    np.testing.assert_allclose(mu_of(together, images, labels)[1], mu_of(alone, images, labels)[0], atol=1e-4)
    assert together.gamma.shape == (3, 3) and np.all(together.gamma[0] != c.objective.gamma)  # γ moved
    if target.startswith("grad"):  # each seed's own gradients (a constraint far from met moves all at the clip)
        assert not np.allclose(together.gamma[:, 0], together.gamma[:, 1])


@pytest.mark.parametrize("target", ["acc:0.99", "grad:1"])
def test_auto_gamma_resumes_bit_for_bit(blobs16, tmp_path, target):
    images, labels, _ = blobs16
    c = auto_cfg16(target, epochs=4)
    full = train(c, [0, 1], images, labels, progress=False)
    train_interrupted(c, [0, 1], images, labels, tmp_path / "last.pt", after_epoch=3)
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 3 and set(state["gamma"]) == {"log_gamma", "average", "seen"}
    resumed = train(c, [0, 1], images, labels, checkpoint=tmp_path / "last.pt", progress=False)
    assert resumed.resumed_from == 3
    assert np.array_equal(full.gamma, resumed.gamma) and np.array_equal(full.history, resumed.history)
    for va, vb in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(va, vb)


def test_auto_gamma_is_frozen_outside_the_label_window(blobs16):
    # Labels in epoch 0 only: in epochs 1 and 2 every label is missing, so γ (per seed) keeps its value.
    images, labels, _ = blobs16
    r = train(auto_cfg16(epochs=3, label_epochs=(0, 1)), [0, 1], images, labels, progress=False)
    assert np.array_equal(r.gamma[1], r.gamma[0]) and np.array_equal(r.gamma[2], r.gamma[0])
    assert np.all(r.gamma[0] != r.config.objective.gamma)  # it did move in epoch 0


def test_fixed_gamma_is_recorded_each_epoch_and_unchanged(blobs16):
    images, labels, _ = blobs16
    c = cfg16(encoder_input="image+labels", epochs=2)
    r = train(c, [0, 1], images, labels, progress=False)
    assert np.array_equal(r.gamma, np.full((2, 2), c.objective.gamma))
    u = train(cfg16("tcvae", epochs=1), [0], images, None, progress=False)
    assert np.isnan(u.gamma).all()  # no labels, no γ


def test_auto_gamma_runs_end_to_end_into_history_status_and_metrics(blobs16, tmp_path):
    images, labels, factors = blobs16
    c = auto_cfg16(epochs=2)
    result = train_run(c, [0, 1], tmp_path / "run", data=as_dataset(images, labels, factors), progress=False)
    run = Run(tmp_path / "run")
    rows = run.history()
    assert [float(r["gamma"]) for r in rows] == pytest.approx(result.gamma.reshape(-1).tolist(), rel=1e-5)
    assert run.gamma == pytest.approx(result.gamma[-1].tolist())
    assert json.loads((tmp_path / "run" / "config.json").read_text())["objective"]["gamma_target"] == "acc:0.99"


# ------------------------------------------------------------------ the peers: S2-β-TCVAE and CCVAE (docs/peers.md)
PEERS = [("s2tcvae", dict(supervised_loss="xent")), ("s2tcvae", dict(supervised_loss="embed")),
         ("s2tcvae", dict(supervised_loss="l2")), ("ccvae", {})]


def peer_cfg(model, kw, *, epochs=3, lr=1e-3, latent_dim=3, **train_kw):
    """A peer on 16×16 Blobs (conftest's ``blobs16``), K = 3 (one free latent), checkpointed every epoch."""
    return make_run_config(model, label_dim=2, latent_dim=latent_dim, hidden=(16, 8),
                           data=DataConfig(variants=1, size=SIZE),
                           train=TrainConfig(epochs=epochs, batch_size=32, lr=lr, checkpoint_every=1, **train_kw),
                           **kw)


@pytest.mark.parametrize("model,kw", PEERS, ids=["s2-xent", "s2-embed", "s2-l2", "ccvae"])
def test_a_peer_seed_alone_equals_the_seed_beside_others(blobs16, model, kw):
    # Every seed's parameters (the label side's too) and draws (CCVAE's R draws included) are its own.
    images, labels, _ = blobs16
    labels = labels.copy()
    labels[::3, 0] = -1  # partial labels
    c = peer_cfg(model, kw, lr=1e-4)
    together = train(c, [0, 1, 2], images, labels, progress=False)
    alone = train(c, [1], images, labels, progress=False)
    mu3, _, pred3 = encode_dataset(together.model, images)  # the encoder reads images only: no labels given
    mu1, _, pred1 = encode_dataset(alone.model, images)
    assert np.abs(mu3[1] - mu1[0]).max() < 1e-5 and np.abs(mu3[0] - mu1[0]).max() > 1e-3
    assert np.array_equal(pred3[1], pred1[0])
    np.testing.assert_allclose(together.history[:, 1], alone.history[:, 0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model,kw", PEERS[1:2] + PEERS[3:], ids=["s2-embed", "ccvae"])
def test_a_peer_resumes_into_the_uninterrupted_run_bit_for_bit(blobs16, tmp_path, model, kw):
    images, labels, _ = blobs16
    c = peer_cfg(model, kw, epochs=4)
    full = train(c, [0, 1], images, labels, progress=False)
    train_interrupted(c, [0, 1], images, labels, tmp_path / "last.pt", after_epoch=2)
    resumed = train(c, [0, 1], images, labels, checkpoint=tmp_path / "last.pt", progress=False)
    assert resumed.resumed_from == 2
    for (k, va), vb in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(va, vb), k
    assert np.array_equal(full.history, resumed.history)


@pytest.mark.parametrize("loss", ["xent", "l2", "embed", "cov"])
def test_s2_with_every_label_missing_trains_as_beta_tcvae_bit_for_bit(blobs16, loss):
    # A missing label adds exactly 0 to R_s and to every gradient, so S2-β-TCVAE without a single label is
    # β-TCVAE on the same network (its label side, which no gradient reaches, stays where it started).
    images, labels, _ = blobs16
    s2 = peer_cfg("s2tcvae", dict(supervised_loss=loss), epochs=2)
    tcvae = make_run_config("tcvae", latent_dim=3, hidden=(16, 8), data=s2.data, train=s2.train)
    a = train(s2, [0, 1], images, np.full_like(labels, -1), progress=False)
    b = train(tcvae, [0, 1], images, None, progress=False)
    side = {k: v for k, v in a.model.state_dict().items() if k.startswith("label_side.")}
    for k, v in b.model.state_dict().items():
        assert torch.equal(a.model.state_dict()[k], v), k
    start = EnsembleVAE(s2.model, [0, 1], label_side=s2.objective.label_side).state_dict()
    assert all(torch.equal(v, start[k]) for k, v in side.items())
    cols = [trainer.TERMS.index(t) for t in ("loss", "image_nll", "kl", "tc")]
    assert np.array_equal(a.history[..., cols], b.history[..., cols])
    assert (a.history[..., trainer.TERMS.index("label_nll")] == 0).all()


@pytest.mark.parametrize("model,kw", PEERS[:1] + PEERS[3:], ids=["s2-xent", "ccvae"])
def test_the_value_of_a_masked_label_changes_nothing(blobs16, tmp_path, model, kw):
    # --label-fraction 0.5 hides half the samples' labels; what they held is never read: two data sets that
    # differ only there train into the same weights, bit for bit.
    images, labels, factors = blobs16
    c = peer_cfg(model, kw, epochs=1)
    data = dataclasses.replace(c.data, label_fraction=0.5, label_seed=3)
    _, hidden = hide_labels(labels, 0.5, 3)
    other = labels.copy()
    other[hidden] = 1 - other[hidden]  # every hidden label changed
    runs = []
    for i, y in enumerate((labels, other)):
        arrays = from_arrays(images, y, label_dims=(2, 2), factors=factors)
        config, ds = resolve(dataclasses.replace(data, source="arrays"), model, arrays=arrays, latent_dim=3,
                             hidden=(16, 8), train=c.train, **kw)
        runs.append(train_run(config, [0], tmp_path / f"r{i}", data=ds, progress=False))
    for (k, va), vb in zip(runs[0].model.state_dict().items(), runs[1].model.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not np.array_equal(labels, other) and hidden.any()
