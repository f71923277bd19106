"""The multi-seed trainer: invariants that a vectorised ensemble must keep (issue: trainer)."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from welavae.config import DataConfig, TrainConfig, make_run_config
from welavae.data import Dataset, from_arrays, make_blobs, weak_labels
from welavae.nn import EnsembleVAE, plain_networks
from welavae.objectives import bernoulli_nll, objective_terms
from welavae.checkpoint import load_checkpoint, save_checkpoint
from welavae.nn.encode import encode_dataset
from welavae.train import train
from welavae.train.preflight import check_run


@pytest.fixture(scope="module")
def blobs():
    b = make_blobs(1, seed=0)
    return b.images, weak_labels(b.factors, 2), b.factors


def cfg(model="wela", epochs=2, batch=64, hidden=(32, 16), lr=1e-3, **kw):
    return make_run_config(model, label_dim=2 if model == "wela" else None, hidden=hidden,
                           data=DataConfig(variants=1),
                           train=TrainConfig(epochs=epochs, batch_size=batch, lr=lr, **kw))


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


@pytest.mark.parametrize("model", ["wela", "tcvae"])
def test_stacked_equals_independent_sequentials(blobs, model):
    images, labels, _ = blobs
    c = cfg(model)
    torch.manual_seed(0)
    ens = EnsembleVAE(c.model, [3, 8, 11]).double()
    x = torch.from_numpy(images[:16].reshape(16, -1)).double()
    y = torch.from_numpy(labels[:16]) if model == "wela" else None
    eps = torch.randn(3, 16, c.model.latent_dim, dtype=torch.float64)
    mu, lv = ens.encode(x, y)
    z = mu + torch.exp(0.5 * lv) * eps
    img, lab = ens.decode(z)
    t = objective_terms(c.objective, image_nll=bernoulli_nll(img, x), mu=mu, logvar=lv, z=z, dataset_size=4096, y=y, label_logits=lab)
    t["loss"].sum().backward()
    for i in range(3):
        enc, dec = plain_networks(ens, i)
        enc, dec = enc.double(), dec.double()
        inp = x if y is None else torch.cat([x, F.one_hot(y, 2).double().reshape(16, -1)], 1)
        h = enc(inp)
        mu_i, lv_i = h.chunk(2, -1)
        z_i = mu_i + torch.exp(0.5 * lv_i) * eps[i]
        out = dec(z_i)
        img_i = out[:, :4096]
        lab_i = [lg[None] for lg in out[:, 4096:].split([2, 2], dim=-1)] if y is not None else None
        t_i = objective_terms(c.objective, image_nll=bernoulli_nll(img_i[None], x), mu=mu_i[None], logvar=lv_i[None], z=z_i[None],
                              dataset_size=4096, y=y, label_logits=lab_i)
        assert torch.allclose(mu_i, mu[i], atol=1e-12) and torch.allclose(img_i, img[i], atol=1e-10)
        assert torch.allclose(t_i["loss"][0], t["loss"][i], rtol=1e-12)
        t_i["loss"].sum().backward()
        plain_layers = [m for m in list(enc) + list(dec) if isinstance(m, torch.nn.Linear)]
        stacked_layers = list(ens.encoder) + list(ens.decoder)
        for pl, sl in zip(plain_layers, stacked_layers):
            gw, gb = sl.seed_weight(i, grad=True)
            assert torch.allclose(pl.weight.grad, gw, rtol=1e-9, atol=1e-12)
            assert torch.allclose(pl.bias.grad, gb, rtol=1e-9, atol=1e-12)


def test_wela_reaches_label_accuracy(blobs):
    # A real training run end to end: WeLa-VAE p=2 on the N=4096 set (paper §4.4: accuracy ≈ 1).
    images, labels, _ = blobs
    c = cfg(epochs=6, hidden=(64, 32))
    res = train(c, [0], images, labels, progress=False)
    _, _, pred = encode_dataset(res.model, images, labels)
    acc = (pred[0] == labels).mean(0)
    assert acc.min() >= 0.99, acc
    assert res.history[-1, 0, 0] < res.history[0, 0, 0]  # the loss went down


class _Stop(Exception):
    pass


def train_interrupted(c, seeds, images, labels, checkpoint, after_epoch):
    """Train with checkpoints and stop once ``after_epoch`` epochs are done, as a kill would."""

    def interrupt(epoch, _):
        if epoch == after_epoch:
            raise _Stop

    with pytest.raises(_Stop):
        train(c, seeds, images, labels, checkpoint=checkpoint, progress=False, on_epoch=interrupt)


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


def _as_version_0_1_0(state: dict) -> dict:
    """A checkpoint written before the output heads were split: the decoder's last layer whole, Adam state merged."""
    model, opt = state["model"], state["optimizer"]
    keys = list(model)
    prefix = "decoder.2."
    heads = [k for k in keys if k.startswith(prefix)]  # weight0, bias0, weight1, bias1
    first = keys.index(heads[0])
    old_keys = keys[:first] + [prefix + "weight", prefix + "bias"] + keys[first + len(heads):]
    merged = {}
    for name in ("weight", "bias"):
        parts = [prefix + f"{name}{j}" for j in (0, 1)]
        merged[prefix + name] = (torch.cat([model[p] for p in parts], -1),
                                 [keys.index(p) for p in parts])
    old_model, old_state = {}, {}
    for i, key in enumerate(old_keys):
        if key in merged:
            old_model[key], idx = merged[key]
            pieces = [opt["state"][j] for j in idx]
            old_state[i] = {n: (torch.cat([p[n] for p in pieces], -1) if pieces[0][n].dim() > 0 else pieces[0][n])
                            for n in pieces[0]}
        else:
            old_model[key] = model[key]
            old_state[i] = opt["state"][keys.index(key)]
    groups = [dict(g, params=list(range(len(old_keys)))) for g in opt["param_groups"]]
    return dict(state, model=old_model, optimizer={"state": old_state, "param_groups": groups})


def test_resume_from_a_version_0_1_0_checkpoint(blobs, tmp_path):
    images, labels, _ = blobs
    c = cfg(epochs=2, checkpoint_every=1)
    full = train(c, [0, 1], images, labels, progress=False)
    train_interrupted(c, [0, 1], images, labels, tmp_path / "last.pt", after_epoch=1)
    path = tmp_path / "last.pt"
    state = load_checkpoint(path)
    old = _as_version_0_1_0(state)
    assert "rng" not in state
    old["rng"] = {"scheme": "derived-per-epoch", "next_epoch": 1}  # 0.1/0.2 checkpoints held this unused entry
    assert "decoder.2.weight" in old["model"] and old["model"]["decoder.2.weight"].shape == (2, 32, 4100)
    torch.save(old, path)
    upgraded = load_checkpoint(path)
    for (k, v), (k2, v2) in zip(state["model"].items(), upgraded["model"].items()):
        assert k == k2 and torch.equal(v, v2)
    resumed = train(c, [0, 1], images, labels, checkpoint=tmp_path / "last.pt", progress=False)
    assert resumed.resumed_from == 1
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k


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


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(model="wela", label_dim=1), "label_dims"),
        (dict(model="tcvae", latent_dim=0), "latent_dim"),
        (dict(model="unknown"), "unknown model"),
        (dict(model="wela"), "needs weak labels"),
    ],
)
def test_bad_model_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_run_config(**kwargs)


def test_bad_training_input_is_refused_at_the_gate(blobs):
    # Arrays are checked once where they become a Dataset (from_arrays), the run's combination by the
    # preflight; the trainer behind them trusts its input.
    images, labels, _ = blobs
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=1)
    c = cfg()
    bad = images[:256].copy()
    bad[3, 0, 0] = 1.5
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        from_arrays(bad, labels[:256])
    bad[3, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        from_arrays(bad, labels[:256])
    with pytest.raises(ValueError, match="0..1"):
        check_run(c, [0], Dataset(images[:256], labels[:256] + 1))
    with pytest.raises(ValueError, match="needs weak labels"):
        check_run(c, [0], Dataset(images[:256], None))


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


def test_config_hash_of_existing_configs_is_unchanged_by_the_cadence_field():
    # Hashes computed by welavae before checkpoint_minutes existed (main at 4ca4b81): stored runs still resume.
    from welavae.config import make_run_config

    assert make_run_config("tcvae").hash() == "d0d6a3312569ac1e"
    assert make_run_config("wela", label_dim=3).hash() == "fd453a668a96261e"
    minutes = make_run_config("tcvae", train=TrainConfig(checkpoint_minutes=10))
    assert minutes.hash() == "d0d6a3312569ac1e" and minutes.to_dict()["train"]["checkpoint_minutes"] == 10
    with pytest.raises(ValueError, match="checkpoint_minutes"):
        TrainConfig(checkpoint_minutes=0)
    from plans import resolved
    from welavae.experiments.plan import blobs_plan
    from welavae.experiments.presets import PRESETS

    paper = resolved(blobs_plan(PRESETS["paper"].settings, seeds=2))[0].config  # every 10 minutes, same hash
    assert paper.train.checkpoint_minutes == 10 and paper.hash() == "b0d4cc67ac64cf30"


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
