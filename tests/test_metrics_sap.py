"""Known-answer tests for SAP (Kumar et al. 2018; disentanglement_lib sap_score.py, discrete branch)."""
import numpy as np
import pytest
from metric_cases import G8, SMALL, _jitter

from welavae.metrics import sap


def test_sap_is_zero_when_one_latent_predicts_every_factor_equally():
    # Both latents are the same code g = 8·c1 + c2 of both factors: every column of
    # the score matrix has two equal entries, so every gap is exactly 0.
    g = G8[:, 0] * 8 + G8[:, 1]
    assert sap(np.stack([g, g], 1), G8, **SMALL) == 0.0


def test_sap_of_a_perfect_binary_code():
    # Binary factors, μ = factors: the matching latent's SVM is right every time and
    # the other latent (independent of the factor) is right half the time → SAP ≈ 1 − 1/2.
    b = np.repeat(np.array([[0, 0], [0, 1], [1, 0], [1, 1]]), 250, 0)
    assert sap(_jitter(b, scale=0.2), b, **SMALL) == pytest.approx(0.5, abs=0.06)
