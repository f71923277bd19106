"""welavae.data.load: one function from a config to a Dataset (Blobs, npz, benchmarks), checked against the model."""
import numpy as np
import pytest

from welavae.config import DataConfig, make_run_config
from welavae.data import load, make_blobs, weak_labels
from welavae.data.dataset import to_float
from welavae.data.load import resolve_paths


def test_blobs_get_the_weak_labels_of_the_models_p(tmp_path):
    data = DataConfig(variants=1)
    wela = load(make_run_config("wela", label_dim=3, data=data), data_dir=tmp_path)
    b = make_blobs(1)  # the cache holds exactly the generated set
    # kept as the cache's 8-bit pixels, no float32 copy: 1 byte per pixel, and k/255 is Blobs' float image
    assert wela.images.dtype == np.uint8 and wela.images.nbytes == 64 * 64 * 64 * 64
    assert to_float(wela.images).tobytes() == b.images.tobytes()
    np.testing.assert_array_equal(wela.labels, weak_labels(b.factors, 3))
    assert wela.label_dims == (3, 3) and wela.label_names == ("angle", "distance")
    assert load(make_run_config("tcvae", data=data), data_dir=tmp_path).labels is None
    assert load(data, data_dir=tmp_path).labels is None  # no model: no weak labels


def test_npz_is_checked_against_the_model_before_anything_is_written(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, images=np.zeros((4, 8, 8), np.float32))  # no labels
    cfg = make_run_config("wela", label_dims=(2,), image_shape=(8, 8), data=DataConfig(source="npz", path=str(path)))
    with pytest.raises(ValueError, match="has no labels but model"):
        load(cfg)
    cfg = make_run_config("tcvae", image_shape=(6, 6), data=DataConfig(source="npz", path=str(path)))
    with pytest.raises(ValueError, match="images are 8x8x1, the model expects 6x6x1"):
        load(cfg)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz"]


# ------------------------------------------------------------- benchmarks ---

SPRITE_KEEP = {"shape": [0, 1], "scale": [5], "orientation": [0], "posX": [0, 10, 20, 31], "posY": [0, 31]}
SPRITE_GRID = (1, 2, 1, 1, 4, 2)  # the sizes of that reduced grid: 16 images


def _sprites(tmp_path):
    from welavae.data.sprites import write_sprites_npz

    return str(write_sprites_npz(tmp_path / "sprites.npz", keep=SPRITE_KEEP))


def test_a_benchmark_is_read_with_its_spec_labels_and_coordinates(tmp_path):
    path = _sprites(tmp_path)
    d = DataConfig(source="benchmark", dataset="sprites", data_path=path, grid=SPRITE_GRID,
                   weak_labels="bins(posX):2, bins(shape):2")
    ds = load(d)
    assert ds.images.dtype == np.bool_ and ds.images.shape == (16, 64, 64)  # kept as stored
    # posX classes 0..3 in equal-width halves of [0, 3]: {0, 1} -> 0, {2, 3} -> 1; shape 0/1 is its own bin
    np.testing.assert_array_equal(ds.labels, np.stack([ds.factors[:, 4] >= 2, ds.factors[:, 1]], axis=1))
    np.testing.assert_array_equal(ds.label_coordinates, ds.factors[:, [4, 1]].astype(float))
    assert ds.label_dims == (2, 2) and ds.label_names == ("bins(posX)", "bins(shape)")
    wela = load(make_run_config("wela", label_dims=(2, 2), image_shape=(64, 64), data=d))
    np.testing.assert_array_equal(wela.labels, ds.labels)
    sub = load(DataConfig(source="benchmark", dataset="sprites", data_path=path, grid=SPRITE_GRID, subset=5,
                          subset_seed=3))
    assert sub.labels is None and len(sub.images) == 5
    rows = np.sort(np.random.default_rng(3).choice(16, 5, replace=False))  # the seeded uniform draw
    np.testing.assert_array_equal(sub.images, ds.images[rows])


def test_a_benchmark_is_refused_in_one_sentence(tmp_path):
    path = _sprites(tmp_path)
    with pytest.raises(ValueError, match="needs a dataset name"):
        DataConfig(source="benchmark", data_path=str(path))
    # No data_path: the published name in the data directory.
    assert resolve_paths(DataConfig(source="benchmark", dataset="sprites"), data_dir=tmp_path).data_path == \
        str((tmp_path / "sprites.npz").resolve())
    with pytest.raises(ValueError, match="go with source 'benchmark'"):
        DataConfig(subset=10)
    with pytest.raises(ValueError, match="the dSprites twin is the full factor grid"):
        load(DataConfig(source="benchmark", dataset="sprites", data_path=path))  # a reduced file, no grid
    with pytest.raises(FileNotFoundError, match="dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"):
        load(DataConfig(source="benchmark", dataset="dsprites", data_path=str(tmp_path)))
    d = DataConfig(source="benchmark", dataset="sprites", data_path=path, grid=SPRITE_GRID, weak_labels="bins(posX):2")
    with pytest.raises(ValueError, match=r"have \(2,\) classes, the model expects \(3,\)"):
        load(make_run_config("wela", label_dims=(3,), image_shape=(64, 64), data=d))
