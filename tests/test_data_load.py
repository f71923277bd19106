"""welavae.data.load: one function from a config to a Dataset (Blobs, npz, benchmarks), checked against the model."""
import json

import numpy as np
import pytest
from fixtures import TINY, cli_refuses

from welavae.cli import main
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


# ------------------------------------------------------------------ Blobs with a weak-label spec (issue 31)

ROTATED = "sum(c1,c2):3, diff(c1,c2):3"


def test_blobs_take_a_weak_label_spec_over_their_centre(tmp_path):
    ds = load(DataConfig(variants=1, size=16, weak_labels=ROTATED), data_dir=tmp_path)
    f = ds.factors.astype(int)
    at = {(a, b): i for i, (a, b) in enumerate(f)}
    # sum = c1 + c2 over [0, 32], diff = c1 − c2 over [−16, 16]: bins of 32/3, edges in the lower bin.
    # (0,0): sum 0 → 0, diff +16 → 1 · (5,5): 10 → 0, 16 → 1 · (6,5): 11 → 1, 17 → 1 · (15,15): 30 → 2
    # (0,15): 15 → 1, diff 1 → 0 · (15,0): 15 → 1, 31 → 2
    expected = {(0, 0): [0, 1], (5, 5): [0, 1], (6, 5): [1, 1], (15, 15): [2, 1], (0, 15): [1, 0], (15, 0): [1, 2]}
    for point, labels in expected.items():
        assert ds.labels[at[point]].tolist() == labels, point
    assert ds.label_dims == (3, 3) and ds.label_names == ("sum(c1,c2)", "diff(c1,c2)")
    np.testing.assert_array_equal(ds.label_coordinates[:, 0], f.sum(axis=1))
    # The paper's labels by spec are the paper's labels by p.
    polar = load(DataConfig(variants=1, size=16, weak_labels="angle(c1,c2):3, distance(c1,c2):3"), data_dir=tmp_path)
    np.testing.assert_array_equal(polar.labels, weak_labels(ds.factors, 3, size=16))


def test_a_blobs_config_without_a_spec_keeps_its_hash_and_a_spec_is_refused_elsewhere(tmp_path):
    # The 0.2.0 hash of wela_p2 on the paper's Blobs (tests/test_config.py pins it too).
    assert make_run_config("wela", label_dim=2).hash() == make_run_config(
        "wela", label_dim=2, data=DataConfig(weak_labels=None)).hash()
    with pytest.raises(ValueError, match="data.weak_labels: a weak-label spec goes with source 'benchmark' or 'blobs'"):
        DataConfig(source="npz", path="d.npz", weak_labels=ROTATED)


def test_cli_blobs_with_weak_labels_trains_and_evaluate_reports_the_rotated_system(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--model", "wela", "--weak-labels", ROTATED, "--variants", "1", "--data-dir", tmp_path / "cache"]
    assert main(["train", *map(str, args), *TINY, "--batch-size", "256", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["weak_labels"] == ROTATED and config["model"]["label_dims"] == [3, 3]
    assert config["model"]["label_names"] == ["sum(c1,c2)", "diff(c1,c2)"]
    assert main(["evaluate", str(out), "--standard", "none"]) == 0
    assert "rotated MSE" in capsys.readouterr().out
    seed = json.loads((out / "metrics.json").read_text())["seeds"][0]
    assert {"cartesian", "polar", "rotated"} <= set(seed)
    assert 0 < seed["rotated"]["mse"] < 64**2


@pytest.mark.parametrize("extra, words", [
    (["--label-dim", "3"], "give --label-dim P (Blobs' angle and distance, p classes each) or --weak-labels SPEC"),
    (["--npz", "d.npz"], "--weak-labels goes with --dataset NAME (or Blobs, without --npz and --images)"),
])
def test_cli_refuses_weak_labels_with_label_dim_or_own_data(tmp_path, capsys, extra, words):
    line = cli_refuses(capsys, "train", "--model", "wela", "--weak-labels", ROTATED, *extra, "--variants", "1",
                       "--data-dir", tmp_path / "cache", *TINY, "--out", tmp_path / "run", out=tmp_path / "run")
    assert words in line
