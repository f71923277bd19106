"""Benchmarks on the command line and the uint8/bool memory path (issue 22): images stay as stored
from the file to the batch, and each batch converted by to_float gives the numbers of converting first."""
import json

import numpy as np
import pytest
import torch

from welavae.cli import main
from welavae.config import TrainConfig, make_run_config
from welavae.data.dataset import to_float
from welavae.data.blobs import make_blobs
from welavae.metrics import pair_mse
from welavae.nn.encode import encode_dataset
from welavae.train.trainer import _to_tensors, train

KEEP = ["--keep", "shape=0,1", "--keep", "scale=5", "--keep", "orientation=0", "--keep", "posX=0,10,20,31",
        "--keep", "posY=0,31"]
GRID = "1,2,1,1,4,2"  # the sizes of that reduced grid: 16 images


def test_data_writes_a_reduced_twin_and_train_reads_it_with_weak_labels(tmp_path, capsys):
    twin = tmp_path / "sprites.npz"
    assert main(["data", "--dataset", "sprites", "--out", str(twin), *KEEP]) == 0
    assert f"16 images of 64x64 written to {twin}" in capsys.readouterr().out
    out = tmp_path / "run"
    rc = main(["train", "--model", "wela", "--dataset", "sprites", "--data-path", str(twin), "--grid", GRID,
               "--subset", "12", "--subset-seed", "1", "--weak-labels", "bins(posX):2, bins(shape):2",
               "--seeds", "0-1", "--epochs", "2", "--batch-size", "4", "--hidden", "8", "--out", str(out)])
    assert rc == 0
    cfg = json.loads((out / "config.json").read_text())
    want = {"source": "benchmark", "dataset": "sprites", "data_path": str(twin), "subset": 12,
            "subset_seed": 1, "weak_labels": "bins(posX):2, bins(shape):2",
            "grid": [1, 2, 1, 1, 4, 2]}
    assert {k: cfg["data"][k] for k in want} == want
    assert cfg["model"]["label_dims"] == [2, 2] and cfg["model"]["image_shape"] == [64, 64, 1]
    assert np.load(out / "mu.npy").shape == (2, 12, 2)
    # evaluated on the labelled pair (posX, shape) — bins of each: a Cartesian pair — from factors.npy,
    # which holds all six factors' classes: both labels' accuracies and both systems' MSE
    assert main(["evaluate", str(out), "--standard", "none"]) == 0
    rows = json.loads((out / "metrics.json").read_text())["seeds"]
    assert len(rows) == 2 and all(len(r["accuracy"]) == 2 for r in rows)
    f, mu = np.load(out / "factors.npy"), np.load(out / "mu.npy")
    for r, m in zip(rows, mu):
        want = pair_mse(m, f[:, [4, 1]], widths=(3, 1), system="cartesian")
        assert r["cartesian"]["mse"] == pytest.approx(want.mse) and "polar" in r and "rotated" not in r


def test_dataset_excludes_npz_and_images_and_its_options_need_it(tmp_path, capsys):
    base = ["train", "--model", "tcvae", "--epochs", "1", "--out", str(tmp_path / "run")]
    for extra, msg in (
        (["--dataset", "sprites", "--data-path", "s.npz", "--npz", "x.npz"], "not both"),
        (["--weak-labels", "bins(posX):2"], "--weak-labels goes with --dataset NAME"),
        (["--dataset", "sprites", "--data-dir", str(tmp_path / "nodata")],  # the published name in the data dir
         f"{tmp_path / 'nodata' / 'sprites.npz'} does not exist: the dSprites twin is the file sprites.npz"),
    ):
        assert main(base + extra) == 2
        assert msg in capsys.readouterr().err
    assert main(["data", "--dataset", "sprites", "--out", str(tmp_path / "t.npz"), "--keep", "size=1"]) == 2
    assert "unknown factor 'size'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written


def test_to_float_of_every_8_bit_value_is_blobs_float_image():
    k = np.arange(256, dtype=np.uint8)
    blobs_way = k.astype(np.float32)
    blobs_way *= np.float32(1.0 / 255.0)  # how welavae.data.blobs makes its float32 images
    assert to_float(k).tobytes() == blobs_way.tobytes()
    assert to_float(torch.from_numpy(k)).numpy().tobytes() == blobs_way.tobytes()
    np.testing.assert_array_equal(to_float(np.array([True, False])), [1.0, 0.0])


@pytest.mark.parametrize("kind", ["uint8", "bool"])
def test_training_from_stored_pixels_keeps_them_and_equals_the_float_run(kind):
    rng = np.random.default_rng(0)
    pixels = (rng.integers(0, 256, (32, 8, 8)) if kind == "uint8" else rng.random((32, 8, 8)) < 0.3).astype(kind)
    cfg = make_run_config("tcvae", hidden=(8,), image_shape=(8, 8), train=TrainConfig(epochs=2, batch_size=8))
    x, _ = _to_tensors(pixels, None, "cpu")
    assert x.dtype == getattr(torch, kind) and x.element_size() * x.nelement() == pixels.size  # no float copy
    as_float = to_float(pixels)
    a = train(cfg, [0, 1], pixels, progress=False, compile_nll=False)
    b = train(cfg, [0, 1], as_float, progress=False, compile_nll=False)
    mu_a = encode_dataset(a.model, pixels, batch_size=8)[0]  # batches convert one by one
    mu_b = encode_dataset(b.model, as_float, batch_size=8)[0]  # the same batches: BLAS sums alike
    assert mu_a.tobytes() == mu_b.tobytes()


def test_blobs_float_images_are_their_8_bit_pixels_through_to_float():
    b = make_blobs(1)
    pixels = np.rint(b.images * 255).astype(np.uint8)
    assert to_float(pixels).tobytes() == b.images.tobytes()  # so Blobs stays uint8 (welavae.data.load) without a changed number
