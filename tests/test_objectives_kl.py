"""welavae.objectives.kl: the Gaussian KL and log-density against closed forms."""
import math

import pytest
import torch

from welavae.objectives import gaussian_kl, log_normal


@pytest.mark.usefixtures("float64")
def test_kl_known_values():
    assert gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)).abs().max() == 0
    # KL(N(1, e) ‖ N(0, 1)) = ½(1 + e − 1 − 1) = (e − 1)/2 per dimension.
    kl = gaussian_kl(torch.ones(1, 2), torch.ones(1, 2))
    assert kl.item() == pytest.approx(math.e - 1)
    # KL(N(−2, ¼) ‖ N(0, 1)) = −log ½ + (¼ + 4)/2 − ½ = log 2 + 1.625.
    assert gaussian_kl(torch.tensor([-2.0]), torch.tensor([math.log(0.25)])).item() == pytest.approx(math.log(2) + 1.625)


@pytest.mark.usefixtures("float64")
def test_log_normal_known_values():
    # The standard normal density at its mean is 1/√(2π): log = −½ log 2π = −0.9189385332046727.
    assert log_normal(torch.tensor(0.0), torch.tensor(0.0), torch.tensor(0.0)).item() == pytest.approx(
        -0.9189385332046727, rel=1e-15)
    # N(3; 1, σ² = 4): 1/(2√(2π))·e^{−(3−1)²/8}, i.e. −log 2 − ½ log 2π − ½ = −2.1120857137646178.
    value = log_normal(torch.tensor(3.0), torch.tensor(1.0), torch.tensor(math.log(4.0))).item()
    assert value == pytest.approx(-math.log(2) - 0.5 * math.log(2 * math.pi) - 0.5, rel=1e-15)
    assert value == pytest.approx(-2.1120857137646178, rel=1e-15)


@pytest.mark.usefixtures("float64")
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
