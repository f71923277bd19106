"""The Blobs data set of WeLa-VAE (paper §4.1) and its weak labels.

Each image is a white blob on a black ``size × size`` canvas; the generative
factors are the blob centre's Cartesian coordinates ``(c1, c2)`` = (row,
column), integers ``0 … size-1`` with the origin at the top-left corner.
For every position ``V`` variants are drawn, so ``N = size² · V``
(``V = 25`` gives the paper's 102,400 images, ``V = 1`` the authors' 4,096).

The paper does not say how the 25 blobs of one position differ.  We vary
the blob's spread: variant ``v`` of a position is an isotropic Gaussian
``exp(-|x - c|² / (2σ²))`` (peak 1 at the centre, cropped at the canvas
edges) whose ``σ`` is drawn i.i.d. uniform in ``sigma_range`` (default
2–4 pixels) from ``numpy.random.default_rng(seed)``.  The authors' public
code uses one fixed shape instead — a radius-10 disk blurred by a 21×21
Gaussian kernel (σ = 3.5) — available as ``shape="disk"`` (then the ``V``
variants of a position are identical).

Pixel values are quantised to 8 bits (``k / 255``), which is how the set is
cached on disk; freshly generated and cached sets are therefore identical.
As a :class:`Blobs` the images are float32 (1.68 GB for the paper's N = 102,400);
the data path (:func:`welavae.data.load`) keeps the 8-bit pixels instead (420 MB,
as in the cache file) and converts each training batch
(:func:`welavae.data.dataset.to_float`, bit-identical to converting first).

Ordering: sample index ``(c1 · size + c2) · V + v`` — so an array over the
samples reshapes to ``(size, size, V, …)`` for positional heat maps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Blobs",
    "make_blobs",
    "blob_pixels",
    "polar_factors",
    "weak_labels",
    "label_edges",
    "SHAPES",
]

SHAPES = ("gaussian", "disk")
#: Relative tolerance under which a value counts as lying *on* a bin edge
#: (and so in the lower bin).  Lattice points off an edge are ≥ 1e-4 away.
_EDGE_RTOL = 1e-9
_CHUNK = 8192  # images generated per vectorised block (bounded memory)


@dataclass(frozen=True)
class Blobs:
    """A generated Blobs set.

    images:  (N, size, size) float32 in [0, 1], or the uint8 pixels k (value k/255) when
             loaded with ``pixels=True`` (:func:`welavae.data.load_blobs`)
    factors: (N, 2) float64 (c1, c2) = (row, column) of the blob centre
    sigmas:  (N,) float64 spread of each blob (NaN for ``shape="disk"``)
    """

    images: np.ndarray
    factors: np.ndarray
    sigmas: np.ndarray
    size: int
    variants: int
    seed: int
    shape: str

    def __len__(self) -> int:
        return len(self.images)


def _check_generator_args(variants: int, size: int, shape: str, sigma_range) -> None:
    if not isinstance(variants, (int, np.integer)) or variants < 1:
        raise ValueError(f"variants_per_position must be an integer >= 1, got {variants!r}")
    if not isinstance(size, (int, np.integer)) or size < 2:
        raise ValueError(f"size must be an integer >= 2, got {size!r}")
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")
    lo, hi = sigma_range
    if not (0 < lo <= hi) or not math.isfinite(hi):
        raise ValueError(f"sigma_range must satisfy 0 < low <= high, got {sigma_range!r}")


def _grid_factors(size: int, variants: int) -> np.ndarray:
    """(size² · V, 2) centres in the documented order."""
    c1, c2 = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    centres = np.stack([c1.ravel(), c2.ravel()], axis=1).astype(np.float64)
    return np.repeat(centres, variants, axis=0)


def _disk_template(size: int, radius: float = 10.0, kernel: int = 21, sigma: float = 3.5) -> np.ndarray:
    """(2·size-1)² template: a disk blurred by a separable Gaussian, peak 1 at its centre."""
    half = size - 1
    pad = kernel // 2
    coords = np.arange(-half - pad, half + pad + 1)
    disk = (coords[:, None] ** 2 + coords[None, :] ** 2 <= radius**2).astype(np.float64)
    t = np.arange(kernel) - pad
    g = np.exp(-(t**2) / (2 * sigma**2))
    g /= g.sum()
    blurred = np.apply_along_axis(lambda r: np.convolve(r, g, mode="same"), 0, disk)
    blurred = np.apply_along_axis(lambda r: np.convolve(r, g, mode="same"), 1, blurred)
    blurred = blurred[pad:-pad, pad:-pad]
    return blurred / blurred[half, half]


def blob_pixels(
    variants_per_position: int = 25,
    *,
    size: int = 64,
    seed: int = 0,
    shape: str = "gaussian",
    sigma_range: tuple[float, float] = (2.0, 4.0),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generate the set as 8-bit pixels: (uint8 (N,size,size), factors (N,2), sigmas (N,))."""
    _check_generator_args(variants_per_position, size, shape, sigma_range)
    factors = _grid_factors(size, variants_per_position)
    n = len(factors)
    pixels = np.empty((n, size, size), dtype=np.uint8)
    grid = np.arange(size, dtype=np.float64)
    if shape == "gaussian":
        rng = np.random.default_rng(seed)
        sigmas = rng.uniform(sigma_range[0], sigma_range[1], size=n)
        for start in range(0, n, _CHUNK):
            sl = slice(start, min(start + _CHUNK, n))
            inv = 1.0 / (2.0 * sigmas[sl, None] ** 2)  # (n, 1)
            rows = np.exp(-((grid[None, :] - factors[sl, 0:1]) ** 2) * inv)  # (n, size)
            cols = np.exp(-((grid[None, :] - factors[sl, 1:2]) ** 2) * inv)  # (n, size)
            # The Gaussian is separable: image = outer(rows, cols).
            img = rows[:, :, None] * cols[:, None, :]  # (n, size, size)
            pixels[sl] = np.rint(img * 255.0).astype(np.uint8)
    else:
        sigmas = np.full(n, np.nan)
        template = np.rint(_disk_template(size) * 255.0).astype(np.uint8)
        half = size - 1
        for i, (c1, c2) in enumerate(_grid_factors(size, 1).astype(int)):
            r0, q0 = half - c1, half - c2
            block = template[r0 : r0 + size, q0 : q0 + size]
            pixels[i * variants_per_position : (i + 1) * variants_per_position] = block
    return pixels, factors, sigmas


def make_blobs(
    variants_per_position: int = 25,
    *,
    size: int = 64,
    seed: int = 0,
    shape: str = "gaussian",
    sigma_range: tuple[float, float] = (2.0, 4.0),
) -> Blobs:
    """Build the Blobs set in memory (see the module docstring for the distribution).

    ``variants_per_position=25`` is the paper's N = 102,400; ``1`` the authors' 4,096.
    Use :func:`welavae.data.load_blobs` for the disk-cached version.
    """
    pixels, factors, sigmas = blob_pixels(
        variants_per_position, size=size, seed=seed, shape=shape, sigma_range=sigma_range
    )
    return blobs_from_pixels(pixels, factors, sigmas, variants=variants_per_position, seed=seed, shape=shape)


def blobs_from_pixels(pixels, factors, sigmas, *, variants: int, seed: int, shape: str,
                      keep_pixels: bool = False) -> Blobs:
    """The set from its 8-bit pixels: images float32 k/255, or the uint8 pixels themselves (``keep_pixels``)."""
    if keep_pixels:
        images = pixels
    else:
        images = pixels.astype(np.float32)
        images *= np.float32(1.0 / 255.0)
    return Blobs(
        images=images,
        factors=factors,
        sigmas=sigmas,
        size=pixels.shape[1],
        variants=variants,
        seed=seed,
        shape=shape,
    )


# ---------------------------------------------------------------- factors ---


def _check_factors(factors, size: float) -> np.ndarray:
    f = np.asarray(factors, dtype=np.float64)
    if f.ndim != 2 or f.shape[1] != 2:
        raise ValueError(f"factors must have shape (N, 2) = (c1, c2), got {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError("factors contain NaN or inf")
    if f.size and (f.min() < 0 or f.max() > size):
        raise ValueError(
            f"factors must lie on the canvas [0, {size:g}], got values in [{f.min():g}, {f.max():g}]"
        )
    return f


def polar_factors(factors, *, size: int = 64) -> np.ndarray:
    """(N, 2) Cartesian (c1, c2) → (N, 2) polar (phi, d).

    ``phi = atan2(c2, c1)`` in [0, π/2] (0 along the row axis), ``d = hypot(c1, c2)``.
    """
    f = _check_factors(factors, size)
    return np.stack([np.arctan2(f[:, 1], f[:, 0]), np.hypot(f[:, 0], f[:, 1])], axis=1)


def label_edges(p: int, *, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Inner bin edges (p-1,) for angle over [0, π/2] and distance over [0, size·√2]."""
    _check_p(p)
    k = np.arange(1, p)
    return k * (math.pi / 2) / p, k * (size * math.sqrt(2)) / p


def _check_p(p) -> None:
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 2:
        raise ValueError(f"label dimension p must be an integer >= 2, got {p!r}")


def _bin(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    # Bin k holds k·step < v <= (k+1)·step; v = 0 lands in bin 0.  Values within a
    # relative 1e-9 of an edge count as on it (e.g. d(32,32) = 32√2 for p = 2).
    # The bin is the number of (ascending, positive) edges strictly below v: searchsorted's
    # left side, in O(N + p) memory where an (N, p) comparison would not fit for large p.
    return np.searchsorted(edges * (1 + _EDGE_RTOL), values, side="left").astype(np.int64)


def weak_labels(factors, p: int, *, size: int = 64) -> np.ndarray:
    """(N, 2) Cartesian factors → (N, 2) int64 (angle bin, distance bin), each in 0…p-1.

    p equal-width bins over [0, π/2] (angle) and [0, size·√2] (distance), as
    CONTRIBUTING.md ("Conventions") states; unlike the authors' code, (0, 0) gets distance bin 0.
    """
    _check_p(p)
    polar = polar_factors(factors, size=size)
    a_edges, d_edges = label_edges(p, size=size)
    return np.stack([_bin(polar[:, 0], a_edges), _bin(polar[:, 1], d_edges)], axis=1)
