"""Known answers for the objective terms (paper eq. 4; Chen et al. 2018)."""
import math

import pytest
import torch

from welavae.config import ObjectiveConfig
from welavae.objectives import (
    bernoulli_nll,
    categorical_nll,
    dip_covariance,
    dip_regulariser,
    gaussian_kl,
    importance_weights,
    kl_decomposition,
    log_normal,
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
    logits = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [5.0, -2.0, 1.0]]])  # (S=1, B=3, P=3)
    y = torch.tensor([2, 1, -1])
    # −log softmax by hand: log(e + e² + e³) − 3, then log 3 for uniform logits; −1 = missing → 0.
    expected = [math.log(math.exp(1) + math.exp(2) + math.exp(3)) - 3, math.log(3), 0.0]
    assert torch.allclose(categorical_nll(logits, y)[0], torch.tensor(expected))


def test_kl_known_values():
    assert gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)).abs().max() == 0
    # KL(N(1, e) ‖ N(0, 1)) = ½(1 + e − 1 − 1) = (e − 1)/2 per dimension.
    kl = gaussian_kl(torch.ones(1, 2), torch.ones(1, 2))
    assert kl.item() == pytest.approx(math.e - 1)
    # KL(N(−2, ¼) ‖ N(0, 1)) = −log ½ + (¼ + 4)/2 − ½ = log 2 + 1.625.
    assert gaussian_kl(torch.tensor([-2.0]), torch.tensor([math.log(0.25)])).item() == pytest.approx(math.log(2) + 1.625)


def test_log_normal_known_values():
    # The standard normal density at its mean is 1/√(2π): log = −½ log 2π = −0.9189385332046727.
    assert log_normal(torch.tensor(0.0), torch.tensor(0.0), torch.tensor(0.0)).item() == pytest.approx(
        -0.9189385332046727, rel=1e-15)
    # N(3; 1, σ² = 4): 1/(2√(2π))·e^{−(3−1)²/8}, i.e. −log 2 − ½ log 2π − ½ = −2.1120857137646178.
    value = log_normal(torch.tensor(3.0), torch.tensor(1.0), torch.tensor(math.log(4.0))).item()
    assert value == pytest.approx(-math.log(2) - 0.5 * math.log(2 * math.pi) - 0.5, rel=1e-15)
    assert value == pytest.approx(-2.1120857137646178, rel=1e-15)


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


def _identical_posteriors(s=2, b=5, k=3):
    # Every sample of a seed has the same posterior N(μ, σ²) (random, not the prior); z is random.
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(s, 1, k, generator=g).expand(s, b, k)
    lv = (0.5 * torch.randn(s, 1, k, generator=g)).expand(s, b, k)
    return torch.randn(s, b, k, generator=g), mu, lv


def test_tc_identical_posteriors():
    # With q(z|n_j) the same for all j: MWS gives log q(z_i) ≈ log(M·q(z_i)) − log(N·M) = log q(z_i) − log N,
    # and the same per latent, so the estimate is −log N + K·log N = (K − 1)·log N
    # (Chen et al. §4.1; here K = 3, N = 1000, batch M = 5: 2·log 1000 = 13.815510557964274).
    # MSS weights of a row sum to 1, so there log q(z_i) = log q(z_i|n) exactly and the estimate is 0.
    z, mu, lv = _identical_posteriors()
    mws = total_correlation(z, mu, lv, dataset_size=1000, estimator="mws")
    assert mws.shape == (2, 5)
    assert torch.allclose(mws, torch.full_like(mws, 13.815510557964274), rtol=1e-12, atol=0)
    assert torch.allclose(mws, torch.full_like(mws, 2 * math.log(1000)), rtol=1e-12, atol=0)
    mss = total_correlation(z, mu, lv, dataset_size=1000, estimator="mss")
    assert mss.abs().max() < 1e-12


@pytest.mark.parametrize("estimator", ["mss", "mws"])
def test_kl_decomposition_identical_posteriors(estimator):
    # Known answers at identical posteriors (see test_tc_identical_posteriors), K = 3, N = 1000:
    #   MSS: log q(z) = log q(z|x) and log q(z_k) = log q(z_k|x), so MI = TC = 0, dimension-wise KL = sampled KL;
    #   MWS: every aggregate is log N lower, so MI = log N, TC = (K − 1)·log N, dim.-wise KL = sampled KL − K·log N.
    # The sampled KL log q(z|x) − log p(z) = Σ_k −½ log σ_k² − (z_k − μ_k)²/(2σ_k²) + z_k²/2 (log 2π cancels).
    z, mu, lv = _identical_posteriors()
    mi, tc, dwkl, kl_sample = kl_decomposition(z, mu, lv, dataset_size=1000, estimator=estimator)
    by_hand = torch.tensor([[sum(-0.5 * lv[s, i, k].item() - (z[s, i, k] - mu[s, i, k]).item() ** 2
                                 / (2 * math.exp(lv[s, i, k].item())) + z[s, i, k].item() ** 2 / 2 for k in range(3))
                             for i in range(5)] for s in range(2)])
    assert torch.allclose(kl_sample, by_hand, rtol=1e-12, atol=1e-12)
    log_n = math.log(1000) if estimator == "mws" else 0.0
    assert torch.allclose(mi, torch.full_like(mi, log_n), atol=1e-12)
    assert torch.allclose(tc, torch.full_like(tc, 2 * log_n), atol=1e-12)
    assert torch.allclose(dwkl, by_hand - 3 * log_n, atol=1e-12)


def test_sampled_kl_estimates_closed_form():
    torch.manual_seed(2)
    mu = torch.tensor([[[0.5, -1.0]]]).expand(1, 200_000, 2)
    lv = torch.tensor([[[0.2, -0.4]]]).expand(1, 200_000, 2)
    z = mu + torch.exp(0.5 * lv) * torch.randn(1, 200_000, 2)
    mc = (log_normal(z, mu, lv) - log_normal(z, torch.zeros_like(z), torch.zeros_like(z))).sum(-1).mean()
    # Known answer: the closed-form KL ½ Σ (μ² + σ² − log σ² − 1) = 0.67086 (Monte Carlo error ~3e-3).
    closed = 0.5 * sum(m * m + math.exp(v) - v - 1 for m, v in [(0.5, 0.2), (-1.0, -0.4)])
    assert gaussian_kl(mu[:, :1], lv[:, :1]).item() == pytest.approx(closed, rel=1e-12)
    assert mc.item() == pytest.approx(closed, abs=0.01)


def test_dip_regulariser_zero_at_identity_covariance():
    # μ with identity batch covariance and σ² = 0 → DIP-I and DIP-II penalties vanish.
    mu = torch.tensor([[[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]]])
    lv = torch.full_like(mu, -60.0)
    assert dip_regulariser(mu, lv, kind="i").item() == pytest.approx(0, abs=1e-12)
    assert dip_regulariser(mu, lv, kind="ii").item() == pytest.approx(0, abs=1e-12)
    # DIP-II with σ² = 1 adds 1 to the diagonal: λ_d Σ (2 − 1)² = 10·2.
    assert dip_regulariser(mu, torch.zeros_like(mu), kind="ii").item() == pytest.approx(20.0)


def test_dip_ii_with_off_diagonal_covariance_by_hand():
    # μ rows (2, 1), (0, 1), (0, −1), (−2, −1): mean 0, Cov_batch[μ] (1/M) = [[8/4, 4/4], [4/4, 4/4]] = [[2, 1], [1, 1]].
    # σ²: dim 0 all ½; dim 1 ¼, ¾, ¼, ¾ (mean ½) → DIP-II C = [[2.5, 1], [1, 1.5]].
    # λ_od = 3, λ_d = 7: 3·(1² + 1²) + 7·((2.5 − 1)² + (1.5 − 1)²) = 6 + 7·2.5 = 23.5.
    # DIP-I (no σ²): C = [[2, 1], [1, 1]] → 3·2 + 7·((2 − 1)² + 0²) = 13.
    mu = torch.tensor([[[2.0, 1.0], [0.0, 1.0], [0.0, -1.0], [-2.0, -1.0]]])
    lv = torch.tensor([[[0.5, 0.25], [0.5, 0.75], [0.5, 0.25], [0.5, 0.75]]]).log()
    assert torch.allclose(dip_covariance(mu, lv, kind="ii")[0], torch.tensor([[2.5, 1.0], [1.0, 1.5]]), atol=1e-15)
    assert dip_regulariser(mu, lv, kind="ii", lambda_od=3.0, lambda_d=7.0).item() == pytest.approx(23.5, rel=1e-14)
    assert dip_regulariser(mu, lv, kind="i", lambda_od=3.0, lambda_d=7.0).item() == pytest.approx(13.0, rel=1e-14)
    # The objective adds it unweighted as its regulariser (paper §3: a drop-in for the TC penalty).
    cfg = ObjectiveConfig(regulariser="dip-ii", dip_lambda_od=3.0, dip_lambda_d=7.0)
    t = objective_terms(cfg, image_nll=bernoulli_nll(torch.zeros(1, 4, 3), torch.zeros(4, 3)), mu=mu, logvar=lv, z=mu,
                        dataset_size=10)
    assert t["reg"].item() == pytest.approx(23.5, rel=1e-14)


def _closed_form_batch():
    # S = 2, M = 4, D = 6 pixels, K = 2, labels with p = 2 and 3 (two entries missing).
    # Zero image logits: −log p(x|z) = D·log 2 whatever x.  Zero label logits: −log p(y_j|z) = log p_j.
    # Every μ_k = ±1 with σ² = 1: KL = ½ Σ_k (1 + 1 − 0 − 1) = K/2 = 1 per sample.
    mu = torch.tensor([1.0, -1.0]).expand(2, 4, 2)
    return dict(
        image_nll=bernoulli_nll(torch.zeros(2, 4, 6), torch.rand(4, 6, generator=torch.Generator().manual_seed(0))),
        mu=mu,
        logvar=torch.zeros(2, 4, 2),
        z=torch.randn(2, 4, 2, generator=torch.Generator().manual_seed(1)),
        y=torch.tensor([[0, 2], [1, -1], [-1, 0], [1, 1]]),
        label_logits=[torch.zeros(2, 4, 2), torch.zeros(2, 4, 3)],
        dataset_size=100,
    )


def test_objective_closed_form_known_answers():
    # Per-sample label NLLs: log 2 + log 3, log 2, log 3, log 2 + log 3 → batch mean over all 4 samples
    # (labelled or not, objective.py's convention) = (3 log 2 + 3 log 3)/4 = ¾ log 6.
    inp = _closed_form_batch()
    image, label = 6 * math.log(2), 0.75 * math.log(6)
    t = objective_terms(ObjectiveConfig(regulariser="none", gamma=3.0), **inp)
    for name, value in [("image_nll", image), ("label_nll", label), ("kl", 1.0), ("reg", 0.0),
                        ("loss", image + 3 * label + 1)]:
        assert t[name].shape == (2,) and torch.allclose(t[name], torch.full((2,), value), rtol=1e-14), name
    # β-VAE (Higgins et al.): loss = NLL + γ·label + β·KL with β = 4.
    t = objective_terms(ObjectiveConfig(regulariser="kl", beta=4.0, gamma=3.0), **inp)
    assert torch.allclose(t["loss"], torch.full((2,), image + 3 * label + 4.0), rtol=1e-14)
    # WeLa-VAE (paper eq. 4) with identical posteriors: TC_MWS = (K − 1)·log N = log 100 exactly, TC_MSS = 0;
    # loss = NLL + γ·label + KL + β·TC.
    t = objective_terms(ObjectiveConfig(regulariser="tc", beta=4.0, gamma=3.0, tc_estimator="mws"), **inp)
    assert torch.allclose(t["tc"], torch.full((2,), math.log(100)), rtol=1e-14)
    assert torch.allclose(t["loss"], torch.full((2,), image + 3 * label + 1 + 4 * math.log(100)), rtol=1e-14)
    t = objective_terms(ObjectiveConfig(regulariser="tc", beta=4.0, gamma=3.0, tc_estimator="mss"), **inp)
    assert torch.allclose(t["loss"], torch.full((2,), image + 3 * label + 1), rtol=1e-14)
    # β-TCVAE: no labels, no label term.
    t = objective_terms(ObjectiveConfig(regulariser="tc", beta=4.0, tc_estimator="mws"),
                        **{**inp, "y": None, "label_logits": None})
    assert "label_nll" not in t
    assert torch.allclose(t["loss"], torch.full((2,), image + 1 + 4 * math.log(100)), rtol=1e-14)
