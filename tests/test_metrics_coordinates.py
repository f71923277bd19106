"""Known-answer tests for the coordinate MSE of paper §4.2, eqs. 5–7."""
import itertools
import math

import numpy as np
import pytest
import torch

from welavae.data import polar_factors
from welavae.metrics import CoordinateMSE, cartesian_mse, coordinate_mse, pair_mse, polar_mse

C = np.arange(64.0)
GRID = np.stack(np.meshgrid(C, C, indexing="ij"), axis=-1).reshape(-1, 2)  # (4096, 2), the ordering of CONTRIBUTING.md "Conventions"
# eq. 5 stretches the observed range 0..63 to 0..64, so a perfect latent c̃ = c·64/63
# misses by c/63: per coordinate mean((c/63)²) = Σc²/(64·63²) = 127/378; both → 127/189.
CARTESIAN_FLOOR = 127 / 189  # ≈ 0.671958
MEAN_C2 = np.mean(C**2)  # 1333.5 = 63·127/6


def _eq5(x, inverted, rng=64.0):
    """Eq. 5 written out for one channel (inversion: max − x instead of x − min)."""
    lo, hi = x.min(), x.max()
    return ((hi - x) if inverted else (x - lo)) * rng / (hi - lo)


# ------------------------------------------------------------------ Cartesian (eq. 5)
def test_perfect_cartesian_latent_scores_the_eq5_floor():
    r = cartesian_mse(GRID, GRID)
    assert isinstance(r, CoordinateMSE)
    assert r.mse == pytest.approx(CARTESIAN_FLOOR, rel=1e-12)
    assert r.mse == pytest.approx(2 * np.mean((C * 64 / 63 - C) ** 2), rel=1e-12)  # same, loop-free
    assert r.channels == (0, 1) and r.inverted == (False, False) and r.system == "cartesian"


def test_cartesian_is_invariant_to_permutation_inversion_affine_maps_and_extra_channels():
    rng = np.random.default_rng(0)
    swapped = cartesian_mse(GRID[:, ::-1], GRID)
    assert swapped.mse == pytest.approx(CARTESIAN_FLOOR, rel=1e-12) and swapped.channels == (1, 0)
    flipped = cartesian_mse(-GRID, GRID)
    assert flipped.mse == pytest.approx(CARTESIAN_FLOOR, rel=1e-12)
    assert flipped.inverted == (True, True)
    mixed = cartesian_mse(np.stack([GRID[:, 0], -GRID[:, 1]], 1), GRID)
    assert mixed.inverted == (False, True)
    affine = cartesian_mse(3.7 * GRID - 12.0, GRID)
    assert affine.mse == pytest.approx(CARTESIAN_FLOOR, rel=1e-9) and affine.inverted == (False, False)
    noisy = cartesian_mse(np.concatenate([rng.normal(size=(4096, 3)), GRID], 1), GRID)
    assert noisy.mse == pytest.approx(CARTESIAN_FLOOR, rel=1e-12) and noisy.channels == (3, 4)


def test_random_latent_scores_hundreds():
    # A random channel rescaled to [0, 64] is uncorrelated with c: per coordinate the
    # error is at least Var(c) = (64² − 1)/12 ≈ 341, so the sum is in the hundreds.
    mu = np.random.default_rng(1).normal(size=(4096, 3))
    r = cartesian_mse(mu, GRID)
    assert 2 * (64**2 - 1) / 12 < r.mse < 3000


def test_constant_channel_is_defined_as_zeros():
    # Channel 1 is constant → rescaled to 0, so it predicts c2 = 0 with error
    # mean(c2²) = 1333.5 (its inversion, 64, would cost mean((64 − c)²) = 1397.5).
    mu = np.stack([GRID[:, 0], np.full(4096, 5.0)], 1)
    r = cartesian_mse(mu, GRID)
    assert r.mse == pytest.approx(CARTESIAN_FLOOR / 2 + MEAN_C2, rel=1e-12)
    assert r.channels == (0, 1) and r.inverted == (False, False)
    assert np.isfinite(polar_mse(mu, GRID).mse)
    assert np.isfinite(cartesian_mse(np.ones((4096, 2)), GRID).mse)


# ---------------------------------------------------------------- polar (eqs. 6–7)
def test_perfect_polar_latent_scores_the_eq6_floor():
    # On the grid φ already spans [0, π/2] exactly, while d spans [0, 63√2] and is
    # stretched to [0, 90.5] by s = 90.5/(63√2); eq. 7 then gives c̃ = s·c, so the
    # error is (s − 1)²·mean(c1² + c2²) = (s − 1)²·2·1333.5 ≈ 0.6628.
    s = 90.5 / (63 * math.sqrt(2))
    expected = (s - 1) ** 2 * np.mean(GRID[:, 0] ** 2 + GRID[:, 1] ** 2)
    r = polar_mse(polar_factors(GRID), GRID)
    assert r.mse == pytest.approx(expected, rel=1e-9)
    assert r.mse == pytest.approx(0.6628, abs=1e-4)
    assert r.channels == (0, 1) and r.inverted == (False, False) and r.system == "polar"
    swapped = polar_mse(-polar_factors(GRID)[:, ::-1], GRID)
    assert swapped.mse == pytest.approx(expected, rel=1e-9)
    assert swapped.channels == (1, 0) and swapped.inverted == (True, True)


def test_perfect_cartesian_latent_scores_668_77_on_the_polar_task():
    # Known answer by a plain loop over the 64×64 grid and the 8 readings of (c1, c2) as (φ, d),
    # eqs. 6–7 written out per point: a channel spanning 0..63 rescales to v·range/63 (or (63 − v)·range/63
    # inverted).  The best readings (φ from c2, d from c1, neither inverted, and its mirror φ from c1
    # inverted, d from c2) score 668.7703664270…, far from the polar floor 0.6628.
    best = math.inf
    for swap, inv_phi, inv_d in itertools.product([False, True], repeat=3):
        total = 0.0
        for c1 in range(64):
            for c2 in range(64):
                a, b = (c2, c1) if swap else (c1, c2)
                phi = (63 - a if inv_phi else a) * (math.pi / 2) / 63
                d = (63 - b if inv_d else b) * 90.5 / 63
                total += (d * math.cos(phi) - c1) ** 2 + (d * math.sin(phi) - c2) ** 2
        best = min(best, total / 4096)
    assert best == pytest.approx(668.77036642702, abs=1e-9)
    r = polar_mse(GRID, GRID)
    assert r.mse == pytest.approx(best, abs=1e-4)
    assert r.mse == pytest.approx(668.77036642702, abs=1e-4)
    assert r.channels == (1, 0) and r.inverted == (False, False) or r.channels == (0, 1) and r.inverted == (True, False)


# ------------------------------------------------------------------ brute force
@pytest.mark.parametrize("system", ["cartesian", "polar"])
def test_vectorised_search_matches_a_plain_double_loop(system):
    rng = np.random.default_rng(3)
    mu = rng.normal(size=(40, 4))
    factors = rng.integers(0, 64, size=(40, 2)).astype(float)
    c1, c2 = factors[:, 0], factors[:, 1]
    best = (np.inf, None)
    for i in range(4):
        for j in range(4):
            if i == j:
                continue
            for inv_i in (False, True):
                for inv_j in (False, True):
                    if system == "cartesian":
                        a, b = _eq5(mu[:, i], inv_i), _eq5(mu[:, j], inv_j)
                        e = np.mean((a - c1) ** 2 + (b - c2) ** 2)
                    else:
                        phi, d = _eq5(mu[:, i], inv_i, math.pi / 2), _eq5(mu[:, j], inv_j, 90.5)
                        e = np.mean((d * np.cos(phi) - c1) ** 2 + (d * np.sin(phi) - c2) ** 2)
                    if e < best[0]:
                        best = (e, ((i, j), (inv_i, inv_j)))
    r = coordinate_mse(mu, factors, system=system)
    assert r.mse == pytest.approx(best[0], rel=1e-10)
    assert (r.channels, r.inverted) == best[1]


def test_large_input_recovers_a_planted_pair():
    # Paper scale: K = 5, N = 64·64·25 = 102 400, planted (c2, c1) in channels 3, 1.
    rng = np.random.default_rng(4)
    factors = np.repeat(GRID, 25, axis=0)
    mu = rng.normal(size=(len(factors), 5)).astype(np.float32)
    mu[:, 3], mu[:, 1] = -factors[:, 0], factors[:, 1]
    r = cartesian_mse(mu, factors)
    assert r.channels == (3, 1) and r.inverted == (True, False)
    assert r.mse == pytest.approx(CARTESIAN_FLOOR, rel=1e-6)
    assert polar_mse(mu, factors).mse > 100


# ----------------------------------------------------------------- inputs
def test_accepts_torch_tensors_and_float32():
    t = torch.tensor(GRID, dtype=torch.float32, requires_grad=True)
    assert cartesian_mse(t, GRID).mse == pytest.approx(CARTESIAN_FLOOR, rel=1e-6)
    r = polar_mse(polar_factors(GRID).astype(np.float32), torch.tensor(GRID))
    assert r.mse == pytest.approx(0.6628, abs=1e-3)


@pytest.mark.parametrize(
    "mu, factors, match",
    [
        (GRID[:, :1], GRID, "at least K = 2"),
        (GRID[:, 0], GRID, "2-D array"),
        (GRID[:10], GRID, "must match"),
        (GRID, GRID[:, :1], r"shape \(N, 2\)"),
        (np.where(GRID == 5, np.nan, GRID), GRID, "NaN"),
        (np.zeros((0, 2)), np.zeros((0, 2)), "empty"),
    ],
)
def test_bad_input_gets_a_clear_error(mu, factors, match):
    for fn in (cartesian_mse, polar_mse):
        with pytest.raises(ValueError, match=match):
            fn(mu, factors)


def test_unknown_system_is_rejected():
    with pytest.raises(ValueError, match="system must be one of"):
        coordinate_mse(GRID, GRID, system="spherical")


def test_result_is_frozen():
    r = cartesian_mse(GRID, GRID)
    with pytest.raises(AttributeError):  # a frozen dataclass
        r.mse = 0.0


# ------------------------------------------- any two factors (pair_mse, issue 22)
A, B = np.meshgrid(np.arange(32.0), np.arange(16.0), indexing="ij")
PAIR = np.stack([A.ravel(), B.ravel()], axis=1)  # a class-index grid 0..31 × 0..15: widths (31, 15)
WIDTHS = (31, 15)


def test_pair_mse_on_blobs_widths_is_eqs_5_to_7():
    mu = np.stack([polar_factors(GRID)[:, 1], GRID[:, 1] + 3.0, polar_factors(GRID)[:, 0]], axis=1)
    assert pair_mse(mu, GRID, widths=(64, 64), system="cartesian") == cartesian_mse(mu, GRID)
    assert pair_mse(mu, GRID, widths=(64, 64), system="polar") == polar_mse(mu, GRID, d_range=64 * math.sqrt(2))


def test_perfect_codes_of_a_pair_of_different_widths_score_zero_in_their_own_system():
    phi, d = np.arctan2(PAIR[:, 1], PAIR[:, 0]), np.hypot(PAIR[:, 0], PAIR[:, 1])
    s, t = PAIR.sum(1), PAIR[:, 0] - PAIR[:, 1]
    noise = np.random.default_rng(0).normal(size=len(PAIR))
    codes = {"cartesian": PAIR, "polar": np.stack([d, noise, phi], 1), "rotated": np.stack([-t, s], 1)}
    for system, mu in codes.items():
        r = pair_mse(mu, PAIR, widths=WIDTHS, system=system)
        assert r.mse == pytest.approx(0.0, abs=1e-20), system
    assert pair_mse(codes["polar"], PAIR, widths=WIDTHS, system="polar").channels == (2, 0)
    assert pair_mse(codes["rotated"], PAIR, widths=WIDTHS, system="rotated").inverted == (False, True)
    # A Cartesian code read in the other systems is far off: the systems are told apart.
    assert pair_mse(PAIR, PAIR, widths=WIDTHS, system="polar").mse > 20
    assert pair_mse(PAIR, PAIR, widths=WIDTHS, system="rotated").mse > 20


def test_rotated_error_is_half_the_sum_and_difference_errors():
    # s exact, t off by a hand-computed amount: the error in the (a, b) plane is mean((t − t̃)²)/2.
    s, t = PAIR.sum(1), PAIR[:, 0] - PAIR[:, 1]
    t_tilde = np.where(t > 0, t, 0.0)  # spans [0, 31], rescaled to [−15, 31]: t̃ = 46·max(t, 0)/31 − 15
    want = np.mean((t - (46 * t_tilde / 31 - 15)) ** 2) / 2
    assert pair_mse(np.stack([s, t_tilde], 1), PAIR, widths=WIDTHS, system="rotated").mse == pytest.approx(want, rel=1e-12)


def test_polar_about_the_centre_closed_form():
    # Points on rings about the centre (R = hypot(w)/2 the largest) at angles 2πk/M: the angle channel's
    # observed [0, 2π(M−1)/M] is stretched to [0, 2π], so each point of radius r misses by the chord
    # 2r²(1 − cos(θ/(M−1))); the distance channel spans [0, R] exactly.
    w, m = (20.0, 10.0), 12
    big_r = math.hypot(*w) / 2
    r = np.repeat(np.linspace(0, big_r, 5), m)
    theta = np.tile(2 * math.pi * np.arange(m) / m, 5)
    pair = np.stack([w[0] / 2 + r * np.cos(theta), w[1] / 2 + r * np.sin(theta)], 1)
    want = np.mean(2 * r**2 * (1 - np.cos(theta / (m - 1))))
    got = pair_mse(np.stack([theta, r], 1), pair, widths=w, system="polar", origin="centre")
    assert got.mse == pytest.approx(want, rel=1e-9) and got.channels == (0, 1)


def test_pair_mse_refuses_an_unknown_system_or_origin():
    with pytest.raises(ValueError, match="system must be one of"):
        pair_mse(PAIR, PAIR, widths=WIDTHS, system="spherical")
    with pytest.raises(ValueError, match="origin must be"):
        pair_mse(PAIR, PAIR, widths=WIDTHS, system="polar", origin="middle")
