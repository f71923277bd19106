"""Colour images (N, H, W, C) through data, config, objective, model, figures and the CLI (issue 21 part 1).

Known answers: pixel values written into PNG files read back exactly (/255);
alpha composited onto black by hand; the Bernoulli NLL of a colour image is
the sum of its channels' NLLs and matches a hand-computed value; config hashes
and a run directory written by welavae 0.2.0 (tests/data/run_0.2.0, made with
commit 4ca4b81's CLI and, for the interrupted run, its ``train_run``).
"""
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import welavae
from welavae.cli import main
from welavae.config import DataConfig, RunConfig, make_run_config
from welavae.data import load_image_folder, load_npz
from welavae.data.dataset import check_images
from welavae.objectives import bernoulli_nll
from welavae.plots import latent_figure, sample_grid
from welavae.run import Run
from welavae.train.rundir import train_run

ROOT = Path(__file__).resolve().parents[1]
V020 = ROOT / "tests" / "data" / "run_0.2.0"


def colour_blobs(n, size=16, seed=0):
    """(n, size, size, 3) images: a Gaussian blob of a random colour at a random place; labels (n, 2)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    c = rng.integers(2, size - 2, size=(n, 2))
    colour = rng.random((n, 3))
    blob = np.exp(-((yy - c[:, 0, None, None]) ** 2 + (xx - c[:, 1, None, None]) ** 2) / 6.0)
    images = (blob[..., None] * colour[:, None, None, :]).astype(np.float32)
    labels = np.stack([c[:, 0] >= size // 2, colour.argmax(1)], 1).astype(np.int64)
    return images, labels


# ------------------------------------------------------------------ reading colour


def test_check_images_takes_channels_and_npz_reads_either_layout(tmp_path):
    images, labels = colour_blobs(8)
    assert check_images(images).shape == (8, 16, 16, 3)
    np.savez(tmp_path / "rgb.npz", images=images, labels=labels)
    np.savez(tmp_path / "gray.npz", images=images[..., 0], labels=labels)
    rgb, gray = load_npz(tmp_path / "rgb.npz"), load_npz(tmp_path / "gray.npz")
    assert rgb.image_shape == (16, 16, 3) and np.array_equal(rgb.images, images)
    assert gray.image_shape == (16, 16, 1) and gray.images.shape == (8, 16, 16)


def write_png(path, array, mode):
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode=mode).save(path)


def test_folder_read_in_colour_or_gray(tmp_path):
    px = np.array([[[255, 0, 0], [0, 128, 255]]], dtype=np.uint8)  # 1×2 RGB: red, a blue
    folder = tmp_path / "pngs"
    folder.mkdir()
    write_png(folder / "a.png", px, "RGB")
    write_png(folder / "b.png", px[:, ::-1], "RGB")
    (tmp_path / "labels.csv").write_text("file,k\na.png,0\nb.png,1\n")
    rgb = load_image_folder(folder, tmp_path / "labels.csv", color="rgb")
    assert rgb.images.shape == (2, 1, 2, 3)
    assert np.array_equal(rgb.images[0], px.astype(np.float32) / 255)  # exact: value / 255
    gray = load_image_folder(folder, tmp_path / "labels.csv")
    # Pillow's L = (299 R + 587 G + 114 B) / 1000, rounded: red 255 → 76, (0, 128, 255) → 104.
    assert gray.images.shape == (2, 1, 2) and np.allclose(gray.images[0, 0] * 255, [76, 104])


def test_folder_mixing_gray_and_colour_is_refused_naming_the_file(tmp_path):
    write_png(tmp_path / "a.png", np.zeros((4, 4, 3)), "RGB")
    write_png(tmp_path / "b.png", np.zeros((4, 4)), "L")
    with pytest.raises(ValueError, match=r"b\.png is a grayscale image but .*a\.png is colour"):
        load_image_folder(tmp_path, color="rgb")
    with pytest.raises(ValueError, match=r"b\.png is a grayscale image"):
        load_image_folder(tmp_path)


def test_rgba_is_flattened_onto_black_with_one_warning(tmp_path):
    rgba = np.array([[[200, 100, 50, 255], [200, 100, 50, 0], [200, 100, 50, 128]]], dtype=np.uint8)
    write_png(tmp_path / "a.png", rgba, "RGBA")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_image_folder(tmp_path, color="rgb")
    assert len(caught) == 1 and "alpha channel: flattened onto black" in str(caught[0].message)
    assert "a.png" in str(caught[0].message)
    x = ds.images[0, 0] * 255
    assert np.array_equal(x[0], [200, 100, 50])  # opaque: unchanged
    assert np.array_equal(x[1], [0, 0, 0])  # transparent: black
    assert np.abs(x[2] - np.array([200, 100, 50]) * 128 / 255).max() <= 1.0  # value·α, up to Pillow's rounding


# ------------------------------------------------------------------ config and 0.2.0 runs


def test_a_0_2_0_config_reads_as_one_channel_and_keeps_its_hash():
    # Hashes printed by welavae 0.2.0 (commit 4ca4b81) for the same three configurations.
    assert make_run_config("wela", label_dim=2).hash() == "f5af1694bc50d21b"
    assert make_run_config("tcvae", encoder="conv", hidden=(16,)).hash() == "6c160a985adf2a6f"
    images = DataConfig(source="images", path="d", labels_path="l.csv")
    assert make_run_config("wela", label_dims=(3,), data=images, image_shape=(32, 48)).hash() == "29850ff06377459a"
    cfg = Run(V020 / "finished").config
    assert cfg.model.image_shape == (16, 16, 1) and cfg.model.arch == "mlp" and cfg.data.color == "gray"
    assert cfg.hash() == json.loads((V020 / "finished" / "status.json").read_text())["config_hash"]
    # New fields enter the hash only when they change the run.
    rgb = make_run_config("wela", label_dims=(3,), data=DataConfig(source="images", path="d", color="rgb"),
                          image_shape=(32, 48))
    assert len({rgb.hash(), make_run_config("wela", label_dims=(3,), data=images, image_shape=(32, 48, 3)).hash(),
                make_run_config("wela", label_dim=2, arch="conv").hash(), "f5af1694bc50d21b"}) == 4
    assert RunConfig.from_json(rgb.to_json()) == rgb


def test_a_0_2_0_run_encodes_and_resumes(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the runs name their data as tests/data/run_0.2.0/data.npz
    data = load_npz(V020 / "data.npz")
    model = welavae.load(V020 / "finished")
    mu = np.load(V020 / "finished" / "mu.npy")
    assert np.allclose(model.encode(data.images, data.labels), mu, atol=1e-6)
    assert model.decode(mu[0], seed=0).shape == (64, 16, 16)
    # The run 0.2.0 left after its first of two epochs, finished by this code, equals 0.2.0's uninterrupted run.
    run_dir = tmp_path / "interrupted"
    shutil.copytree(V020 / "interrupted", run_dir)
    cfg = RunConfig.from_json((run_dir / "config.json").read_text())
    result = train_run(cfg, [0, 1], run_dir, progress=False)
    assert result.resumed_from == 1
    # Bit for bit on the kind of CPU that wrote the pinned run (an AMD EPYC); another CPU's kernels round
    # differently (an Intel Xeon: 9e-8), so: to float rounding.
    np.testing.assert_allclose(np.load(run_dir / "mu.npy"), mu, rtol=0, atol=1e-6)


# ------------------------------------------------------------------ the objective


def test_bernoulli_nll_of_a_colour_image_is_the_sum_over_its_channels():
    # By hand: x = (1, 0, 0.5), logits (0, 0, 2): log 2 + log 2 + softplus(2) − 0.5·2.
    logits = torch.tensor([[[0.0, 0.0, 2.0]]], dtype=torch.float64)
    x = torch.tensor([[1.0, 0.0, 0.5]], dtype=torch.float64)
    expected = 2 * np.log(2) + np.log1p(np.exp(2.0)) - 1.0
    assert abs(bernoulli_nll(logits, x).item() - expected) < 1e-12
    g = torch.Generator().manual_seed(0)
    xs = torch.rand(4, 5, 6, 3, generator=g, dtype=torch.float64)  # (B, H, W, C)
    ls = torch.randn(2, 4, 5, 6, 3, generator=g, dtype=torch.float64)
    whole = bernoulli_nll(ls.reshape(2, 4, -1), xs.reshape(4, -1))
    by_channel = sum(bernoulli_nll(ls[..., c].reshape(2, 4, -1), xs[..., c].reshape(4, -1)) for c in range(3))
    assert torch.allclose(whole, by_channel, rtol=1e-12)


# ------------------------------------------------------------------ training, encoding, figures


def test_fit_trains_colour_and_decodes_with_channels(tmp_path):
    images, labels = colour_blobs(128)
    model = welavae.fit(images, labels, label_dims=(2, 3), seeds=(0, 1), out=tmp_path / "run", hidden=(16,),
                        epochs=1, batch_size=32, lr=1e-3, progress=False)
    assert model.config.model.image_shape == (16, 16, 3) and model.config.model.image_dim == 768
    z = model.encode(images[:5], labels[:5], seed=1)
    assert z.shape == (5, 2)
    probs = model.decode(z, seed=1)
    assert probs.shape == (5, 16, 16, 3) and model.decode(z).shape == (2, 5, 16, 16, 3)
    # decode's (H, W, C) order is the data's: the logits of value (h, w, c) sit at index (h·W + w)·C + c.
    with torch.no_grad():
        logits, _ = model.ensemble.decode(torch.from_numpy(z)[None].expand(2, -1, -1))
    assert np.allclose(torch.sigmoid(logits[1]).numpy().reshape(5, 16, 16, 3), probs, atol=1e-6)
    with pytest.raises(ValueError, match="16x16x3"):
        model.encode(images[:5, ..., 0], labels[:5])


def red_fraction(fig):
    fig.canvas.draw()
    a = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)
    return ((a[..., 0] > 200) & (a[..., 1] < 50) & (a[..., 2] < 50)).mean()


def test_figures_show_colour():
    red = np.zeros((2, 8, 8, 3))
    red[..., 0] = 1.0
    assert red_fraction(sample_grid(red, rows=1, cols=2)) > 0.3  # drawn red, not as a gray level
    assert red_fraction(sample_grid(red[..., 0], rows=1, cols=2)) == 0.0
    trav = np.broadcast_to(red[:1, None], (2, 3, 8, 8, 3))
    fig = latent_figure(red, red, trav, None)  # no heat maps: data without Blobs' grid of positions
    assert red_fraction(fig) > 0.1


def test_cli_trains_on_a_colour_folder_and_encodes_it(tmp_path, capsys):
    images, labels = colour_blobs(64)
    folder = tmp_path / "pngs"
    folder.mkdir()
    rows = ["file,row,colour"]
    for i, (img, lab) in enumerate(zip(images, labels)):
        write_png(folder / f"{i:03d}.png", np.round(img * 255), "RGB")
        rows.append(f"{i:03d}.png,{lab[0]},{'rgb'[lab[1]]}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    run = tmp_path / "run"
    assert main(["train", "--model", "wela", "--images", str(folder), "--labels", str(tmp_path / "labels.csv"),
                 "--color", "rgb", "--hidden", "16", "--epochs", "1", "--batch-size", "32", "--out", str(run)]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["data"]["color"] == "rgb" and cfg["model"]["image_shape"] == [16, 16, 3]
    assert main(["encode", str(run), "--images", str(folder), "--labels", str(tmp_path / "labels.csv"),
                 "--out", str(tmp_path / "z.npy")]) == 0  # read in colour, as the model's data were
    assert np.allclose(np.load(tmp_path / "z.npy"), np.load(run / "mu.npy"), atol=1e-6)
    # a folder has no true factors: plot draws the traversals of the seed `select` ranks first, in colour
    capsys.readouterr()
    assert main(["plot", str(run), "--out", str(tmp_path / "fig")]) == 0
    (png,) = (tmp_path / "fig").glob("*.png")
    assert png.name == "wela_seed0.png" and Image.open(png).mode in ("RGB", "RGBA")
    drawn = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert (np.abs(drawn[..., 0] - drawn[..., 1]) > 30).any()  # not a gray picture
    capsys.readouterr()
    assert main(["train", "--model", "wela", "--npz", "x.npz", "--color", "rgb", "--out", str(tmp_path / "o")]) == 2
    assert "--color goes with --images" in capsys.readouterr().err and not (tmp_path / "o").exists()
