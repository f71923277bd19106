"""Coordinate MSE: recover the blob centre from two latent channels (paper §4.2, eqs. 5–7).

The paper scores a representation by how well a *simple* map of two encoder
mean channels reproduces the true centre (c1, c2):

* Cartesian task (eq. 5): channel i is min–max rescaled to [0, 64] as c̃1 and
  channel j to [0, 64] as c̃2.
* Polar task (eq. 6): channel i is rescaled to [0, π/2] as the angle φ̃ and
  channel j to [0, 90.5] as the distance d̃; then (eq. 7) c̃1 = d̃·cos φ̃ and
  c̃2 = d̃·sin φ̃.

The score is the mean over samples of the squared L2 error
‖(c1, c2) − (c̃1, c̃2)‖², minimised over every ordered pair of distinct
channels (i, j) and the four sign inversions, because an encoder may put a
factor in any channel and in either direction.  Inverting a channel uses
max − μ instead of μ − min in the rescale, i.e. a rescaled value r becomes
range − r.

A constant channel (max = min) makes eqs. 5–6 divide by zero; we rescale it to
all zeros (so its inversion is the constant ``range``).  That keeps the score
finite and lets the minimum simply prefer any informative channel.

Vectorised: every channel is rescaled once (both directions), so the search is
over K·2 candidate vectors per role rather than K(K−1)·4 recomputations.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._checks import as_2d

__all__ = [
    "CoordinateMSE",
    "cartesian_mse",
    "polar_mse",
    "coordinate_mse",
    "pair_mse",
    "SYSTEMS",
    "CARTESIAN_RANGE",
    "PHI_RANGE",
    "D_RANGE",
]

CARTESIAN_RANGE = 64.0  # eq. 5: c̃ ∈ [0, 64]
PHI_RANGE = math.pi / 2  # eq. 6: φ̃ ∈ [0, π/2]
D_RANGE = 90.5  # eq. 6: d̃ ∈ [0, 90.5] ≈ 64·√2, the paper's rounded value


@dataclass(frozen=True)
class CoordinateMSE:
    """Best coordinate approximation found by :func:`cartesian_mse` / :func:`polar_mse`.

    mse:      mean over samples of the squared L2 error of (c̃1, c̃2).
    channels: (i, j) latent channels used for (c1, c2) (Cartesian) or (φ, d) (polar).
    inverted: whether channel i / channel j was used as max − μ instead of μ − min.
    system:   "cartesian" or "polar".
    """

    mse: float
    channels: tuple[int, int]
    inverted: tuple[bool, bool]
    system: str


def _check_inputs(mu, factors) -> tuple[np.ndarray, np.ndarray]:
    mu = as_2d(mu, "mu", "(N, K) of encoder means", vector=False)
    if mu.shape[1] < 2:
        raise ValueError(
            f"mu must have at least K = 2 latent channels to pick a pair from, got K = {mu.shape[1]}"
        )
    factors = as_2d(factors, "factors", "(N, 2) = (c1, c2)", vector=False)
    if factors.shape[1] != 2:
        raise ValueError(f"factors must have shape (N, 2) = (c1, c2), got {factors.shape}")
    if mu.shape[0] != factors.shape[0]:
        raise ValueError(
            f"mu has {mu.shape[0]} samples but factors has {factors.shape[0]}; they must match"
        )
    if mu.shape[0] == 0:
        raise ValueError("mu and factors are empty; need at least one sample")
    return mu, factors


def _rescaled(mu: np.ndarray, value_range: float) -> np.ndarray:
    """(N, K) → (K, 2, N): channel k min–max rescaled to [0, range]; [:, 1] is inverted."""
    lo = mu.min(axis=0)
    span = mu.max(axis=0) - lo
    safe = np.where(span > 0, span, 1.0)
    r = (mu - lo) * (value_range / safe)  # (N, K)
    r[:, span == 0] = 0.0  # constant channel: defined as all zeros (see module docstring)
    r = r.T  # (K, N)
    return np.stack([r, value_range - r], axis=1)  # (K, 2, N)


def _best(table: np.ndarray) -> tuple[int, int, int, int]:
    """argmin of a (K, 2, K, 2) table indexed [i, inv_i, j, inv_j], ignoring i == j."""
    k = table.shape[0]
    table = table.copy()
    table[np.arange(k), :, np.arange(k), :] = np.inf
    i, a, j, b = np.unravel_index(int(np.argmin(table)), table.shape)
    return int(i), int(a), int(j), int(b)


def cartesian_mse(mu, factors, *, coord_range=CARTESIAN_RANGE) -> CoordinateMSE:
    """Cartesian coordinate MSE (paper eq. 5), best over channel pairs and inversions.

    mu:      (N, K) encoder means, K >= 2 (numpy array or torch tensor).
    factors: (N, 2) true centres (c1, c2) = (row, column).
    coord_range: the interval [0, coord_range] channels are stretched to (64 in the paper), or one
             interval per coordinate ``(range_1, range_2)`` (two factors of different widths).
    Returns a :class:`CoordinateMSE`; ``channels = (i, j)`` predict (c1, c2).
    """
    mu, factors = _check_inputs(mu, factors)
    range1, range2 = (coord_range, coord_range) if np.ndim(coord_range) == 0 else coord_range
    r1 = _rescaled(mu, range1)  # (K, 2, N)
    r2 = r1 if range2 == range1 else _rescaled(mu, range2)
    # The squared L2 error separates per coordinate, so each channel's error for
    # c1 and for c2 is computed once and the pair table is a sum.
    e1 = np.mean((r1 - factors[:, 0]) ** 2, axis=-1)  # (K, 2)
    e2 = np.mean((r2 - factors[:, 1]) ** 2, axis=-1)  # (K, 2)
    i, a, j, b = _best(e1[:, :, None, None] + e2[None, None, :, :])
    return CoordinateMSE(
        mse=float(e1[i, a] + e2[j, b]),
        channels=(i, j),
        inverted=(bool(a), bool(b)),
        system="cartesian",
    )


def polar_mse(mu, factors, *, d_range: float = D_RANGE, phi_range: float = PHI_RANGE) -> CoordinateMSE:
    """Polar coordinate MSE (paper eqs. 6–7), best over channel pairs and inversions.

    mu:      (N, K) encoder means, K >= 2 (numpy array or torch tensor).
    factors: (N, 2) true centres (c1, c2) relative to the pole; the error is measured in
             Cartesian pixels.
    d_range: the interval the distance channel is stretched to (90.5 in the paper).
    phi_range: the interval the angle channel is stretched to (π/2 in the paper, whose pole is a
             corner; 2π about a centre).
    Returns a :class:`CoordinateMSE`; ``channels = (i, j)`` are (φ, d).
    """
    mu, factors = _check_inputs(mu, factors)
    n, k = mu.shape
    c1, c2 = factors[:, 0], factors[:, 1]
    phi = _rescaled(mu, phi_range)  # (K, 2, N)
    d = _rescaled(mu, d_range)  # (K, 2, N)
    # ‖c − d̃(cos φ̃, sin φ̃)‖² = d̃² − 2 d̃ (c1 cos φ̃ + c2 sin φ̃) + ‖c‖²: the only
    # term coupling the two channels is a product, so all pairs come from one matmul.
    proj = (c1 * np.cos(phi) + c2 * np.sin(phi)).reshape(2 * k, n)  # (2K, N)
    cross = (proj @ d.reshape(2 * k, n).T / n).reshape(k, 2, k, 2)  # [i, a, j, b]
    table = np.mean(d**2, axis=-1)[None, None, :, :] - 2.0 * cross + np.mean(c1**2 + c2**2)
    i, a, j, b = _best(table)
    # Report the chosen pair's error computed directly, free of the expansion's rounding.
    p, dist = phi[i, a], d[j, b]
    mse = np.mean((dist * np.cos(p) - c1) ** 2 + (dist * np.sin(p) - c2) ** 2)
    return CoordinateMSE(
        mse=float(mse), channels=(i, j), inverted=(bool(a), bool(b)), system="polar"
    )


_SYSTEMS = {"cartesian": cartesian_mse, "polar": polar_mse}
#: The coordinate systems :func:`pair_mse` scores (the weak-label spec's: bins, angle/distance, sum/diff).
SYSTEMS = ("cartesian", "polar", "rotated")


def coordinate_mse(mu, factors, system: str = "cartesian") -> CoordinateMSE:
    """Dispatch to :func:`cartesian_mse` (eq. 5) or :func:`polar_mse` (eqs. 6–7).

    mu: (N, K); factors: (N, 2) (c1, c2); system: "cartesian" or "polar".
    """
    try:
        fn = _SYSTEMS[system]
    except (KeyError, TypeError):
        raise ValueError(
            f"system must be one of {sorted(_SYSTEMS)}, got {system!r}"
        ) from None
    return fn(mu, factors)


def pair_mse(mu, pair, *, widths, system: str, origin: str = "corner") -> CoordinateMSE:
    """Eqs. 5–7 generalised to any two factors (a, b) and the systems of :mod:`welavae.data.spec`.

    mu: (N, K); pair: (N, 2) the two factors measured from the corner where both are
    smallest, i.e. ``(a − lo_a, b − lo_b)`` in ``[0, w_a] × [0, w_b]``; widths: (w_a, w_b).
    The error is always the squared L2 distance in the (a, b) plane, so the systems compare:

    ``cartesian``  channel i → [0, w_a] as a, channel j → [0, w_b] as b (eq. 5).
    ``polar``      about the corner: i → φ ∈ [0, π/2], j → d ∈ [0, hypot(w_a, w_b)];
                   with ``origin="centre"``: φ ∈ [0, 2π], d ∈ [0, hypot(w_a, w_b)/2] about the
                   middle of the ranges (eqs. 6–7).
    ``rotated``    the 45° system of ``sum``/``diff``: i → s ∈ [0, w_a + w_b], j → t ∈ [−w_b, w_a];
                   a = (s + t)/2, b = (s − t)/2, so the error is ((s − s̃)² + (t − t̃)²)/2.

    On Blobs (widths 64, 64) the Cartesian and polar results equal :func:`cartesian_mse` and
    :func:`polar_mse` with the exact √2·64 in place of the paper's rounded 90.5.
    """
    w_a, w_b = (float(w) for w in widths)
    pair = np.asarray(pair, dtype=np.float64)
    if system == "cartesian":
        return cartesian_mse(mu, pair, coord_range=(w_a, w_b))
    if system == "polar":
        if origin == "corner":
            return polar_mse(mu, pair, d_range=math.hypot(w_a, w_b))
        if origin != "centre":
            raise ValueError(f"origin must be 'corner' or 'centre', got {origin!r}")
        return polar_mse(mu, pair - np.array([w_a, w_b]) / 2, d_range=math.hypot(w_a, w_b) / 2,
                         phi_range=2 * math.pi)
    if system == "rotated":
        if pair.ndim != 2 or pair.shape[1:] != (2,):
            raise ValueError(f"pair must have shape (N, 2), got {pair.shape}")
        s, t = pair[:, 0] + pair[:, 1], pair[:, 0] - pair[:, 1] + w_b  # t shifted to [0, w_a + w_b]
        res = cartesian_mse(mu, np.stack([s, t], axis=1), coord_range=w_a + w_b)
        return CoordinateMSE(mse=res.mse / 2, channels=res.channels, inverted=res.inverted, system="rotated")
    raise ValueError(f"system must be one of {SYSTEMS}, got {system!r}")
