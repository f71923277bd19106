"""The field's published data sets, read from the files users download: a registry (issue 22, item 1).

One table, :data:`BENCHMARKS`, names each set: its published file name, where
it is published, its factors (names and number of classes, in the file's
order) and its reader.  The three families:

* **dSprites** (Matthey et al. 2017), ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``:
  ``imgs`` (737,280, 64, 64) uint8 0/1, ``latents_classes`` (N, 6) int64,
  ``latents_values`` (N, 6) float64; factors color(1), shape(3), scale(6),
  orientation(40), posX(32), posY(32).  The file's ``metadata`` entry is a
  pickled dict and is never opened (object arrays are refused wherever they
  are asked for; nothing is unpickled): names and sizes are the constants below.  The offline
  twin (:mod:`welavae.data.sprites`, name ``sprites``) has the same layout and reader.
* **Shapes3D** (Burgess & Kim 2018), ``3dshapes.h5``: ``images`` (480,000, 64,
  64, 3) uint8, ``labels`` (N, 6) float64 factor values of floor_hue(10),
  wall_hue(10), object_hue(10), scale(8), shape(4), orientation(15); class
  index = rank of the value among the column's distinct values.  Needs h5py
  (``pip install 'wela-vae[benchmarks]'``).
* **MPI3D** toy / realistic / real (Gondal et al. 2019), ``mpi3d_*.npz``:
  ``images`` (1,036,800, 64, 64, 3) uint8 and no factor arrays; the factors
  follow from the index by the documented reshape
  ``images.reshape(6, 6, 2, 3, 3, 40, 40, 64, 64, 3)``: object_color(6),
  object_shape(6), object_size(2), camera_height(3), background_color(3),
  horizontal_axis(40), vertical_axis(40), i.e. ``np.unravel_index(i, sizes)``.

All three are full factor grids, so a reader checks ``N == prod(factor_sizes)``
with the sizes of the registry entry it is given.  (Tests pass an entry with
smaller sizes — ``dataclasses.replace(BENCHMARKS[name], factor_sizes=…)`` —
because a file of MPI3D's real size, 12.7 GB, cannot be written in a test.)

**Memory.**  These sets do not fit in memory as float32 (dSprites 12 GB, MPI3D
51 GB).  Images stay as they are stored — bool for the binary sprites, uint8
for colour — from the file to the batch; :func:`welavae.data.dataset.to_float` converts one batch
(bool → 0.0/1.0, uint8 k → k/255).  A subset (:func:`subset_indices`: seeded,
uniform, sorted) is gathered block by block, so the peak memory is the subset
plus one block: an npz member, stored or compressed (DeepMind's dSprites file),
is read as a stream to its end, keeping only the chosen rows, its CRC-32 checked
(:class:`welavae.data.npz.NpzMember`); an HDF5 dataset is sliced around the
chosen rows only, and data kept outside the file (an external link, external
storage, a virtual dataset) is refused before it is followed.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dataset import Dataset, require_file
from .npz import NpzMember, gather_rows
from .spec import WeakLabels, weak_labels_from_spec

__all__ = [
    "Benchmark",
    "BenchmarkData",
    "BENCHMARKS",
    "benchmark",
    "load_benchmark",
    "subset_indices",
    "DSPRITES_FACTORS",
    "DSPRITES_SIZES",
    "small_grid",
    "MissingPackage",
]


DSPRITES_FACTORS = ("color", "shape", "scale", "orientation", "posX", "posY")
DSPRITES_SIZES = (1, 3, 6, 40, 32, 32)


@dataclass(frozen=True)
class Benchmark:
    """One benchmark file: what it is called, where it is published, its factors and its reader.

    reader: (path, entry, indices (n,) sorted int64 or None) → (images, factors (n, F) int64,
    factor_values (n, F) float64).
    """

    name: str
    title: str
    file_name: str
    url: str
    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    image_shape: tuple[int, ...]
    reader: Callable
    #: The position pair a run without a weak-label spec is still scored on (coordinate MSE,
    #: heat maps), or None.
    position: tuple[str, str] | None = None

    @property
    def where(self) -> str:
        """Where to get the file, as one phrase."""
        if self.url:
            return f"published at {self.url}"
        return "rendered on this machine by welavae.data.sprites.write_sprites_npz(path)"

    @property
    def n(self) -> int:
        """Images in the full file: the factor grid's size."""
        return math.prod(self.factor_sizes)


@dataclass(frozen=True)
class BenchmarkData:
    """A benchmark (or a subset of it) in memory.

    images: (N, H, W) bool (binary sprites) or (N, H, W, C) uint8, as stored; see :func:`to_float`.
    factors: (N, F) int64 class indices 0 … n_f − 1, in ``factor_names`` order.
    factor_values: (N, F) float64 as the file stores them (MPI3D: the class indices).
    indices: (N,) int64 sorted rows of the file these are (all rows without a subset).
    """

    name: str
    path: str
    images: np.ndarray
    factors: np.ndarray
    factor_values: np.ndarray
    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    indices: np.ndarray
    subset: int | None
    seed: int

    def __len__(self) -> int:
        return len(self.images)

    def record(self) -> dict:
        """What a run records (config.json) to rebuild exactly this set: file, subset size and seed."""
        return {
            "dataset": self.name,
            "data_path": self.path,
            "subset": self.subset,
            "subset_seed": self.seed,
            "n_file": math.prod(self.factor_sizes),
        }

    def weak_labels(self, spec) -> WeakLabels:
        """Weak labels from a spec over this set's factors (ranges = the factor grid, 0 … n_f − 1)."""
        return weak_labels_from_spec(self.factors, spec, self.factor_names, factor_sizes=self.factor_sizes)

    def to_dataset(self, spec=None):
        """A :class:`welavae.data.Dataset` with these images (kept bool/uint8), the spec's weak labels and their
        coordinates."""
        if spec is None:
            return Dataset(images=self.images, labels=None, factors=self.factors)
        wl = self.weak_labels(spec)
        return Dataset(
            images=self.images,
            labels=wl.labels,
            label_dims=wl.dims,
            label_names=wl.names,
            label_classes=tuple(tuple(str(k) for k in range(p)) for p in wl.dims),
            factors=self.factors,
            label_coordinates=wl.coordinates,
        )




def subset_indices(n: int, subset: int | None, seed: int = 0) -> np.ndarray | None:
    """A uniform draw of ``subset`` of ``n`` rows without replacement, sorted; None = all rows.

    Drawn by ``numpy.random.default_rng(seed)``, so (n, subset, seed) names the subset.
    """
    if subset is None:
        return None
    if isinstance(subset, bool) or not isinstance(subset, (int, np.integer)) or not 1 <= subset <= n:
        raise ValueError(f"subset must be an integer in 1..{n} (the images in the file), got {subset!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"subset_seed (--subset-seed) must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=int(subset), replace=False)).astype(np.int64)







_DTYPE_KINDS = {
    "uint8": lambda d: d == np.uint8,
    "integer": lambda d: np.issubdtype(d, np.integer),
    "float": lambda d: np.issubdtype(d, np.floating),
}


def _check_array(path, name: str, shape, dtype, expected_shape, kind: str) -> None:
    """Refuse an array of the wrong shape or dtype, naming it.  None in expected_shape = any length."""
    ok_shape = len(shape) == len(expected_shape) and all(e is None or s == e for s, e in zip(shape, expected_shape))
    if not ok_shape or not _DTYPE_KINDS[kind](np.dtype(dtype)):
        want = "(" + ", ".join("N" if e is None else str(e) for e in expected_shape) + ")"
        got = f"{np.dtype(dtype)} {tuple(shape)}"
        raise ValueError(f"array {name!r} of {path} must be {kind} of shape {want}, got {got}")


def _check_grid_size(path, name: str, n: int, entry: Benchmark) -> None:
    if n != entry.n:
        sizes = " × ".join(str(s) for s in entry.factor_sizes)
        raise ValueError(
            f"array {name!r} of {path} has {n} rows; {entry.title} is the full factor grid {sizes} = {entry.n}"
        )


def _grid_classes(entry: Benchmark, indices) -> np.ndarray:
    idx = np.arange(entry.n) if indices is None else indices
    return np.stack(np.unravel_index(idx, entry.factor_sizes), axis=1).astype(np.int64)


# ------------------------------------------------------------------ readers ---


def _npz_array(path: Path, name: str, entry: Benchmark, row_shape, kind: str, indices=None) -> np.ndarray:
    """Member ``name`` checked (dtype kind, shape (N, *row_shape), N = the grid's) before it is read."""
    with NpzMember(path, name) as member:
        _check_array(path, name, member.shape, member.dtype, (None,) + tuple(row_shape), kind)
        _check_grid_size(path, name, member.shape[0], entry)
        return member.rows(indices)


def _read_dsprites(path: Path, entry: Benchmark, indices):
    """dSprites' npz (and the twin's): imgs 0/1 → bool, classes checked against the grid order."""
    # Only the three named members are opened; the pickled `metadata` never is.
    f = len(entry.factor_sizes)
    classes = _npz_array(path, "latents_classes", entry, (f,), "integer")
    values = _npz_array(path, "latents_values", entry, (f,), "float")
    # dSprites stores every combination once, posY varying fastest: row i has the classes unravel(i).
    wrong = (classes != _grid_classes(entry, None)).any(axis=1)
    if wrong.any():
        raise ValueError(
            f"array 'latents_classes' of {path} is not dSprites' factor grid in C order "
            f"(first differing row {int(np.flatnonzero(wrong)[0])})"
        )
    imgs = _npz_array(path, "imgs", entry, entry.image_shape, "uint8", indices)
    if imgs.size and imgs.max() > 1:
        raise ValueError(f"array 'imgs' of {path} must hold 0/1 pixels, found the value {int(imgs.max())}")
    sel = slice(None) if indices is None else indices
    return imgs.view(np.bool_), classes[sel].astype(np.int64), values[sel].astype(np.float64)


def _read_mpi3d(path: Path, entry: Benchmark, indices):
    """MPI3D's npz: images only; the factors are the index unravelled over the factor grid."""
    images = _npz_array(path, "images", entry, entry.image_shape, "uint8", indices)
    classes = _grid_classes(entry, indices)
    return images, classes, classes.astype(np.float64)


def _read_shapes3d(path: Path, entry: Benchmark, indices):
    """Shapes3D's HDF5: labels are factor values; class index = rank among the column's values."""
    try:
        import h5py
    except ImportError:
        raise MissingPackage(
            f"reading {entry.file_name} needs the optional package h5py: pip install 'wela-vae[benchmarks]'"
        ) from None
    try:
        h5 = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path} is not a readable HDF5 file ({e})") from None
    try:
        with h5:
            return _read_shapes3d_arrays(h5, h5py, path, entry, indices)
    # h5py: OSError for a chunk it cannot read or decompress, KeyError for an object it cannot open,
    # RuntimeError for a damaged structure.
    except (OSError, KeyError, RuntimeError) as e:
        raise ValueError(f"{path} is a corrupt HDF5 file ({type(e).__name__}: {e})") from None


class MissingPackage(ModuleNotFoundError, ValueError):
    """An optional package a reader needs is not installed.  A ModuleNotFoundError (what Python code
    catches for a missing package) and a ValueError (what the command line prints as one sentence
    with exit status 2: the input asks for what this installation cannot read)."""


def _h5_dataset(h5, h5py, path: Path, key: str):
    """The dataset ``key`` of an open file, its link checked before it is followed: an external link (the
    data in another file, wherever it points), external raw storage or a virtual dataset is refused."""
    link = h5.get(key, getlink=True)
    if isinstance(link, h5py.ExternalLink):
        raise ValueError(f"{path}: {key!r} is an HDF5 external link (to {link.filename}:{link.path}); "
                         "welavae reads only data stored in the file itself")
    if link is None or key not in h5 or not isinstance(h5[key], h5py.Dataset):
        raise ValueError(f"{path} has no array {key!r}; a Shapes3D file holds images and labels")
    d = h5[key]
    if d.external or d.is_virtual:
        kind = "keeps its data in external files" if d.external else "is a virtual dataset (mapped from other files)"
        raise ValueError(f"{path}: {key!r} {kind}; welavae reads only data stored in the file itself")
    return d


def _read_shapes3d_arrays(h5, h5py, path: Path, entry: Benchmark, indices):
    """The checked arrays of an open 3dshapes.h5: (images, classes, values) at ``indices``."""
    images, labels = (_h5_dataset(h5, h5py, path, key) for key in ("images", "labels"))
    f = len(entry.factor_sizes)
    _check_array(path, "labels", labels.shape, labels.dtype, (None, f), "float")
    _check_array(path, "images", images.shape, images.dtype, (None,) + entry.image_shape, "uint8")
    _check_grid_size(path, "images", images.shape[0], entry)
    _check_grid_size(path, "labels", labels.shape[0], entry)
    values = labels[()].astype(np.float64)  # 480,000 × 6 floats: small, and needed whole for the classes
    classes = np.empty(values.shape, dtype=np.int64)
    for j, (name, size) in enumerate(zip(entry.factor_names, entry.factor_sizes)):
        distinct, classes[:, j] = np.unique(values[:, j], return_inverse=True)
        if len(distinct) != size:
            raise ValueError(
                f"array 'labels' of {path}: column {j} ({name}) has {len(distinct)} distinct values, expected {size}"
            )
    row_bytes = math.prod(entry.image_shape)
    imgs = gather_rows(lambda lo, hi: images[lo:hi], images.shape[0], indices, entry.image_shape, np.uint8, row_bytes)
    sel = slice(None) if indices is None else indices
    return imgs, classes[sel], values[sel]


# ----------------------------------------------------------------- registry ---

_MPI3D_FACTORS = (
    "object_color",
    "object_shape",
    "object_size",
    "camera_height",
    "background_color",
    "horizontal_axis",
    "vertical_axis",
)
_MPI3D_SIZES = (6, 6, 2, 3, 3, 40, 40)
_MPI3D_URL = ("https://storage.googleapis.com/disentanglement_dataset/Final_Dataset/{} "
              "(see github.com/rr-learning/disentanglement_dataset)")


def _mpi3d(variant: str, title: str) -> Benchmark:
    return Benchmark(
        name=f"mpi3d_{variant}",
        title=title,
        file_name=f"mpi3d_{variant}.npz",
        url=_MPI3D_URL.format(f"mpi3d_{variant}.npz"),
        factor_names=_MPI3D_FACTORS,
        factor_sizes=_MPI3D_SIZES,
        image_shape=(64, 64, 3),
        reader=_read_mpi3d,
        position=("horizontal_axis", "vertical_axis"),
    )


_DSPRITES = Benchmark(
    name="dsprites",
    title="dSprites",
    file_name="dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
    url="https://github.com/deepmind/dsprites-dataset",
    factor_names=DSPRITES_FACTORS,
    factor_sizes=DSPRITES_SIZES,
    image_shape=(64, 64),
    reader=_read_dsprites,
    position=("posX", "posY"),
)

#: name → Benchmark.  Adding a data set is one entry here.
BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        _DSPRITES,
        dataclasses.replace(
            _DSPRITES,
            name="sprites",
            title="the dSprites twin",
            file_name="sprites.npz",
            url="",  # not published: rendered locally in dSprites' layout
        ),
        Benchmark(
            name="shapes3d",
            title="Shapes3D",
            file_name="3dshapes.h5",
            url="https://storage.googleapis.com/3d-shapes/3dshapes.h5 (see github.com/deepmind/3d-shapes)",
            factor_names=("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"),
            factor_sizes=(10, 10, 10, 8, 4, 15),
            image_shape=(64, 64, 3),
            reader=_read_shapes3d,
        ),
        _mpi3d("toy", "MPI3D-toy"),
        _mpi3d("realistic", "MPI3D-realistic"),
        _mpi3d("real", "MPI3D-real"),
    )
}


def benchmark(name: str) -> Benchmark:
    """The registry entry of ``name``; an unknown name lists the valid ones."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise ValueError(f"unknown data set {name!r}; valid: {', '.join(BENCHMARKS)}") from None


def load_benchmark(dataset: str | Benchmark, path, *, subset: int | None = None, seed: int = 0) -> BenchmarkData:
    """Read a benchmark file (or a seeded uniform subset of it) as :class:`BenchmarkData`.

    dataset: a name of :data:`BENCHMARKS` or a :class:`Benchmark` entry (tests pass smaller grids).
    path: the file, or a folder holding it under its published name.
    subset: number of images drawn uniformly without replacement by ``default_rng(seed)``;
    record :meth:`BenchmarkData.record` to rebuild the same set.
    """
    entry = dataset if isinstance(dataset, Benchmark) else benchmark(dataset)
    p = Path(path)
    if p.is_dir():
        p = p / entry.file_name
    require_file(p, f"{p} does not exist: {entry.title} is the file {entry.file_name}, {entry.where}")
    indices = subset_indices(entry.n, subset, seed)
    images, factors, values = entry.reader(p, entry, indices)
    return BenchmarkData(
        name=entry.name,
        path=str(p),
        images=images,
        factors=factors,
        factor_values=values,
        factor_names=entry.factor_names,
        factor_sizes=entry.factor_sizes,
        indices=np.arange(entry.n, dtype=np.int64) if indices is None else indices,
        subset=None if subset is None else int(subset),
        seed=int(seed),
    )


def small_grid(name: str, factor_sizes) -> Benchmark:
    """The entry of ``name`` with a smaller factor grid: for tests and tiny files in the same layout."""
    return dataclasses.replace(benchmark(name), factor_sizes=tuple(int(s) for s in factor_sizes))
