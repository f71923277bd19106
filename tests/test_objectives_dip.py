"""welavae.objectives.dip: the DIP-VAE-I/II regulariser (Kumar et al. 2018) computed by hand."""
import pytest
import torch

from welavae.config import ObjectiveConfig
from welavae.objectives import bernoulli_nll, dip_covariance, dip_regulariser, objective_terms


@pytest.mark.usefixtures("float64")
def test_dip_regulariser_zero_at_identity_covariance():
    # μ with identity batch covariance and σ² = 0 → DIP-I and DIP-II penalties vanish.
    mu = torch.tensor([[[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]]])
    lv = torch.full_like(mu, -60.0)
    assert dip_regulariser(mu, lv, kind="i").item() == pytest.approx(0, abs=1e-12)
    assert dip_regulariser(mu, lv, kind="ii").item() == pytest.approx(0, abs=1e-12)
    # DIP-II with σ² = 1 adds 1 to the diagonal: λ_d Σ (2 − 1)² = 10·2.
    assert dip_regulariser(mu, torch.zeros_like(mu), kind="ii").item() == pytest.approx(20.0)


@pytest.mark.usefixtures("float64")
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
