"""The ``.npz`` format: a user's data set (read and written), and members read without loading the rest.

A data set ``.npz`` holds ``images`` (N, H, W) or (N, H, W, C) in [0, 1] and
optionally ``labels`` (N, m) (−1 = missing), ``label_names`` (m,) and
``factors`` (N, F): :func:`load_npz` reads it, :func:`save_npz` writes it
(a run trained by :func:`welavae.fit` keeps its arrays this way).

:class:`NpzMember` reads one member of an npz (a published data set's,
:mod:`welavae.data.published`, and each member :func:`load_npz` reads) as a
stream, row block by row block, keeping only the rows asked for; its header is
checked against the member's recorded size before anything of that size is
allocated, and its CRC-32 is checked.  Nothing is ever unpickled: object arrays
are refused wherever they are asked for.
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
from .dataset import Dataset, check_images, check_label_names, check_labels, infer_label_dims, require_file, to_float

__all__ = ["load_npz", "save_npz", "NpzMember", "gather_rows"]

#: The members a data set npz may hold; others are never read.
NPZ_MEMBERS = ("images", "labels", "label_names", "factors")


def load_npz(path, *, label_dims=None) -> Dataset:
    """``images`` (N, H, W) or (N, H, W, C) and optional ``labels`` (N, m) (−1 = missing), ``factors``, ``label_names``.

    ``label_dims`` defaults to 1 + the largest class index of each column.  Only the members named
    in :data:`NPZ_MEMBERS` are read, each by :class:`NpzMember` (its size checked before it is
    allocated, its CRC-32 checked, an object array refused: nothing is unpickled).
    """
    path = require_file(path, f"data file {path} does not exist")
    try:
        with zipfile.ZipFile(path) as z:
            present, held = [k for k in NPZ_MEMBERS if f"{k}.npy" in z.namelist()], _npz_names(z)
    except _CORRUPT as e:
        raise ValueError(f"{path} is not a readable .npz file ({type(e).__name__}: {e})") from None
    arrays = {}
    for k in present:
        with NpzMember(path, k) as member:
            arrays[k] = member.rows()
    if "images" not in arrays:
        raise ValueError(f"{path} has no 'images' array (it holds {held})")
    images = check_images(arrays["images"], name=f"{path}: images")
    if images.ndim not in (3, 4):
        raise ValueError(f"{path}: images must have shape (N, H, W) or (N, H, W, C), got {images.shape}")
    labels, dims, names = arrays.get("labels"), (), ()
    if labels is not None:
        dims = tuple(label_dims) if label_dims is not None else infer_label_dims(labels, name=f"{path}: labels")
        labels = check_labels(labels, len(images), dims, name=f"{path}: labels")
        names = check_label_names(arrays["label_names"], len(dims), name=f"{path}: label_names") \
            if "label_names" in arrays else tuple(f"label{j}" for j in range(len(dims)))
    factors = arrays.get("factors")
    if factors is not None:
        if factors.dtype.kind not in "biuf":
            raise ValueError(f"{path}: factors must be numbers, got dtype {factors.dtype}")
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
    block = max(1, _BLOCK_BYTES // max(row_bytes, 1))
    if indices is None:
        out = np.empty((n,) + tuple(row_shape), dtype=dtype)
        for lo in range(0, n, block):
            out[lo : lo + block] = read_rows(lo, min(n, lo + block))
        return out
    idx = indices
    out = np.empty((len(idx),) + tuple(row_shape), dtype=dtype)
    starts = np.searchsorted(idx, np.arange(0, n + block, block))
    for b in range(len(starts) - 1):
        s, e = starts[b], starts[b + 1]
        if s == e:
            continue
        lo, hi = int(idx[s]), int(idx[e - 1]) + 1
        rows = read_rows(lo, hi)
        out[s:e] = rows if hi - lo == e - s else rows[idx[s:e] - lo]  # a full span copies as a slice
    return out

#: Deflate's largest expansion (RFC 1951: a 258-byte match costs at least 2 bits): a deflated member
#: (np.savez_compressed) whose entry claims more than this per compressed byte lies, and is refused before
#: its size is allocated.  (bzip2 and lzma members, which numpy never writes, are taken at their word.)
_DEFLATE_RATIO = 1032
#: What zipfile, zlib and numpy's header reader raise on a damaged file (OSError: a read that fails).
_CORRUPT = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, struct.error, OverflowError)


class NpzMember:
    """One ``.npy`` member of an npz, read without keeping what is not asked for.

    The member is read once, as a forward stream (stored or deflated alike), one bounded block at a
    time: the chosen rows are kept, the others dropped, and the stream is read to its end so that
    zipfile checks the member's CRC-32 — a damaged copy is refused, not trained on.  Before anything
    of the member's size is allocated its header is checked against the size the zip directory
    records (and that size against the file's): a header or directory that lies is refused, so
    the memory spent is bounded by the file.  Object arrays are refused: nothing is ever unpickled.
    """

    def __init__(self, path: Path, name: str):
        self.path, self.name = path, name
        try:
            self._zip = zipfile.ZipFile(path)
        except _CORRUPT as e:
            raise ValueError(f"{path} is not a readable .npz file ({type(e).__name__}: {e})") from None
        try:
            self._open()
        except BaseException:
            self._zip.close()
            raise

    def _open(self) -> None:
        path, name = self.path, self.name
        try:
            self._info = self._zip.getinfo(f"{name}.npy")
        except KeyError:
            raise ValueError(f"{path} has no array {name!r} (it holds {_npz_names(self._zip)})") from None
        what = f"array {name!r} of {path}"
        info = self._info
        size = Path(path).stat().st_size
        if info.header_offset + info.compress_size > size:
            raise ValueError(f"{what} is corrupt (its zip entry records {info.compress_size} bytes at offset "
                             f"{info.header_offset} of a {size}-byte file)")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise ValueError(f"{what} is corrupt (stored, yet its zip entry records {info.compress_size} bytes "
                             f"holding {info.file_size})")
        deflated = info.compress_type == zipfile.ZIP_DEFLATED
        if deflated and info.file_size > _DEFLATE_RATIO * info.compress_size + (1 << 16):
            raise ValueError(f"{what} is corrupt (its zip entry claims {info.file_size} bytes from "
                             f"{info.compress_size} compressed ones, more than any compression yields)")
        try:
            self._fp = self._zip.open(info)
        except NotImplementedError:  # zipfile: "That compression method is not supported" (a RuntimeError too)
            raise ValueError(f"{what} is compressed by a method Python's zipfile cannot read (method "
                             f"{info.compress_type}); write it with np.savez or np.savez_compressed") from None
        except RuntimeError:  # zipfile: "File ... is encrypted, password required for extraction"
            raise ValueError(f"{what} is encrypted; welavae reads no password-protected data") from None
        except _CORRUPT as e:
            raise ValueError(f"{what} is corrupt ({type(e).__name__}: {e})") from None
        try:
            version = np.lib.format.read_magic(self._fp)
            if version == (1, 0):
                self.shape, self._fortran, self.dtype = np.lib.format.read_array_header_1_0(self._fp)
            elif version == (2, 0):
                self.shape, self._fortran, self.dtype = np.lib.format.read_array_header_2_0(self._fp)
            else:
                raise ValueError(f"npy format version {version}")
        except _CORRUPT as e:
            self._fp.close()
            raise ValueError(f"{what} has an unreadable header ({type(e).__name__}: {e})") from None
        self._pos = 0  # rows already consumed from the stream
        if self.dtype.hasobject:
            self._fp.close()
            raise ValueError(f"{what} holds an object array (pickled data), which welavae never unpickles")
        if not self.shape:
            self._fp.close()
            raise ValueError(f"{what} is a single value; expected an array of rows")
        data = info.file_size - self._fp.tell()
        if min(self.shape) < 0 or math.prod(self.shape) * self.dtype.itemsize != data:
            self._fp.close()
            raise ValueError(f"{what} is corrupt (its header describes {self.dtype} {tuple(self.shape)}, "
                             f"but it holds {data} bytes of data)")

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

    def _stream_rows(self, lo: int, hi: int) -> np.ndarray:
        if lo < self._pos:
            raise AssertionError("rows of a member are read in increasing order")
        while self._pos < lo:  # skip: read and drop, a bounded block at a time
            step = min(lo - self._pos, max(1, _BLOCK_BYTES // max(self.row_bytes, 1)))
            self._rows_from(self._fp.read(step * self.row_bytes), step)
            self._pos += step
        rows = self._rows_from(self._fp.read((hi - lo) * self.row_bytes), hi - lo)
        self._pos = hi
        return rows

    def _rows_from(self, buf: bytes, n_rows: int) -> np.ndarray:
        if len(buf) != n_rows * self.row_bytes:
            raise ValueError(f"array {self.name!r} of {self.path} is truncated")
        return np.frombuffer(buf, dtype=self.dtype).reshape((n_rows,) + tuple(self.shape[1:]))

    def rows(self, indices=None) -> np.ndarray:
        """The whole array (indices None) or its rows at sorted ``indices``, as an in-memory array.

        A member is read once.  Its CRC-32 is checked (the rest of the stream is read for it): a
        mismatch is refused naming the file and the member.  An array stored in Fortran order is
        read whole only.
        """
        try:
            out = self._rows(indices)
            while self._fp.read(_BLOCK_BYTES):  # to the end: zipfile compares the CRC-32 there
                pass
        except zipfile.BadZipFile as e:
            if "CRC" not in str(e):
                raise ValueError(f"array {self.name!r} of {self.path} is corrupt ({e})") from None
            raise ValueError(f"array {self.name!r} of {self.path} is corrupt: its bytes do not match the CRC-32 "
                             "its zip entry records (a damaged copy: download or write the file again)") from None
        except (zlib.error, EOFError, OSError, struct.error) as e:
            raise ValueError(f"array {self.name!r} of {self.path} is corrupt ({type(e).__name__}: {e})") from None
        return out

    def _rows(self, indices) -> np.ndarray:
        n = self.shape[0]
        if self._fortran:  # column-major bytes: only the whole array is a contiguous read
            if indices is not None:
                raise ValueError(f"array {self.name!r} of {self.path} is stored in Fortran order; "
                                 "a subset of rows needs C order (save it with np.ascontiguousarray)")
            flat = gather_rows(self._stream_rows_flat, math.prod(self.shape), None, (), self.dtype,
                               self.dtype.itemsize)
            return flat.reshape(self.shape, order="F")
        return gather_rows(self._stream_rows, n, indices, self.shape[1:], self.dtype, self.row_bytes)

    def _stream_rows_flat(self, lo: int, hi: int) -> np.ndarray:
        buf = self._fp.read((hi - lo) * self.dtype.itemsize)
        if len(buf) != (hi - lo) * self.dtype.itemsize:
            raise ValueError(f"array {self.name!r} of {self.path} is truncated")
        return np.frombuffer(buf, dtype=self.dtype)

def _npz_names(z: zipfile.ZipFile) -> str:
    return ", ".join(n[:-4] for n in z.namelist() if n.endswith(".npy")) or "no arrays"
