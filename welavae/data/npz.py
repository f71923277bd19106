"""The ``.npz`` format: a user's data set (read and written), and members read without loading the rest.

A data set ``.npz`` holds ``images`` (N, H, W) or (N, H, W, C) in [0, 1] and
optionally ``labels`` (N, m) (−1 = missing), ``label_names`` (m,) and
``factors`` (N, F): :func:`load_npz` reads it, :func:`save_npz` writes it
(a run trained by :func:`welavae.fit` keeps its arrays this way).

:class:`NpzMember` reads one member of a large npz (a published data set's,
:mod:`welavae.data.published`) row block by row block: a stored member at its
offset in the file, a deflated one as a stream.  Nothing is ever unpickled:
object arrays are refused wherever they are asked for.
"""
from __future__ import annotations

import io
import math
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..io import atomic_write
from .dataset import Dataset, check_images, check_labels, infer_label_dims, to_float

__all__ = ["load_npz", "save_npz", "NpzMember", "gather_rows"]

def load_npz(path, *, label_dims=None) -> Dataset:
    """``images`` (N, H, W) or (N, H, W, C) and optional ``labels`` (N, m) (−1 = missing), ``factors``, ``label_names``.

    ``label_dims`` defaults to 1 + the largest class index of each column.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:
        raise ValueError(f"{path} is not a readable .npz file ({type(e).__name__}: {e})") from None
    if "images" not in arrays:
        raise ValueError(f"{path} has no 'images' array (found: {sorted(arrays)})")
    images = check_images(arrays["images"], name=f"{path}: images")
    if images.ndim not in (3, 4):
        raise ValueError(f"{path}: images must have shape (N, H, W) or (N, H, W, C), got {images.shape}")
    labels, dims, names = arrays.get("labels"), (), ()
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim == 1:
            labels = labels[:, None]
        dims = tuple(label_dims) if label_dims is not None else infer_label_dims(labels, name=f"{path}: labels")
        labels = check_labels(labels, len(images), dims, name=f"{path}: labels")
        names = tuple(str(s) for s in arrays["label_names"]) if "label_names" in arrays else \
            tuple(f"label{j}" for j in range(len(dims)))
        if len(names) != len(dims):
            raise ValueError(f"{path}: label_names has {len(names)} names for {len(dims)} label columns")
    factors = arrays.get("factors")
    if factors is not None:
        factors = np.asarray(factors, dtype=np.float64)
        if factors.ndim != 2 or len(factors) != len(images):
            raise ValueError(f"{path}: factors must have shape (N={len(images)}, F), got {factors.shape}")
    classes = tuple(tuple(str(c) for c in range(p)) for p in dims)
    return Dataset(images=images, labels=labels, label_dims=dims, label_names=names, label_classes=classes,
                   factors=factors)


def save_npz(path, data: Dataset) -> Path:
    """``data`` as the npz layout :func:`load_npz` reads (images, and labels,
    label_names, factors when present), compressed, written atomically."""
    arrays = {"images": to_float(np.asarray(data.images))}
    if data.labels is not None:
        arrays["labels"] = np.asarray(data.labels, dtype=np.int64)
        if data.label_names:
            arrays["label_names"] = np.asarray(data.label_names, dtype=str)
    if data.factors is not None:
        arrays["factors"] = np.asarray(data.factors, dtype=np.float64)

    def write(f):
        buf = io.BytesIO()  # np.savez needs a seekable file; the temporary file is written in one go
        np.savez_compressed(buf, **arrays)
        f.write(buf.getvalue())

    return atomic_write(path, write)


_BLOCK_BYTES = 64 << 20  # rows gathered per block: bounded extra memory whatever N is

def gather_rows(read_rows: Callable[[int, int], np.ndarray], n: int, indices, row_shape, dtype, row_bytes: int):
    """rows[indices] of an (n, *row_shape) array, read ``read_rows(lo, hi)`` block by block.

    indices sorted (or None = all); each block reads only from its first to its last chosen row.
    """
    idx = np.arange(n, dtype=np.int64) if indices is None else indices
    out = np.empty((len(idx),) + tuple(row_shape), dtype=dtype)
    block = max(1, _BLOCK_BYTES // max(row_bytes, 1))
    starts = np.searchsorted(idx, np.arange(0, n + block, block))
    for b in range(len(starts) - 1):
        s, e = starts[b], starts[b + 1]
        if s == e:
            continue
        lo, hi = int(idx[s]), int(idx[e - 1]) + 1
        rows = read_rows(lo, hi)
        out[s:e] = rows if hi - lo == e - s else rows[idx[s:e] - lo]  # a full span copies as a slice
    return out

class NpzMember:
    """One ``.npy`` member of an npz, read without loading what is not asked for.

    A stored (uncompressed, np.savez) member is read at its offset in the file,
    span by span; a deflated one (np.savez_compressed) is read as a forward stream.
    Object arrays are refused: nothing is ever unpickled.
    """

    def __init__(self, path: Path, name: str):
        self.path, self.name = path, name
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as e:
            raise ValueError(f"{path} is not a readable .npz file ({e})") from None
        try:
            self._info = self._zip.getinfo(f"{name}.npy")
        except KeyError:
            self._zip.close()
            raise ValueError(f"{path} has no array {name!r} (it holds {_npz_names(path)})") from None
        self._fp = self._zip.open(self._info)
        try:
            version = np.lib.format.read_magic(self._fp)
            if version == (1, 0):
                self.shape, fortran, self.dtype = np.lib.format.read_array_header_1_0(self._fp)
            elif version == (2, 0):
                self.shape, fortran, self.dtype = np.lib.format.read_array_header_2_0(self._fp)
            else:
                raise ValueError(f"npy format version {version}")
        except ValueError as e:
            self.close()
            raise ValueError(f"array {name!r} of {path} has an unreadable header ({e})") from None
        if not self.shape:
            self.close()
            raise ValueError(f"array {name!r} of {path} is a single value; expected an array of rows")
        if self.dtype.hasobject or fortran:
            self.close()
            what = "an object array (needs unpickling)" if self.dtype.hasobject else "stored in Fortran order"
            raise ValueError(f"array {name!r} of {path} is {what}; expected a plain C-order array")
        self._header = self._fp.tell()
        self._pos = 0  # rows already consumed from the stream

    def close(self) -> None:
        self._fp.close()
        self._zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def row_bytes(self) -> int:
        return math.prod(self.shape[1:]) * self.dtype.itemsize

    def _data_offset(self) -> int:
        # Local file header: 30 bytes, then the name and the extra field (their lengths at 26..30).
        with open(self.path, "rb") as f:
            f.seek(self._info.header_offset)
            head = f.read(30)
        name_len, extra_len = struct.unpack("<HH", head[26:30])
        return self._info.header_offset + 30 + name_len + extra_len + self._header

    def _stream_rows(self, lo: int, hi: int) -> np.ndarray:
        if lo < self._pos:
            raise AssertionError("rows of a compressed member are read in increasing order")
        while self._pos < lo:  # skip: decompress and drop, a bounded block at a time
            step = min(lo - self._pos, max(1, _BLOCK_BYTES // self.row_bytes))
            self._rows_from(self._fp.read(step * self.row_bytes), step)
            self._pos += step
        rows = self._rows_from(self._fp.read((hi - lo) * self.row_bytes), hi - lo)
        self._pos = hi
        return rows

    def _rows_from(self, buf: bytes, n_rows: int) -> np.ndarray:
        if len(buf) != n_rows * self.row_bytes:
            raise ValueError(f"array {self.name!r} of {self.path} is truncated")
        return np.frombuffer(buf, dtype=self.dtype).reshape((n_rows,) + self.shape[1:])

    def rows(self, indices) -> np.ndarray:
        """The whole array (indices None) or its rows at sorted ``indices``, as an in-memory array."""
        try:
            return self._rows(indices)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
            raise ValueError(f"array {self.name!r} of {self.path} is corrupt ({type(e).__name__}: {e})") from None

    def _rows(self, indices) -> np.ndarray:
        n = self.shape[0]
        if self._info.compress_type != zipfile.ZIP_STORED:
            return gather_rows(self._stream_rows, n, indices, self.shape[1:], self.dtype, self.row_bytes)
        # A stored member is read at its offset, one bounded span at a time.  (A memory map would
        # read the same bytes, but every page the kernel maps around a touched row counts in the
        # process's resident set: 3.4 GB peak RSS for a 391 MB subset of the twin, docs/benchmarks.md.)
        offset = self._data_offset()
        with open(self.path, "rb") as f:

            def read(lo: int, hi: int) -> np.ndarray:
                f.seek(offset + lo * self.row_bytes)
                return self._rows_from(f.read((hi - lo) * self.row_bytes), hi - lo)

            return gather_rows(read, n, indices, self.shape[1:], self.dtype, self.row_bytes)

def _npz_names(path: Path) -> str:
    with zipfile.ZipFile(path) as z:
        return ", ".join(n[:-4] for n in z.namelist() if n.endswith(".npy")) or "no arrays"
