"""welavae.objectives.likelihoods: the Bernoulli and categorical NLLs (paper eq. 3, §4.3) against closed forms.

``bernoulli_nll`` is the image head's (welavae.nn.heads), re-exported here as the image likelihood.
"""
import math

import numpy as np
import pytest
import torch

from welavae.objectives import bernoulli_nll, categorical_nll


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


def test_bernoulli_nll_of_a_colour_image_is_the_sum_over_its_channels():
    # By hand: x = (1, 0, 0.5), logits (0, 0, 2): log 2 + log 2 + softplus(2) − 0.5·2.
    logits = torch.tensor([[[0.0, 0.0, 2.0]]], dtype=torch.float64)
    x = torch.tensor([[1.0, 0.0, 0.5]], dtype=torch.float64)
    expected = 2 * np.log(2) + np.log1p(np.exp(2.0)) - 1.0
    assert abs(bernoulli_nll(logits, x).item() - expected) < 1e-12
    g = torch.Generator().manual_seed(0)
    xs = torch.rand(4, 5, 6, 3, generator=g, dtype=torch.float64)  # (B, H, W, C)
    ls = torch.randn(2, 4, 5, 6, 3, generator=g, dtype=torch.float64)
    whole = bernoulli_nll(ls.reshape(2, 4, -1), xs.reshape(4, -1))
    by_channel = sum(bernoulli_nll(ls[..., c].reshape(2, 4, -1), xs[..., c].reshape(4, -1)) for c in range(3))
    assert torch.allclose(whole, by_channel, rtol=1e-12)


@pytest.mark.usefixtures("float64")
def test_bernoulli_nll_closed_form_and_stability():
    logits = torch.tensor([[[0.0, 2.0, -3.0]]])
    x = torch.tensor([[1.0, 0.5, 0.0]])
    # −[x log σ(l) + (1−x) log(1−σ(l))] summed by hand.
    s = torch.sigmoid(logits[0, 0])
    expected = -(x[0] * s.log() + (1 - x[0]) * (1 - s).log()).sum()
    assert torch.allclose(bernoulli_nll(logits, x)[0, 0], expected)
    huge = torch.tensor([[[1000.0, -1000.0]]])
    out = bernoulli_nll(huge, torch.tensor([[1.0, 0.0]]))
    assert torch.isfinite(out).all() and out.item() == pytest.approx(0.0, abs=1e-12)
    out = bernoulli_nll(huge, torch.tensor([[0.0, 1.0]]))
    assert out.item() == pytest.approx(2000.0)


@pytest.mark.usefixtures("float64")
def test_categorical_nll():
    logits = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [5.0, -2.0, 1.0]]])  # (S=1, B=3, P=3)
    y = torch.tensor([2, 1, -1])
    # −log softmax by hand: log(e + e² + e³) − 3, then log 3 for uniform logits; −1 = missing → 0.
    expected = [math.log(math.exp(1) + math.exp(2) + math.exp(3)) - 3, math.log(3), 0.0]
    assert torch.allclose(categorical_nll(logits, y)[0], torch.tensor(expected))
