"""Known answers for the objective terms (paper eq. 4; Chen et al. 2018)."""
import math

import pytest
import torch
import torch.nn.functional as F

from welavae.config import ObjectiveConfig
from welavae.objectives import (
    bernoulli_nll,
    categorical_nll,
    dip_regulariser,
    gaussian_kl,
    importance_weights,
    kl_decomposition,
    objective_terms,
    total_correlation,
)



@pytest.fixture(autouse=True)
def float64():
    # Known answers are checked in double precision; restore the default afterwards.
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


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


def test_categorical_nll():
    logits = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]])  # (S=1, B=2, P=3)
    y = torch.tensor([2, 1])
    expected = [-(3 - math.log(math.exp(1) + math.exp(2) + math.exp(3))), math.log(3)]
    assert torch.allclose(categorical_nll(logits, y)[0], torch.tensor(expected))


def test_kl_known_values():
    assert gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)).abs().max() == 0
    # KL(N(1, e) ‖ N(0, 1)) = ½(1 + e − 1 − 1) = (e − 1)/2 per dimension.
    kl = gaussian_kl(torch.ones(1, 2), torch.ones(1, 2))
    assert kl.item() == pytest.approx(math.e - 1)


def test_mss_weight_matrix():
    b, n = 6, 100
    w = importance_weights(b, n)
    m = b - 1
    assert torch.allclose(w.sum(1), torch.ones(b))  # rows sum to 1
    assert torch.allclose(torch.diagonal(w), torch.full((b,), 1 / n))  # W[j, j] = 1/N
    strat = (n - m) / (n * m)
    for i in range(b):
        row = w[i]
        assert (row == strat).sum() == 1 and row[(i + 1) % b] == strat  # one stratified entry
        assert torch.isclose(row, torch.tensor(1 / m)).sum() == b - 2
    # The buggy fill `W.view(-1)[::b] = 1/N` would put 1/N in column 0, not the diagonal:
    assert w[1, 0] != 1 / n


def test_tc_identical_posteriors():
    s, b, k, n = 2, 10, 10, 10_000
    z = torch.randn(s, b, k)
    mu, lv = torch.zeros(s, b, k), torch.zeros(s, b, k)
    mss = total_correlation(z, mu, lv, dataset_size=n, estimator="mss")
    assert mss.abs().max() < 1e-10  # exactly 0: the weights of a row sum to 1
    mws = total_correlation(z, mu, lv, dataset_size=n, estimator="mws")
    assert torch.allclose(mws, torch.full_like(mws, (k - 1) * math.log(n)))
    # Without the log(N·M) constants the value is −(K−1)·log M (−82.893 for K=10, M=10⁴).
    assert (k - 1) * math.log(n) - k * 0 - (k - 1) * math.log(n * 1e4) == pytest.approx(-82.893, abs=1e-3)


def test_tc_matches_a_plain_loop():
    torch.manual_seed(0)
    b, k, n = 5, 3, 50
    z, mu, lv = torch.randn(1, b, k), torch.randn(1, b, k), torch.randn(1, b, k) * 0.3
    got = total_correlation(z, mu, lv, dataset_size=n, estimator="mss")[0]
    w = importance_weights(b, n)
    for i in range(b):
        def logq(j, dims):
            return sum(-0.5 * (math.log(2 * math.pi) + lv[0, j, d] + (z[0, i, d] - mu[0, j, d]) ** 2 / lv[0, j, d].exp()) for d in dims)
        joint = math.log(sum(w[i, j] * math.exp(logq(j, range(k))) for j in range(b)))
        marg = sum(math.log(sum(w[i, j] * math.exp(logq(j, [d])) for j in range(b))) for d in range(k))
        assert got[i].item() == pytest.approx(joint - marg, rel=1e-9)


@pytest.mark.parametrize("estimator", ["mss", "mws"])
def test_kl_decomposition_adds_up(estimator):
    torch.manual_seed(1)
    z, mu, lv = torch.randn(2, 64, 4), torch.randn(2, 64, 4), torch.randn(2, 64, 4) * 0.5
    mi, tc, dwkl, kl_sample = kl_decomposition(z, mu, lv, dataset_size=1000, estimator=estimator)
    assert torch.allclose(mi + tc + dwkl, kl_sample)


def test_sampled_kl_estimates_closed_form():
    torch.manual_seed(2)
    mu = torch.tensor([[[0.5, -1.0]]]).expand(1, 200_000, 2)
    lv = torch.tensor([[[0.2, -0.4]]]).expand(1, 200_000, 2)
    z = mu + torch.exp(0.5 * lv) * torch.randn(1, 200_000, 2)
    _, _, _, kl_sample = kl_decomposition(z[:, :8], mu[:, :8], lv[:, :8], dataset_size=100)
    from welavae.objectives import log_normal
    mc = (log_normal(z, mu, lv) - log_normal(z, torch.zeros_like(z), torch.zeros_like(z))).sum(-1).mean()
    assert mc.item() == pytest.approx(gaussian_kl(mu[:, :1], lv[:, :1]).item(), abs=0.01)
    assert kl_sample.shape == (1, 8)


def test_dip_regulariser_zero_at_identity_covariance():
    # μ with identity batch covariance and σ² = 0 → DIP-I and DIP-II penalties vanish.
    mu = torch.tensor([[[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]]])
    lv = torch.full_like(mu, -60.0)
    assert dip_regulariser(mu, lv, kind="i").item() == pytest.approx(0, abs=1e-12)
    assert dip_regulariser(mu, lv, kind="ii").item() == pytest.approx(0, abs=1e-12)
    # DIP-II with σ² = 1 adds 1 to the diagonal: λ_d Σ (2 − 1)² = 10·2.
    assert dip_regulariser(mu, torch.zeros_like(mu), kind="ii").item() == pytest.approx(20.0)


def _inputs(s=2, b=8, k=2, d=6, m=2, p=3):
    g = torch.Generator().manual_seed(0)
    return dict(
        x=torch.rand(b, d, generator=g),
        img_logits=torch.randn(s, b, d, generator=g),
        mu=torch.randn(s, b, k, generator=g),
        logvar=torch.randn(s, b, k, generator=g) * 0.1,
        z=torch.randn(s, b, k, generator=g),
        y=torch.randint(0, p, (b, m), generator=g),
        label_logits=torch.randn(s, b, m, p, generator=g),
        dataset_size=100,
    )


def test_objective_composition_paper_convention():
    inp = _inputs()
    t = objective_terms(ObjectiveConfig(regulariser="tc", beta=40.0, gamma=7.0), **inp)
    expected = t["image_nll"] + 7.0 * t["label_nll"] + t["kl"] + 40.0 * t["tc"]
    assert torch.allclose(t["loss"], expected)
    label = sum(F.cross_entropy(inp["label_logits"][0, :, j], inp["y"][:, j]) for j in range(2))
    assert t["label_nll"][0].item() == pytest.approx(label.item())
    # β-VAE: the KL weight becomes β.
    t = objective_terms(ObjectiveConfig(regulariser="kl", beta=4.0), **inp)
    assert torch.allclose(t["loss"], t["image_nll"] + 4.0 * t["kl"] + t["label_nll"])
    t = objective_terms(ObjectiveConfig(regulariser="none"), **{**inp, "label_logits": None})
    assert torch.allclose(t["loss"], t["image_nll"] + t["kl"]) and "label_nll" not in t
