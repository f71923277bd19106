"""What a run was trained on, as one short string: :func:`fingerprint` (recorded in ``config.json``).

A run directory keeps its data by reference (a file's path) or, for
:func:`welavae.fit`, as ``data.npz``.  If the file changes, the run's
weights no longer belong to it: a resumed run would continue on other
images, a finished one would encode them with the old weights.  The
fingerprint, taken once when the data are read for a new run
(:func:`welavae.resolve.resolve`), lets the run directory refuse that
(:meth:`welavae.config.RunConfig.same_run`, :class:`welavae.run.Run`).

It must be cheap for a 3 GB file, and honest about what it covers:

* **a zip file** (an ``.npz``: a user's, dSprites, its twin, MPI3D): every
  member's name, uncompressed size and CRC-32, from the zip's central
  directory.  The CRC covers every byte of the member, and costs nothing to
  read (the file's last kilobytes; 0.9 ms for the 3 GB twin).  It detects
  any change but a deliberate CRC collision; a member whose bytes no longer
  match its own CRC is corrupt, which the readers refuse.
* **another file** (Shapes3D's HDF5): its size and a SHA-256 of 64 blocks of
  64 KiB evenly spaced through it (the whole file when it is smaller), so a
  change to a region no block reads is missed; this is the price of reading
  4 MiB instead of the file.
* **data held in memory** (the arrays given to :func:`welavae.fit`, an image
  folder as decoded with its CSV's labels): a SHA-256 of the arrays as the
  model reads them (images, labels, factors: dtype, shape and bytes).  They
  are already in memory, and a folder is decoded image by image, far slower
  than hashing it.
* **the rows used**: a benchmark's fingerprint adds the SHA-256 of its factor
  classes as read, one row per image used, so a subset is named by its rows.

Blobs has none: it is generated from its config, which the run already records.
"""
from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np

from .dataset import Dataset

__all__ = ["fingerprint", "file_digest", "BLOCKS", "BLOCK_BYTES"]

BLOCKS, BLOCK_BYTES = 64, 64 << 10  # the sampled blocks of a file that is not a zip


def fingerprint(data, ds: Dataset) -> str | None:
    """The fingerprint of ``ds`` as read from ``data`` (a :class:`~welavae.config.DataConfig` with absolute paths);
    None for Blobs.  See the module docstring for what each source's covers."""
    h = hashlib.sha256()
    if data.source == "blobs":
        return None
    if data.source == "npz":
        h.update(file_digest(data.path).encode())
    elif data.source == "benchmark":
        h.update(file_digest(data.data_path).encode())
        _update(h, "factors", ds.factors)  # the rows used: a full grid's factor classes name each row
    else:  # "arrays", "images": what the model reads, already in memory
        for name in ("images", "labels", "factors"):
            _update(h, name, getattr(ds, name))
    return f"{data.source}:{h.hexdigest()[:32]}"


def file_digest(path) -> str:
    """A zip file's members (name, size, CRC-32), else its size and :data:`BLOCKS` sampled blocks, as hex."""
    path = Path(path)
    h = hashlib.sha256()
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for info in sorted(z.infolist(), key=lambda i: i.filename):
                h.update(f"{info.filename}\0{info.file_size}\0{info.CRC:08x}\n".encode())
        return "zip:" + h.hexdigest()
    size = os.path.getsize(path)
    h.update(f"{size}\n".encode())
    with open(path, "rb") as f:
        if size <= BLOCKS * BLOCK_BYTES:
            h.update(f.read())
        else:
            for offset in np.linspace(0, size - BLOCK_BYTES, BLOCKS).astype(np.int64):
                f.seek(int(offset))
                h.update(f.read(BLOCK_BYTES))
    return "blocks:" + h.hexdigest()


def _update(h, name: str, array) -> None:
    if array is None:
        h.update(f"{name}: none\n".encode())
        return
    a = np.ascontiguousarray(array)
    h.update(f"{name}: {a.dtype.str} {a.shape}\n".encode())
    h.update(memoryview(a.reshape(-1).view(np.uint8)))
