"""The trainer's fast paths equal the plain computations they replace (issue: throughput)."""
import platform
import resource
import shutil
import warnings

import pytest
import torch
import torch.nn.functional as F

from welavae.config import DataConfig, TrainConfig, make_run_config
from welavae.nn import EnsembleVAE
from welavae.objectives import bernoulli_nll, likelihoods
from welavae.objectives.likelihoods import linear_bernoulli_nll
from welavae.train import trainer


def reference_nll(logits, x):
    """Σ softplus(l) − x·l in float64."""
    l64 = logits.double()
    return (F.softplus(l64) - x.double() * l64).sum(-1)


def test_linear_nll_equals_head_then_nll_float64():
    g = torch.Generator().manual_seed(0)
    s, b, h, d = 3, 5, 4, 12
    hid = torch.randn(s, b, h, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(s, h, d, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(s, 1, d, generator=g, dtype=torch.float64, requires_grad=True)
    x = torch.rand(b, d, generator=g, dtype=torch.float64)
    up = torch.rand(s, b, generator=g, dtype=torch.float64)  # a non-uniform upstream gradient
    ref = bernoulli_nll(torch.baddbmm(bias, hid, w), x)
    ref_grads = torch.autograd.grad(ref, (hid, w, bias), up)
    out = linear_bernoulli_nll(hid, w, bias, x)
    grads = torch.autograd.grad(out, (hid, w, bias), up)
    assert torch.allclose(out, ref, rtol=1e-12)
    for a, r in zip(grads, ref_grads):
        assert torch.allclose(a, r, rtol=1e-10, atol=1e-12)


needs_cxx = pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                               reason="torch.compile's CPU backend needs a C++ compiler")


@needs_cxx
@pytest.mark.parametrize("d", [4096, 784, 97])  # chunks of 64, 56 and (prime) 1
def test_compiled_kernel_value_and_residual(d):
    g = torch.Generator().manual_seed(d)
    logits = torch.randn(2, 3, d, generator=g) * 8
    extremes = torch.tensor([-1000.0, -90.0, -20.0, -1e-3, 0.0, 3.0, 20.0, 90.0, 1000.0])
    logits[0, 0, : len(extremes)] = extremes
    x = torch.rand(3, d, generator=g)
    x[0, :3] = torch.tensor([0.0, 1.0, 0.5])
    nll, residual = likelihoods._kernel()(logits, x, likelihoods._chunk(d))
    ref = reference_nll(logits, x)
    assert torch.isfinite(nll).all()
    assert torch.allclose(nll.double(), ref, rtol=2e-6)
    assert torch.allclose(residual, torch.sigmoid(logits) - x, atol=1e-6)


@needs_cxx
def test_compiled_linear_nll_matches_eager_float32():
    g = torch.Generator().manual_seed(1)
    s, b, h, d = 4, 16, 8, 4096
    inputs = [torch.randn(s, b, h, generator=g), torch.randn(s, h, d, generator=g) * 0.5,
              torch.randn(s, 1, d, generator=g)]
    x = torch.rand(b, d, generator=g)
    up = torch.rand(s, b, generator=g)
    results = []
    for compiled in (False, True):
        leaves = [t.clone().requires_grad_() for t in inputs]
        out = linear_bernoulli_nll(*leaves, x, compiled=compiled)
        results.append((out, torch.autograd.grad(out, leaves, up)))
    assert likelihoods._compiled not in (None, False)  # the compiled kernel ran, no fallback
    (e_out, e_grads), (c_out, c_grads) = results
    assert torch.allclose(c_out, e_out, rtol=1e-5)
    for c, e in zip(c_grads, e_grads):
        assert torch.allclose(c, e, rtol=1e-4, atol=1e-5)


def test_compile_failure_warns_once_and_falls_back(monkeypatch):
    def broken():
        def kernel(*args):
            raise RuntimeError("no C++ compiler")
        return kernel

    monkeypatch.setattr(likelihoods, "_kernel", broken)
    monkeypatch.setattr(likelihoods, "_compiled", None)
    logits, x = torch.randn(2, 3, 64), torch.rand(3, 64)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        out = bernoulli_nll(logits, x, compiled=True)
    assert torch.allclose(out.double(), reference_nll(logits, x), rtol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning: the eager form is used from now on
        bernoulli_nll(logits, x, compiled=True)


def test_image_head_is_one_linear_layer_and_reads_old_checkpoints():
    c = make_run_config("wela", label_dim=2, hidden=(16, 8), data=DataConfig(variants=1))
    model = EnsembleVAE(c.model, [0, 1])
    head = model.decoder[-1]
    z = torch.randn(2, 5, c.model.latent_dim)
    img, lab = model.decode(z)
    # welavae 0.1.0's layout: one (S, H, 4096 + 4) layer, split after the matmul.
    w = torch.cat([head.weight0, head.weight1], dim=2)
    b = torch.cat([head.bias0, head.bias1], dim=2)
    h = F.relu(model.decoder[1](F.relu(model.decoder[0](z))))
    full = torch.baddbmm(b, h, w)
    assert torch.allclose(img, full[..., :4096], atol=1e-6)
    assert torch.allclose(lab.reshape(2, 5, 4), full[..., 4096:], atol=1e-6)
    # The same draws as one nn.Linear(8, 4100) per seed: seed 1 alone has seed 1's weights.
    alone = EnsembleVAE(c.model, [1]).decoder[-1]
    assert torch.equal(alone.weight0[0], head.weight0[1]) and torch.equal(alone.bias1[0], head.bias1[1])
    # An old checkpoint's state dict loads into the split heads.
    old = {k: v for k, v in model.state_dict().items() if not k.startswith("decoder.2.")}
    old["decoder.2.weight"], old["decoder.2.bias"] = w.detach(), b.detach()
    fresh = EnsembleVAE(c.model, [0, 1])
    with torch.no_grad():
        for p in fresh.parameters():
            p.zero_()
    fresh.load_state_dict(old)
    for (k, v), v2 in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(v, v2), k
    nll, _ = model.decode_nll(z, torch.rand(5, 4096))
    assert nll.shape == (2, 5)


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


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_heap_reuse_keeps_freed_pages():
    def faults_for_reallocations():
        torch.ones(16 << 20)  # 64 MiB: above glibc's largest mmap threshold
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(4):
            torch.ones(16 << 20)
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    outside = faults_for_reallocations()
    with trainer.heap_reuse():
        with trainer.heap_reuse():  # re-entrant
            pass
        inside = faults_for_reallocations()
    assert outside >= 4 * 32  # each fresh mapping faults at least once per 2 MiB page
    assert inside * 8 < outside


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


def test_resume_from_a_version_0_1_0_checkpoint(tmp_path):
    from welavae.data import make_blobs, weak_labels
    from welavae.train import load_checkpoint

    blobs = make_blobs(1, seed=0)
    labels = weak_labels(blobs.factors, 2)
    c = make_run_config("wela", label_dim=2, hidden=(32, 16), data=DataConfig(variants=1),
                        train=TrainConfig(epochs=2, batch_size=64, lr=1e-3, checkpoint_every=1))
    full = trainer.train(c, [0, 1], blobs.images, labels, progress=False)

    class Stop(Exception):
        pass

    def stop_after_first(epoch, _):
        if epoch == 1:
            raise Stop

    with pytest.raises(Stop):
        trainer.train(c, [0, 1], blobs.images, labels, checkpoint_dir=tmp_path, progress=False, on_epoch=stop_after_first)
    path = tmp_path / "last.pt"
    state = load_checkpoint(path)
    old = _as_version_0_1_0(state)
    assert "decoder.2.weight" in old["model"] and old["model"]["decoder.2.weight"].shape == (2, 32, 4100)
    torch.save(old, path)
    upgraded = load_checkpoint(path)
    for (k, v), (k2, v2) in zip(state["model"].items(), upgraded["model"].items()):
        assert k == k2 and torch.equal(v, v2)
    resumed = trainer.train(c, [0, 1], blobs.images, labels, checkpoint_dir=tmp_path, progress=False)
    assert resumed.resumed_from == 1
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
