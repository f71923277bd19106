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
    g = torch.Generator().manual_seed(2)
    h, w, b = torch.randn(2, 3, 4, generator=g), torch.randn(2, 4, 64, generator=g), torch.randn(2, 1, 64, generator=g)
    x = torch.rand(3, 64, generator=g)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        out = linear_bernoulli_nll(h, w, b, x, compiled=True)
    assert torch.allclose(out.double(), reference_nll(torch.baddbmm(b, h, w), x), rtol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning: the eager form is used from now on
        linear_bernoulli_nll(h, w, b, x, compiled=True)


def test_image_head_is_one_linear_layer():
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
    # decode_nll is bernoulli_nll of decode's image logits.
    x = torch.rand(5, 4096)
    nll, lab2 = model.decode_nll(z, x)
    assert torch.allclose(nll, bernoulli_nll(img, x), rtol=1e-6) and torch.equal(lab2, lab)


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

