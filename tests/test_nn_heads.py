"""welavae.nn.heads: the fused image head and its compiled kernel equal the plain computations they replace."""
import shutil
import warnings

import pytest
import torch
import torch.nn.functional as F

from welavae.nn import heads
from welavae.nn.heads import linear_bernoulli_nll


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
