"""Known-answer tests for DCI (Eastwood & Williams 2018; disentanglement_lib dci.py).

The gradient-boosted trees are fitted on an 8 × 8 grid of discrete factors with a few
hundred points, so the file runs in seconds."""
import math

import numpy as np
import pytest
from metric_cases import G8, SMALL, TINY, _dlib_dci, _jitter

from welavae.metrics import dci, dci_from_importance


@pytest.mark.parametrize(
    "matrix, expected",
    [
        (np.eye(2), (1.0, 1.0)),
        (np.diag([5.0, 1.0, 2.0]), (1.0, 1.0)),
        (np.ones((2, 2)), (0.0, 0.0)),
        (np.ones((3, 3)), (0.0, 0.0)),
        (np.zeros((2, 2)), (0.0, 0.0)),
        # Rows [3, 1] and [0, 2]: code 0 has p = (3/4, 1/4), code 1 is pure; weights 4/6, 2/6.
        # Columns [3, 0] (pure) and [1, 2] with p = (1/3, 2/3); weights 3/6, 3/6.
        (
            np.array([[3.0, 1.0], [0.0, 2.0]]),
            (
                4 / 6 * (1 + 0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)) + 2 / 6,
                3 / 6 + 3 / 6 * (1 + 1 / 3 * math.log2(1 / 3) + 2 / 3 * math.log2(2 / 3)),
            ),
        ),
    ],
)
def test_dci_from_hand_built_importance(matrix, expected):
    assert dci_from_importance(matrix) == pytest.approx(expected, abs=1e-12)



def test_dci_from_importance_matches_disentanglement_lib():
    r = np.random.default_rng(2).random((5, 3)) ** 3
    r[1, 2] = 0.0  # exercise 0·log 0
    assert dci_from_importance(r) == pytest.approx(_dlib_dci(r), abs=1e-8)


def test_dci_rejects_bad_importance():
    with pytest.raises(ValueError, match="non-negative"):
        dci_from_importance([[1.0, -1.0]])
    with pytest.raises(ValueError, match="2-D"):
        dci_from_importance([1.0, 2.0])


def test_perfect_code_has_diagonal_tree_importance_and_full_accuracy(perfect_dci):
    res = perfect_dci
    assert (res.num_train, res.num_test) == (400, 200)
    np.testing.assert_allclose(res.importance, np.eye(2), atol=1e-9)
    assert res.disentanglement == pytest.approx(1.0) and res.completeness == pytest.approx(1.0)
    assert res.informativeness_train == 1.0 and res.informativeness_test == 1.0


@pytest.fixture(scope="module")
def perfect_dci():
    return dci(_jitter(G8), G8, **SMALL)


@pytest.mark.parametrize("seed", [0, 1])
def test_random_rotation_of_a_perfect_code_lowers_disentanglement(seed, perfect_dci):
    # A rotation by an angle off the axes mixes c1 and c2 into both latents; the
    # seeded rotations here are by −101° and −136°.
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(2, 2)))
    perfect = perfect_dci
    rotated = dci(_jitter(G8) @ q, G8, **SMALL)
    assert rotated.disentanglement < perfect.disentanglement - 0.5
    assert rotated.completeness < perfect.completeness - 0.5
    assert rotated.informativeness_test > 0.85  # the information is still there


def test_dci_is_seeded():
    mu = _jitter(G8, scale=1.0)
    a, b = dci(mu, G8, seed=5, **TINY), dci(mu, G8, seed=5, **TINY)
    np.testing.assert_array_equal(a.importance, b.importance)
    assert a.informativeness_test == b.informativeness_test
