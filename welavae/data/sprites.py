"""The dSprites twin: dSprites' factor grid re-rendered offline (issue 22, item 3).

dSprites (Matthey et al. 2017, github.com/deepmind/dsprites-dataset) is every
combination of 6 factors, stored once each in C order over their classes:
color(1), shape(3: square, ellipse, heart), scale(6 values in [0.5, 1]),
orientation(40 values in [0, 2π]), posX(32 values in [0, 1]), posY(32 values
in [0, 1]) — 737,280 binary 64 × 64 images of a white sprite on black.  This
module renders the same grid with the same factor values and writes it in the
same npz layout (``imgs`` uint8 0/1, ``latents_classes`` int64,
``latents_values`` float64 — no pickled ``metadata``), so
:func:`welavae.data.published.load_benchmark` reads it as ``sprites`` exactly
as it reads DeepMind's file.  It is *not* DeepMind's file: the pixels differ.

The rendering (our choices, documented in docs/benchmarks.md):

* factor values as dSprites stores them: ``scale = linspace(0.5, 1, 6)``,
  ``orientation = linspace(0, 2π, 40)`` (so the first and last orientation are
  the same pose, as in dSprites), ``posX = posY = linspace(0, 1, 32)``;
* a pixel is on when its centre lies inside the sprite (binary, no
  antialiasing).  At scale 1 the square has half-side 10.25 px, the ellipse
  semi-axes 14.5 × 7.25 px, the heart is the curve
  ``(x² + y² − 1)³ = x² y³`` at 10.85 px per unit; each reaches at most 14.5 px
  from its centre in any pose (half-sizes are off the pixel lattice so that no
  pixel centre lies on an edge);
* the sprite turns counter-clockwise (as displayed) about its centre;
* posX moves the centre right (column ``16 + 31·posX``), posY down (row
  ``16 + 31·posY``): whole-pixel steps, so a position change is an exact shift
  and the sprite never touches the border.

Rendering: each (shape, scale, orientation) is drawn once on a 95 × 95 canvas
and the 32 × 32 positions are 64 × 64 windows of it (a sliding-window view),
so the full grid costs 720 small drawings and a 3 GB copy, written block by
block into the npz (peak memory: one block).
"""
from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..io import atomic_write
from .published import DSPRITES_FACTORS, DSPRITES_SIZES

__all__ = [
    "SHAPES",
    "sprite_template",
    "sprite_values",
    "render_sprites",
    "sprite_grid",
    "write_sprites_npz",
]

SHAPES = ("square", "ellipse", "heart")  # dSprites' shape values 1, 2, 3
SIZE = 64
_FIRST = 16  # pixel of the centre at position 0; the last is _FIRST + 31 = 47
_SPAN = 31  # pixels from position 0 to position 1
_HALF = SIZE - 1 - _FIRST  # 47: the template canvas is (2·47 + 1)² so that every window fits
_SQUARE_HALF = 10.25
_ELLIPSE_AXES = (14.5, 7.25)
_HEART_UNIT = 10.85  # px per heart unit: the heart's radius about its box centre (1.336) → 14.5 px
_HEART_CENTRE = 0.118  # the vertical middle of the heart's box [−1, 1.236], in heart units

#: The factor values of each class, as dSprites stores them (latents_values).
VALUES = (
    np.array([1.0]),
    np.array([1.0, 2.0, 3.0]),
    np.linspace(0.5, 1.0, 6),
    np.linspace(0.0, 2 * math.pi, 40),
    np.linspace(0.0, 1.0, 32),
    np.linspace(0.0, 1.0, 32),
)


def sprite_template(shape: int, scale: float, angle: float) -> np.ndarray:
    """(95, 95) bool: the sprite centred at pixel (47, 47).

    shape: 0 square, 1 ellipse, 2 heart; scale: size factor; angle: radians, counter-clockwise.
    """
    off = np.arange(-_HALF, _HALF + 1, dtype=np.float64)
    x = off[None, :]  # column offset, to the right
    y = -off[:, None]  # row offset flipped: up is positive, so the turn is counter-clockwise on screen
    c, s = math.cos(angle), math.sin(angle)
    # The point in the sprite's own frame: rotated back by the angle, then unscaled.
    u = (c * x + s * y) / scale
    v = (-s * x + c * y) / scale
    if shape == 0:
        return np.maximum(np.abs(u), np.abs(v)) <= _SQUARE_HALF
    if shape == 1:
        a, b = _ELLIPSE_AXES
        return (u / a) ** 2 + (v / b) ** 2 <= 1.0
    if shape == 2:
        hx, hy = u / _HEART_UNIT, v / _HEART_UNIT + _HEART_CENTRE
        return (hx**2 + hy**2 - 1) ** 3 - hx**2 * hy**3 <= 0.0
    raise ValueError(f"shape must be 0 (square), 1 (ellipse) or 2 (heart), got {shape!r}")


def _check_classes(classes) -> np.ndarray:
    c = np.asarray(classes)
    if c.ndim != 2 or c.shape[1] != len(DSPRITES_SIZES) or not np.issubdtype(c.dtype, np.integer):
        raise ValueError(f"classes must be integer (N, 6) dSprites class indices, got {c.dtype} {c.shape}")
    bad = (c < 0) | (c >= np.array(DSPRITES_SIZES))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(
            f"classes: {DSPRITES_FACTORS[j]} has {DSPRITES_SIZES[j]} classes, got {c[i, j]} at row {i}"
        )
    return c.astype(np.int64)


def sprite_values(classes) -> np.ndarray:
    """(N, 6) class indices → (N, 6) float64 factor values as dSprites stores them."""
    c = _check_classes(classes)
    return np.stack([VALUES[j][c[:, j]] for j in range(len(VALUES))], axis=1)


def render_sprites(classes) -> np.ndarray:
    """(N, 6) dSprites class indices → (N, 64, 64) uint8 images with pixels 0/1.

    Rows with the same (shape, scale, orientation) share one template; each
    image is the 64 × 64 window of it that puts the centre at its position.
    """
    c = _check_classes(classes)
    out = np.empty((len(c), SIZE, SIZE), dtype=np.uint8)
    key = (c[:, 1] * DSPRITES_SIZES[2] + c[:, 2]) * DSPRITES_SIZES[3] + c[:, 3]
    for k in np.unique(key):
        rows = np.flatnonzero(key == k)
        shape, scale, orient = c[rows[0], 1], c[rows[0], 2], c[rows[0], 3]
        template = sprite_template(int(shape), VALUES[2][scale], VALUES[3][orient]).astype(np.uint8)
        windows = sliding_window_view(template, (SIZE, SIZE))  # (32, 32, 64, 64)
        # Centre at (row, col) = (16 + posY, 16 + posX) ↔ window starting at (31 − posY, 31 − posX).
        out[rows] = windows[_SPAN - c[rows, 5], _SPAN - c[rows, 4]]
    return out


def sprite_grid(keep: dict | None = None) -> tuple[np.ndarray, tuple[int, ...]]:
    """The class rows of a (possibly reduced) grid in dSprites' C order, and its sizes.

    keep: factor name → class indices of the full grid to keep (default: all), e.g.
    ``{"scale": [0, 5], "orientation": [0, 10]}``.  Returns (classes (N, 6) int64, sizes (6,)).
    """
    keep = dict(keep or {})
    unknown = set(keep) - set(DSPRITES_FACTORS)
    if unknown:
        raise ValueError(f"unknown factor {sorted(unknown)[0]!r} in keep; valid: {', '.join(DSPRITES_FACTORS)}")
    per = []
    for name, size in zip(DSPRITES_FACTORS, DSPRITES_SIZES):
        given = list(np.ravel(keep.get(name, range(size))))
        # Checked as Python integers first: 10^23 is out of range, not an OverflowError of int64.
        if (not given or len(set(given)) != len(given)
                or not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) and 0 <= i < size
                           for i in given)):
            raise ValueError(f"keep[{name!r}] must be distinct class indices in 0..{size - 1}, got {keep[name]!r}")
        k = np.asarray(given, dtype=np.int64)
        per.append(np.sort(k))
    sizes = tuple(len(k) for k in per)
    local = np.stack(np.unravel_index(np.arange(math.prod(sizes)), sizes), axis=1)
    return np.stack([per[j][local[:, j]] for j in range(len(per))], axis=1), sizes


def _write_member(zf: zipfile.ZipFile, name: str, shape, dtype, blocks) -> None:
    """Stream one .npy member: the header, then the C-order bytes of each block."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape)}
    with zf.open(f"{name}.npy", "w", force_zip64=True) as fp:
        np.lib.format.write_array_header_1_0(fp, header)
        for block in blocks:
            fp.write(np.ascontiguousarray(block, dtype=dtype).tobytes())


def write_sprites_npz(path, *, keep: dict | None = None, compress: bool = True, block: int = 32 * 1024) -> Path:
    """Render the twin and write it, atomically, in dSprites' npz layout; returns the path.

    keep: a reduced grid (see :func:`sprite_grid`); the file's ``latents_classes``
    then number the kept classes 0…n−1 (read it with ``small_grid("sprites", sizes)``),
    its ``latents_values`` hold their dSprites values.
    compress: deflate the members, as DeepMind's file is (np.savez_compressed); False
    stores them, so a subset is read by memory-mapping.
    block: images rendered and written at a time (bounds the memory).
    """
    classes, sizes = sprite_grid(keep)
    n = len(classes)
    local = np.stack(np.unravel_index(np.arange(n), sizes), axis=1).astype(np.int64)

    def blocks():
        for start in range(0, n, block):
            yield render_sprites(classes[start : start + block])

    def write(f):
        method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        with zipfile.ZipFile(f, "w", compression=method, allowZip64=True) as zf:
            _write_member(zf, "imgs", (n, SIZE, SIZE), np.uint8, blocks())
            _write_member(zf, "latents_classes", local.shape, np.int64, [local])
            values = sprite_values(classes)
            _write_member(zf, "latents_values", values.shape, np.float64, [values])

    return atomic_write(path, write)
