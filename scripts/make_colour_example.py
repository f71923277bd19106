"""A small colour data set for trying ``--arch conv`` and ``--color rgb``: coloured blobs, 64×64×3.

Each image is one Gaussian blob (σ = 4 px) at a random centre (c1, c2) in
8…55, in one of three colours (red, green, blue), on black.  Weak labels:
``colour`` (3 classes) and ``side`` (0: the centre's column is left of the
middle, 1: right).  Factors: (c1, c2).

Writes, under OUT:

* ``rgb.npz`` — ``images`` (N, 64, 64, 3) float32 in [0, 1], ``labels``
  (N, 2), ``label_names``, ``factors`` (N, 2): for ``welavae train --npz``;
* ``pngs/`` and ``labels.csv`` — the same images as RGB PNG files with a
  CSV of the labels: for ``welavae train --images OUT/pngs --labels
  OUT/labels.csv --color rgb``.

    python scripts/make_colour_example.py --n 512 --out colour_example
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0)}


def colour_blobs(n: int, *, size: int = 64, sigma: float = 4.0, seed: int = 0):
    """(images (n, size, size, 3) float32, labels (n, 2) int64 (colour, side), factors (n, 2) (c1, c2))."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(8, size - 8, size=(n, 2))
    colour = rng.integers(0, len(COLOURS), size=n)
    yy, xx = np.mgrid[0:size, 0:size]
    blob = np.exp(-((yy - centres[:, 0, None, None]) ** 2 + (xx - centres[:, 1, None, None]) ** 2) / (2 * sigma**2))
    rgb = np.array(list(COLOURS.values()), dtype=np.float64)[colour]  # (n, 3)
    images = (blob[..., None] * rgb[:, None, None, :]).astype(np.float32)
    labels = np.stack([colour, centres[:, 1] >= size // 2], axis=1).astype(np.int64)
    return images, labels, centres.astype(np.float64)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=512, help="number of images (default 512)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder")
    args = p.parse_args(argv)
    out = Path(args.out)
    (out / "pngs").mkdir(parents=True, exist_ok=True)
    images, labels, factors = colour_blobs(args.n, seed=args.seed)
    np.savez(out / "rgb.npz", images=images, labels=labels, label_names=np.array(["colour", "side"]),
             factors=factors)
    names = list(COLOURS)
    rows = ["file,colour,side"]
    for i, (img, (c, side)) in enumerate(zip(images, labels)):
        Image.fromarray(np.round(img * 255).astype(np.uint8), mode="RGB").save(out / "pngs" / f"{i:04d}.png")
        rows.append(f"{i:04d}.png,{names[c]},{'right' if side else 'left'}")
    (out / "labels.csv").write_text("\n".join(rows) + "\n")
    print(f"wrote {out / 'rgb.npz'} {images.shape} and {len(images)} PNGs in {out / 'pngs'} with {out / 'labels.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
