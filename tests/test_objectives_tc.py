"""welavae.objectives.tc: the MSS weights and the TC / KL decomposition at identical posteriors (Chen et al. 2018)."""
import math

import pytest
import torch

from welavae.objectives import importance_weights, kl_decomposition, total_correlation


@pytest.mark.usefixtures("float64")
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


@pytest.mark.usefixtures("float64")
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


@pytest.mark.usefixtures("float64")
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
