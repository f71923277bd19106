"""Known-answer tests for modularity (Ridgeway & Mozer 2018; disentanglement_lib modularity_explicitness.py).

The copy test also checks DCI, which tells modularity and completeness apart."""
import numpy as np
import pytest
from metric_cases import G8, GRID, SMALL

from welavae.metrics import dci, modularity, modularity_from_mi


@pytest.mark.parametrize(
    "mi, expected",
    [
        (np.eye(2), 1.0),
        (np.ones((2, 2)), 0.0),
        # code 0: squares (4, 1), δ = 1/(4·1) → 0.75; code 1 carries nothing → 0.
        (np.array([[2.0, 1.0], [0.0, 0.0]]), 0.375),
        (np.array([[3.0], [1.0]]), 1.0),  # one factor: every informative code is modular
    ],
)
def test_modularity_from_hand_built_mi(mi, expected):
    assert modularity_from_mi(mi) == pytest.approx(expected, abs=1e-12)


def test_copying_a_factor_into_two_latents_is_modular_but_not_complete():
    # μ = (c1, c1, c2): each latent knows one factor only (bin(c1) ⟂ c2 exactly on the
    # grid) → modularity 1; but c1 is spread over two latents → DCI completeness < 1,
    # while each latent still explains a single factor → disentanglement 1.
    assert modularity(GRID[:, [0, 0, 1]], GRID) == pytest.approx(1.0, abs=1e-12)
    res = dci(G8[:, [0, 0, 1]], G8, **SMALL)
    assert res.disentanglement == pytest.approx(1.0, abs=1e-6)
    # The trees split c1's importance between the copies (ties are broken by a random
    # feature order), so c1's completeness is 1 − H_3(p, 1 − p) < 1.
    assert 0.0 < res.importance[1, 0] and 0.0 < res.importance[0, 0]
    assert res.completeness < 0.9


def test_constant_latent_beside_a_perfect_pair():
    # The dead latent has no MI → modularity 0 for it (disentanglement_lib's rule): mean(1, 1, 0).
    mu = np.concatenate([GRID, np.full((4096, 1), 7.0)], 1)
    assert modularity(mu, GRID) == pytest.approx(2 / 3)
