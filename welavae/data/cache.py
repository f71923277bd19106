"""Disk cache of generated Blobs sets.

One ``.npz`` file per generator parameter set, named by a hash of those
parameters, holding the 8-bit pixels, factors, sigmas and a CRC-32 of the
pixel bytes.  Written to a temporary file in the same folder and moved into
place with ``os.replace``, so a reader sees either nothing or a whole file.
On load the shapes and the checksum are verified; a truncated or corrupt
file is rebuilt with a warning, never silently used.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
import zlib
from pathlib import Path

import numpy as np

from ..io import atomic_write
from .blobs import Blobs, blob_pixels, blobs_from_pixels

__all__ = ["default_data_dir", "load_blobs", "cache_path"]

_FORMAT_VERSION = 1


def default_data_dir() -> Path:
    """$WELAVAE_DATA_DIR, else $XDG_CACHE_HOME/welavae, else ~/.cache/welavae."""
    env = os.environ.get("WELAVAE_DATA_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "welavae"


def _params(variants, size, seed, shape, sigma_range) -> dict:
    return {
        "format": _FORMAT_VERSION,
        "variants": int(variants),
        "size": int(size),
        "seed": int(seed),
        "shape": str(shape),
        "sigma_range": [float(sigma_range[0]), float(sigma_range[1])],
    }


def cache_path(data_dir, *, variants=25, size=64, seed=0, shape="gaussian", sigma_range=(2.0, 4.0)) -> Path:
    params = _params(variants, size, seed, shape, sigma_range)
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    return Path(data_dir) / f"blobs-{shape}-s{size}-v{variants}-seed{seed}-{key}.npz"


def _crc(pixels: np.ndarray) -> int:
    return zlib.crc32(memoryview(np.ascontiguousarray(pixels)).cast("B"))


def _read(path: Path, params: dict):
    """Return (pixels, factors, sigmas) or raise ValueError saying what is wrong."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            pixels, factors, sigmas = z["pixels"], z["factors"], z["sigmas"]
            crc = int(z["crc32"])
    except Exception as e:  # zip/npy errors of every kind mean the same thing here
        raise ValueError(f"unreadable ({type(e).__name__}: {e})") from None
    if meta != params:
        raise ValueError(f"parameters {meta} differ from the requested {params}")
    n = params["size"] ** 2 * params["variants"]
    if pixels.shape != (n, params["size"], params["size"]) or pixels.dtype != np.uint8:
        size = params["size"]
        raise ValueError(f"pixels have shape {pixels.shape} {pixels.dtype}, expected ({n}, {size}, {size}) uint8")
    if factors.shape != (n, 2) or sigmas.shape != (n,):
        raise ValueError("factors or sigmas have the wrong shape")
    if _crc(pixels) != crc:
        raise ValueError("checksum mismatch (corrupt file)")
    return pixels, factors, sigmas


def load_blobs(
    variants_per_position: int = 25,
    *,
    size: int = 64,
    seed: int = 0,
    shape: str = "gaussian",
    sigma_range: tuple[float, float] = (2.0, 4.0),
    data_dir=None,
    pixels: bool = False,
) -> Blobs:
    """Like :func:`make_blobs`, but cached in ``data_dir`` (default :func:`default_data_dir`).

    ``pixels``: images as the uint8 pixels (value k/255) instead of float32 — a quarter of the memory.
    """
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    params = _params(variants_per_position, size, seed, shape, sigma_range)
    path = cache_path(data_dir, variants=variants_per_position, size=size, seed=seed, shape=shape,
                      sigma_range=sigma_range)
    if path.exists():
        try:
            pix, factors, sigmas = _read(path, params)
            return blobs_from_pixels(pix, factors, sigmas, variants=variants_per_position, seed=seed, shape=shape,
                                     keep_pixels=pixels)
        except ValueError as e:
            warnings.warn(f"cached data set {path} is {e}; rebuilding it", RuntimeWarning, stacklevel=2)
    pix, factors, sigmas = blob_pixels(
        variants_per_position, size=size, seed=seed, shape=shape, sigma_range=sigma_range
    )
    atomic_write(
        path,
        lambda f: np.savez(
            f,
            pixels=pix,
            factors=factors,
            sigmas=sigmas,
            crc32=np.int64(_crc(pix)),
            meta=np.array(json.dumps(params, sort_keys=True)),
        ),
    )
    return blobs_from_pixels(pix, factors, sigmas, variants=variants_per_position, seed=seed, shape=shape,
                             keep_pixels=pixels)
