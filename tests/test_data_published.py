"""welavae.data.published: the benchmark readers on small files in exactly the published layouts, refusals.

Each file has the published array names, dtypes, image shapes and factor-grid order; only the
factor grid is smaller (the registry entry is swapped for one with smaller sizes, the documented hook).
"""
import math
import struct
import zipfile

import numpy as np
import pytest
from fixtures import TINY, bounded_allocation, cli_refuses, one_sentence
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from welavae.data.published import (
    BENCHMARKS,
    load_benchmark,
    small_grid,
    subset_indices,
)

DS_SIZES = (1, 3, 2, 4, 3, 5)  # color, shape, scale, orientation, posX, posY: 360 images
MPI_SIZES = (2, 3, 1, 1, 2, 2, 3)  # 72 images
S3D_SIZES = (2, 2, 3, 2, 2, 3)  # 144 images


def grid(sizes):
    return np.stack(np.unravel_index(np.arange(math.prod(sizes)), sizes), axis=1)


def dsprites_arrays(sizes=DS_SIZES):
    classes = grid(sizes).astype(np.int64)
    values = np.stack(
        [
            np.ones(len(classes)),
            classes[:, 1] + 1.0,  # shape stored as 1, 2, 3
            np.linspace(0.5, 1, sizes[2])[classes[:, 2]],
            np.linspace(0, 2 * np.pi, sizes[3])[classes[:, 3]],
            np.linspace(0, 1, sizes[4])[classes[:, 4]],
            np.linspace(0, 1, sizes[5])[classes[:, 5]],
        ],
        axis=1,
    )
    # Each image encodes its own index in its first pixels (0/1 bits) so rows can be traced.
    n = len(classes)
    imgs = np.zeros((n, 64, 64), np.uint8)
    bits = (np.arange(n)[:, None] >> np.arange(16)) & 1
    imgs[:, 0, :16] = bits
    return imgs, classes, values


def image_index(imgs):
    return (imgs[:, 0, :16].astype(np.int64) << np.arange(16)).sum(axis=1)


def write_dsprites(path, *, compressed=True, **override):
    imgs, classes, values = dsprites_arrays()
    arrays = {"imgs": imgs, "latents_classes": classes, "latents_values": values}
    # DeepMind's file carries a pickled dict; the reader must never need to open it.
    arrays["metadata"] = np.array({"latents_names": ("color",)}, dtype=object)
    arrays.update(override)
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path


@pytest.fixture
def ds_entry():
    return small_grid("dsprites", DS_SIZES)


@pytest.mark.parametrize("compressed", [True, False])
def test_dsprites_round_trip_and_subset(tmp_path, ds_entry, compressed):
    path = write_dsprites(tmp_path / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz", compressed=compressed)
    imgs, classes, values = dsprites_arrays()
    full = load_benchmark(ds_entry, path)
    assert full.images.dtype == np.bool_ and full.images.shape == (360, 64, 64)
    np.testing.assert_array_equal(full.images, imgs.astype(bool))
    np.testing.assert_array_equal(full.factors, classes)
    np.testing.assert_array_equal(full.factor_values, values)
    assert full.factor_names == ("color", "shape", "scale", "orientation", "posX", "posY")
    # A folder holding the file under its published name works too.
    assert len(load_benchmark(ds_entry, tmp_path)) == 360
    sub = load_benchmark(ds_entry, path, subset=50, seed=3)
    np.testing.assert_array_equal(sub.indices, subset_indices(360, 50, 3))
    np.testing.assert_array_equal(image_index(sub.images), sub.indices)  # the right rows, in order
    np.testing.assert_array_equal(sub.factors, classes[sub.indices])
    assert sub.record() == {"dataset": "dsprites", "data_path": str(path), "subset": 50, "subset_seed": 3, "n_file": 360}


def test_blocks_smaller_than_the_file_gather_the_same_rows(tmp_path, ds_entry, monkeypatch):
    # Force one image per block so the block loop, the stream skips and the memmap spans all run.
    import welavae.data.npz as npz

    monkeypatch.setattr(npz, "_BLOCK_BYTES", 64 * 64)
    for compressed in (True, False):
        path = write_dsprites(tmp_path / f"d{compressed}.npz", compressed=compressed)
        sub = load_benchmark(ds_entry, path, subset=37, seed=1)
        np.testing.assert_array_equal(image_index(sub.images), sub.indices)


def test_subset_is_seeded_uniform_and_sorted():
    a, b = subset_indices(1000, 100, 0), subset_indices(1000, 100, 0)
    np.testing.assert_array_equal(a, b)
    assert np.all(np.diff(a) > 0) and a.dtype == np.int64
    assert not np.array_equal(a, subset_indices(1000, 100, 1))
    assert subset_indices(10, None) is None
    for bad in (0, 11, 2.5, True):
        with pytest.raises(ValueError, match=r"subset must be an integer in 1\.\.10"):
            subset_indices(10, bad)


def test_missing_file_names_the_file_and_where_it_is_published(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load_benchmark("dsprites", tmp_path)
    msg = str(e.value)
    assert "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz" in msg and "github.com/deepmind/dsprites-dataset" in msg
    with pytest.raises(FileNotFoundError, match="mpi3d_real.npz, published at https://storage.googleapis.com"):
        load_benchmark("mpi3d_real", tmp_path / "nothing.npz")
    with pytest.raises(ValueError, match="unknown data set 'mnist'; valid: dsprites, sprites, shapes3d"):
        load_benchmark("mnist", tmp_path)


@pytest.mark.parametrize(
    "override, words",
    [
        ({"imgs": np.zeros((360, 32, 32), np.uint8)}, "array 'imgs' of .* must be uint8 of shape \\(N, 64, 64\\), got uint8 \\(360, 32, 32\\)"),
        ({"imgs": np.zeros((360, 64, 64), np.float32)}, "array 'imgs' .* must be uint8 .* got float32"),
        ({"imgs": np.full((360, 64, 64), 255, np.uint8)}, "array 'imgs' .* must hold 0/1 pixels, found the value 255"),
        ({"imgs": np.zeros((359, 64, 64), np.uint8)}, "array 'imgs' .* has 359 rows; dSprites is the full factor grid"),
        ({"latents_classes": np.zeros((360, 6), np.float64)}, "array 'latents_classes' .* must be integer"),
        ({"latents_values": np.zeros((360, 5))}, "array 'latents_values' .* must be float of shape \\(N, 6\\)"),
        ({"latents_classes": grid(DS_SIZES)[::-1].copy()}, "'latents_classes' .* is not dSprites' factor grid in C order"),
        ({"imgs": np.array([None] * 360, dtype=object)}, "array 'imgs' .* holds an object array \\(pickled data\\), which welavae never unpickles"),
    ],
)
def test_dsprites_refusals_name_the_array(tmp_path, ds_entry, override, words):
    path = write_dsprites(tmp_path / "d.npz", **override)
    with pytest.raises(ValueError, match=words):
        load_benchmark(ds_entry, path)


def test_not_an_npz_and_missing_array(tmp_path, ds_entry):
    (tmp_path / "d.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="is not a readable .npz file"):
        load_benchmark(ds_entry, tmp_path / "d.npz")
    imgs, classes, values = dsprites_arrays()
    np.savez(tmp_path / "e.npz", images=imgs, latents_classes=classes, latents_values=values)
    with pytest.raises(ValueError, match="has no array 'imgs'"):
        load_benchmark(ds_entry, tmp_path / "e.npz")


def mpi3d_images(sizes=MPI_SIZES):
    n = math.prod(sizes)
    imgs = np.zeros((n, 64, 64, 3), np.uint8)
    imgs[:, 0, 0, 0] = np.arange(n) % 256
    imgs[:, 0, 0, 1] = np.arange(n) // 256
    return imgs


def test_mpi3d_factors_by_the_documented_reshape(tmp_path):
    entry = small_grid("mpi3d_toy", MPI_SIZES)
    imgs = mpi3d_images()
    np.savez(tmp_path / "mpi3d_toy.npz", images=imgs)
    data = load_benchmark(entry, tmp_path)
    assert data.images.dtype == np.uint8 and data.images.shape == (72, 64, 64, 3)
    # images.reshape(*sizes, 64, 64, 3)[c] is the image whose factors are c (the dataset README's rule).
    cube = imgs.reshape(MPI_SIZES + (64, 64, 3))
    for i in (0, 5, 40, 71):
        np.testing.assert_array_equal(cube[tuple(data.factors[i])], data.images[i])
    assert data.factors[1].tolist() == [0, 0, 0, 0, 0, 0, 1] and data.factors[3].tolist() == [0, 0, 0, 0, 0, 1, 0]
    sub = load_benchmark(entry, tmp_path, subset=10, seed=0)
    np.testing.assert_array_equal(sub.images, imgs[sub.indices])
    np.testing.assert_array_equal(sub.factors, grid(MPI_SIZES)[sub.indices])


def test_mpi3d_refusals(tmp_path):
    entry = small_grid("mpi3d_real", MPI_SIZES)
    np.savez(tmp_path / "a.npz", images=mpi3d_images()[:, :, :, :1])
    with pytest.raises(ValueError, match=r"array 'images' .* must be uint8 of shape \(N, 64, 64, 3\)"):
        load_benchmark(entry, tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", images=mpi3d_images()[:70])
    with pytest.raises(ValueError, match="array 'images' .* has 70 rows; MPI3D-real is the full factor grid"):
        load_benchmark(entry, tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", imgs=mpi3d_images())
    with pytest.raises(ValueError, match="has no array 'images' \\(it holds imgs\\)"):
        load_benchmark(entry, tmp_path / "c.npz")


def test_registry_sizes_are_the_published_ones():
    assert BENCHMARKS["dsprites"].n == 737_280
    assert BENCHMARKS["shapes3d"].n == 480_000
    assert BENCHMARKS["mpi3d_toy"].n == BENCHMARKS["mpi3d_real"].n == 1_036_800
    assert {b.file_name for b in BENCHMARKS.values()} >= {
        "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
        "3dshapes.h5",
        "mpi3d_toy.npz",
        "mpi3d_realistic.npz",
        "mpi3d_real.npz",
    }


def write_shapes3d(path, *, labels=None, images=None):
    h5py = pytest.importorskip("h5py")
    classes = grid(S3D_SIZES)
    # Factor values as the file stores them: e.g. hues in [0, 1), scales in [0.75, 1.25], angles in [-30, 30].
    value_sets = [np.linspace(0, 0.9, 2), np.linspace(0, 0.9, 2), np.linspace(0, 0.9, 3),
                  np.linspace(0.75, 1.25, 2), np.arange(2.0), np.linspace(-30, 30, 3)]
    values = np.stack([value_sets[j][classes[:, j]] for j in range(6)], axis=1)
    n = len(classes)
    if images is None:
        images = np.zeros((n, 64, 64, 3), np.uint8)
        images[:, 0, 0, 0] = np.arange(n)
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images, chunks=(4, 64, 64, 3), compression="gzip")
        f.create_dataset("labels", data=values if labels is None else labels)
    return classes, values, images


def test_shapes3d_round_trip_and_subset(tmp_path):
    entry = small_grid("shapes3d", S3D_SIZES)
    classes, values, images = write_shapes3d(tmp_path / "3dshapes.h5")
    data = load_benchmark(entry, tmp_path)
    np.testing.assert_array_equal(data.factors, classes)
    np.testing.assert_array_equal(data.factor_values, values)
    np.testing.assert_array_equal(data.images, images)
    sub = load_benchmark(entry, tmp_path / "3dshapes.h5", subset=20, seed=5)
    np.testing.assert_array_equal(sub.images[:, 0, 0, 0], sub.indices)
    np.testing.assert_array_equal(sub.factors, classes[sub.indices])


def test_shapes3d_refusals(tmp_path):
    entry = small_grid("shapes3d", S3D_SIZES)
    _, values, _ = write_shapes3d(tmp_path / "a.h5")
    lab = values.copy()
    lab[:, 3] = 1.0  # one scale only
    write_shapes3d(tmp_path / "b.h5", labels=lab)
    with pytest.raises(ValueError, match=r"column 3 \(scale\) has 1 distinct values, expected 2"):
        load_benchmark(entry, tmp_path / "b.h5")
    write_shapes3d(tmp_path / "c.h5", images=np.zeros((144, 64, 64, 3), np.float32))
    with pytest.raises(ValueError, match="array 'images' .* must be uint8"):
        load_benchmark(entry, tmp_path / "c.h5")
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "e.h5", "w") as f:
        f.create_dataset("images", data=np.zeros((144, 64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="has no array 'labels'; a Shapes3D file holds images and labels"):
        load_benchmark(entry, tmp_path / "e.h5")
    (tmp_path / "d.h5").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="is not a readable HDF5 file"):
        load_benchmark(entry, tmp_path / "d.h5")


def test_weak_labels_and_dataset_keep_uint8(tmp_path, ds_entry):
    path = write_dsprites(tmp_path / "d.npz")
    data = load_benchmark(ds_entry, path, subset=40, seed=0)
    wl = data.weak_labels("bins(posX):3, angle(posX,posY):2")
    # posX has 3 classes 0..2 over [0, 2], p = 3: class k → bin k.
    np.testing.assert_array_equal(wl.labels[:, 0], data.factors[:, 4])
    ds = data.to_dataset("bins(posX):3")
    assert ds.images is data.images and ds.images.dtype == np.bool_  # no float copy of the set
    assert ds.label_dims == (3,) and ds.label_names == ("bins(posX)",)


def test_missing_twin_says_how_to_render_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"the dSprites twin is the file sprites.npz, rendered on this machine by welavae.data.sprites.write_sprites_npz"):
        load_benchmark("sprites", tmp_path)


def test_corrupt_compressed_member_is_refused(tmp_path, ds_entry):
    path = write_dsprites(tmp_path / "d.npz")
    raw = bytearray(path.read_bytes())
    with __import__("zipfile").ZipFile(path) as z:
        info = z.getinfo("imgs.npy")
    # Flip bytes in the middle of the deflated image data (past the local header and npy header).
    mid = info.header_offset + 30 + len(info.filename) + 200
    raw[mid : mid + 64] = bytes(64)
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="array 'imgs' of .* is corrupt"):
        load_benchmark(ds_entry, path)


def test_shapes3d_without_h5py_says_how_to_install_it(tmp_path, monkeypatch):
    (tmp_path / "3dshapes.h5").write_bytes(b"")
    monkeypatch.setitem(__import__("sys").modules, "h5py", None)  # import h5py now raises ImportError
    with pytest.raises(ModuleNotFoundError, match=r"3dshapes.h5 needs the optional package h5py: pip install 'wela-vae\[benchmarks\]'"):
        load_benchmark("shapes3d", tmp_path)


# ------------------------------------------------------------------ refusals at the edges (issue 31)

def test_without_h5py_the_refusal_is_a_sentence_the_command_line_prints(tmp_path, monkeypatch):
    (tmp_path / "3dshapes.h5").write_bytes(b"")
    monkeypatch.setitem(__import__("sys").modules, "h5py", None)
    with pytest.raises(ValueError) as e:  # a ValueError as well as a ModuleNotFoundError: exit 2, one line
        load_benchmark("shapes3d", tmp_path)
    assert isinstance(e.value, ModuleNotFoundError) and "\n" not in str(e.value)


@pytest.mark.parametrize("how", ["external link", "external storage", "virtual"])
def test_shapes3d_data_kept_outside_the_file_is_refused_before_it_is_followed(tmp_path, how):
    h5py = pytest.importorskip("h5py")
    entry = small_grid("shapes3d", S3D_SIZES)
    _, values, images = write_shapes3d(tmp_path / "real.h5")
    path = tmp_path / "3dshapes.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("labels", data=values)
        if how == "external link":  # to a file that is not there: h5py's KeyError once followed
            f["images"] = h5py.ExternalLink(str(tmp_path / "elsewhere.h5"), "/images")
        elif how == "external storage":
            raw = tmp_path / "raw.bin"
            raw.write_bytes(images.tobytes())
            f.create_dataset("images", shape=images.shape, dtype=np.uint8, external=[(str(raw), 0, images.nbytes)])
        else:
            layout = h5py.VirtualLayout(shape=images.shape, dtype=np.uint8)
            layout[:] = h5py.VirtualSource(str(tmp_path / "real.h5"), "images", shape=images.shape)
            f.create_virtual_dataset("images", layout)
    with pytest.raises(ValueError) as e:
        load_benchmark(entry, path)
    kind = {"external link": f"is an HDF5 external link (to {tmp_path / 'elsewhere.h5'}:/images)",
            "external storage": "keeps its data in external files",
            "virtual": "is a virtual dataset (mapped from other files)"}[how]
    assert one_sentence(e.value) == f"{path}: 'images' {kind}; welavae reads only data stored in the file itself"


@pytest.mark.parametrize("subset", [None, 5])
def test_a_corrupt_stored_member_of_a_benchmark_is_refused(tmp_path, ds_entry, subset):
    path = write_dsprites(tmp_path / "d.npz", compressed=False)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("imgs.npy")
    # The image data ends at the member's end: flip a pixel of the last image (not in a 5-image subset).
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26 : info.header_offset + 30])
    raw[info.header_offset + 30 + name_len + extra_len + info.file_size - 1] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError) as e:
        load_benchmark(ds_entry, path, subset=subset, seed=0)
    assert one_sentence(e.value).startswith(f"array 'imgs' of {path} is corrupt: its bytes do not match the CRC-32")


def test_a_negative_subset_seed_is_refused_naming_the_flag(tmp_path, ds_entry, capsys):
    with pytest.raises(ValueError) as e:
        subset_indices(10, 5, seed=-1)
    assert one_sentence(e.value) == "subset_seed (--subset-seed) must be a non-negative integer, got -1"
    path = write_dsprites(tmp_path / "d.npz")
    line = cli_refuses(capsys, "train", "--model", "tcvae", "--dataset", "dsprites", "--data-path", path, "--grid",
                       ",".join(map(str, DS_SIZES)), "--subset", "5", "--subset-seed", "-1", *TINY,
                       "--out", tmp_path / "run", out=tmp_path / "run")
    assert "--subset-seed" in line and "expected an integer >= 0, got -1" in line


# A Shapes3D file of hostile shapes, dtypes and values: arrays within the bound, or one sentence.
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(n=st.sampled_from([0, 1, 144, 145]), image_shape=st.sampled_from([(64, 64, 3), (64, 64), (8, 8, 3)]),
       image_dtype=st.sampled_from([np.uint8, np.float32, np.int64]),
       labels=st.sampled_from(["grid", "one value", "nan", "strings", "wide", "missing", "external link"]),
       rows=st.sampled_from([None, 7]))
def test_any_shapes3d_file_gives_arrays_or_one_sentence(tmp_path_factory, n, image_shape, image_dtype, labels, rows):
    h5py = pytest.importorskip("h5py")
    entry = small_grid("shapes3d", S3D_SIZES)
    path = tmp_path_factory.getbasetemp() / "hostile.h5"
    classes = grid(S3D_SIZES)[: n or 1]
    values = {"grid": classes * 0.5, "one value": np.zeros((len(classes), 6)), "wide": np.zeros((len(classes), 9)),
              "nan": np.full((len(classes), 6), np.nan), "strings": np.array([["a"] * 6] * len(classes), dtype="S1")}
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=np.zeros((n,) + image_shape, image_dtype))
        if labels == "external link":
            f["labels"] = h5py.ExternalLink(str(path.parent / "nowhere.h5"), "/labels")
        elif labels != "missing":
            f.create_dataset("labels", data=values[labels])
    with bounded_allocation(10**7):
        try:
            data = load_benchmark(entry, path, subset=rows)
        except ValueError as e:
            one_sentence(e)
            return
    assert data.images.shape == ((rows or 144),) + image_shape and data.factors.max(axis=0).tolist() == [1, 1, 2, 1, 1, 2]
