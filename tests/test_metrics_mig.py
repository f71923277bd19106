"""Known-answer tests for MIG (Chen et al. 2018; disentanglement_lib mig.py)."""
import numpy as np
import pytest
from metric_cases import GRID, C, _entropy_of

from welavae.metrics import histogram_discretize, mig


def test_perfect_code_of_a_64_value_factor_has_mig_below_one():
    # I(bin(c); c) = H(bin(c)) because the bin is a function of c; the other latent is
    # independent of c on the full grid; H(c) = log 64.  So MIG = H(bin(c)) / H(c) ≈ 0.72.
    expected = _entropy_of(histogram_discretize(C)[:, 0]) / _entropy_of(C)
    assert expected == pytest.approx(0.7185, abs=1e-4)
    assert mig(GRID, GRID) == pytest.approx(expected, abs=1e-12)
    assert mig(GRID, GRID, bins=64) == pytest.approx(1.0, abs=1e-12)  # one bin per value


def test_duplicated_latent_has_zero_gap():
    # μ = (c1, c1): both latents tie on c1 and neither knows c2 → every gap is 0.
    assert mig(GRID[:, [0, 0]], GRID) == pytest.approx(0.0, abs=1e-12)


def test_constant_factor_contributes_zero():
    factors = np.stack([GRID[:, 0], np.zeros(4096)], 1)
    assert mig(GRID, factors, bins=64) == pytest.approx(0.5)  # factor 1: gap/H = 1; constant: 0
