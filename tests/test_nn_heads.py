"""The trainer's fast paths equal the plain computations they replace (issue: throughput)."""
import platform
import resource
import shutil
import warnings

import pytest
import torch
import torch.nn.functional as F

from welavae.config import DataConfig, TrainConfig, make_run_config
from welavae.nn import EnsembleVAE, heads
from welavae.nn.heads import linear_bernoulli_nll
from welavae.objectives import bernoulli_nll
from welavae.train import trainer
from welavae.train.platform import heap_reuse


def reference_nll(logits, x):
    """Σ softplus(l) − x·l in float64."""
    l64 = logits.double()
    return (F.softplus(l64) - x.double() * l64).sum(-1)


def autograd_nll(h, weight, bias, x):
    """The image head and its likelihood from stock ops, differentiated by autograd (no custom backward)."""
    logits = torch.baddbmm(bias, h, weight)
    return (F.softplus(logits) - x * logits).sum(-1)


def _head_inputs(seed, s=3, b=5, h=4, d=12, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(s, b, h, generator=g, dtype=dtype), torch.randn(s, h, d, generator=g, dtype=dtype),
            torch.randn(s, 1, d, generator=g, dtype=dtype), torch.rand(b, d, generator=g, dtype=dtype))


def test_bernoulli_nll_gradcheck():
    # Known answer: the numerical Jacobian of −log p(x|l) (torch.autograd.gradcheck, float64).
    g = torch.Generator().manual_seed(3)
    logits = (torch.randn(2, 3, 5, generator=g, dtype=torch.float64) * 3).requires_grad_()
    x = torch.rand(3, 5, generator=g, dtype=torch.float64)
    x[0] = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.5], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda l: bernoulli_nll(l, x), (logits,))
    # Targets per seed (S, B, D) as well as shared (B, D).
    xs = torch.rand(2, 3, 5, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda l: bernoulli_nll(l, xs), (logits,))


@pytest.mark.parametrize("needs", [(True, True, True), (True, False, False), (False, True, False),
                                   (False, False, True)], ids=["all", "h", "weight", "bias"])
def test_linear_bernoulli_nll_gradcheck(needs):
    # Known answer: numerical Jacobians (float64 gradcheck) of the fused head; backward skips the inputs
    # that need no gradient, so each subset is checked.
    h, w, bias, x = _head_inputs(0)
    inputs = [t.requires_grad_(n) for t, n in zip((h, w, bias), needs)]
    assert torch.autograd.gradcheck(lambda *a: linear_bernoulli_nll(*a, x), inputs)


def test_linear_nll_matches_autograd_float64():
    # Known answer: the stock softplus(l) − x·l of baddbmm(b, h, W), its gradients from autograd,
    # under a non-uniform upstream gradient (per seed and sample).
    h, w, bias, x = (t.requires_grad_(i < 3) for i, t in enumerate(_head_inputs(0)))
    up = torch.rand(3, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ref = autograd_nll(h, w, bias, x)
    out = linear_bernoulli_nll(h, w, bias, x)
    assert torch.allclose(out, ref, rtol=1e-12)
    for a, r in zip(torch.autograd.grad(out, (h, w, bias), up), torch.autograd.grad(ref, (h, w, bias), up)):
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
    nll, residual = heads._kernel()(logits, x, heads._chunk(d))
    ref = reference_nll(logits, x)
    assert torch.isfinite(nll).all()
    assert torch.allclose(nll.double(), ref, rtol=2e-6)
    assert torch.allclose(residual, torch.sigmoid(logits) - x, atol=1e-6)


@needs_cxx
def test_compiled_linear_nll_matches_float64_autograd():
    # The compiled kernel runs in float32 only, so no gradcheck: compare it with the float64 autograd
    # reference at float32 accuracy (the kernel's logs of products err by ~5e-7 relative).
    s, b, h, d = 4, 16, 8, 4096
    inputs = _head_inputs(1, s, b, h, d, dtype=torch.float32)
    x = inputs[3]
    up = torch.rand(s, b, generator=torch.Generator().manual_seed(2))
    leaves = [t.clone().requires_grad_() for t in inputs[:3]]
    leaves[1].data.mul_(0.5)
    out = linear_bernoulli_nll(*leaves, x, compiled=True)
    grads = torch.autograd.grad(out, leaves, up)
    assert heads._compiled not in (None, False)  # the compiled kernel ran, no fallback
    ref_leaves = [t.detach().double().requires_grad_() for t in leaves]
    ref = autograd_nll(*ref_leaves, x.double())
    ref_grads = torch.autograd.grad(ref, ref_leaves, up.double())
    assert out.dtype == torch.float32 and torch.allclose(out.double(), ref, rtol=1e-5)
    for c, r in zip(grads, ref_grads):
        assert torch.allclose(c.double(), r, rtol=1e-4, atol=1e-4 * r.abs().max().item())


def test_compile_failure_warns_once_and_falls_back(monkeypatch):
    def broken():
        def kernel(*args):
            raise RuntimeError("no C++ compiler")
        return kernel

    monkeypatch.setattr(heads, "_kernel", broken)
    monkeypatch.setattr(heads, "_compiled", None)
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
    assert [t.shape for t in lab] == [(2, 5, 2), (2, 5, 2)]  # one (S, B, p_j) tensor per label
    assert torch.allclose(torch.cat(lab, dim=-1), full[..., 4096:], atol=1e-6)
    # The same draws as one nn.Linear(8, 4100) per seed: seed 1 alone has seed 1's weights.
    alone = EnsembleVAE(c.model, [1]).decoder[-1]
    assert torch.equal(alone.weight0[0], head.weight0[1]) and torch.equal(alone.bias1[0], head.bias1[1])
    # decode_nll is bernoulli_nll of decode's image logits.
    x = torch.rand(5, 4096)
    nll, lab2 = model.decode_nll(z, x)
    assert torch.allclose(nll, bernoulli_nll(img, x), rtol=1e-6) and all(torch.equal(a, b) for a, b in zip(lab2, lab))


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
        for _ in range(16):
            torch.ones(16 << 20)
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    outside = faults_for_reallocations()
    with heap_reuse():
        with heap_reuse():  # re-entrant
            pass
        inside = faults_for_reallocations()
    # Each fresh mapping faults at least once per page: 32 faults for 64 MiB even when the kernel
    # backs it with 2 MiB pages (system-wide THP), 16,384 with 4 KiB pages.  Reused heap: ~0,
    # plus whatever else the process touches meanwhile (hence 16 rounds, not a few).
    assert outside >= 16 * 32
    assert inside * 8 < outside



@pytest.mark.parametrize("fused", [True, False])
def test_a_training_step_under_bf16_autocast_keeps_float32_gradients(fused):
    # Issue 24 item 3: the hand-written backwards mixed bf16 and fp32 under autocast and raised.
    # Under autocast the custom functions run in float32, so every gradient is float32 and the loss
    # stays within bf16's rounding (≈ 2⁻⁸ relative per op) of the float32 loss.
    from welavae.objectives import objective_terms

    c = make_run_config("wela", label_dim=2, hidden=(32, 16), data=DataConfig(variants=1))
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(16, 4096, generator=g) > 0.9).float()
    y = torch.randint(0, 2, (16, 2), generator=g)
    noise = torch.randn(2, 16, 2, generator=g)

    def loss(model):
        mu, logvar = model.encode(x, y)
        z = mu + torch.exp(0.5 * logvar) * noise
        if fused:
            image_nll, label_logits = model.decode_nll(z, x)
        else:
            logits, label_logits = model.decode(z)
            image_nll = bernoulli_nll(logits, x)
        terms = objective_terms(c.objective, image_nll=image_nll, mu=mu, logvar=logvar, z=z, dataset_size=4096,
                                y=y, label_logits=label_logits)
        return terms["loss"]

    reference = loss(EnsembleVAE(c.model, [0, 1])).detach()
    model = EnsembleVAE(c.model, [0, 1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(model)
    value.sum().backward()  # outside the autocast block, as torch's AMP recipe has it
    assert torch.isfinite(value).all() and torch.allclose(value.float(), reference, rtol=0.05)
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all(), name
