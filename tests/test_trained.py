"""Beyond Blobs: partial labels, a label-free encoder, K > m, the diagonal head, load/fit/encode, safetensors.

Known answers: the trainer's output before partial labels existed (pinned
arrays), invariances (a seed alone = beside others), exact zeros of a
Jacobian, and a plain numpy forward pass through the exported weights.
"""
import json

import numpy as np
import pytest
import torch
from PIL import Image

import welavae
from welavae.cli import main
from welavae.config import DataConfig, TrainConfig, make_run_config
from welavae.data import make_blobs, weak_labels
from welavae.nn import EnsembleVAE
from welavae.nn.encode import encode_dataset
from welavae.train import train

PINNED = "tests/data/wela_p2_before_partial_labels.npz"


@pytest.fixture(scope="module")
def small():
    b = make_blobs(1, seed=0)
    idx = np.arange(0, 4096, 4)
    return b.images[idx], weak_labels(b.factors, 2)[idx], b.factors[idx]


def cfg(epochs=2, **kw):
    return make_run_config("wela", label_dim=kw.pop("label_dim", 2), hidden=(32, 16), data=DataConfig(variants=1),
                           train=TrainConfig(epochs=epochs, batch_size=64, lr=1e-3), **kw)


def test_all_labels_observed_gives_the_trainer_before_partial_labels(small):
    # tests/data/…npz: mu, logvar, history of this exact run, written by welavae 0.1.0 (commit 430b37c)
    # before labels could be missing, label_dims existed or the encoder could drop its labels.
    images, labels, _ = small
    r = train(cfg(), [0, 3], images, labels, progress=False)
    mu, logvar, _ = encode_dataset(r.model, images, labels)
    ref = np.load(PINNED)
    # Bit for bit on the kind of CPU that wrote them (an AMD EPYC); another CPU's BLAS kernels round
    # differently (an Intel Xeon: 6e-7 in mu, 6e-5 relative in the history), so: to float rounding.
    np.testing.assert_allclose(mu, ref["mu"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(logvar, ref["logvar"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(r.history, ref["history"], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kw", [dict(encoder_input="image"), dict(label_head="diagonal", latent_dim=3),
                                dict(latent_dim=4)])
def test_seed_alone_equals_seed_beside_others_with_partial_labels(small, kw):
    images, labels, _ = small
    partial = labels.copy()
    partial[np.random.default_rng(0).random(partial.shape) < 0.7] = -1  # 70 % of the entries missing
    c = make_run_config("wela", label_dim=2, hidden=(32, 16), data=DataConfig(variants=1),
                        train=TrainConfig(epochs=2, batch_size=64, lr=1e-4), **kw)
    together = train(c, [0, 1, 2], images, partial, progress=False)
    alone = train(c, [1], images, partial, progress=False)
    mu3, _, _ = encode_dataset(together.model, images, partial)
    mu1, _, _ = encode_dataset(alone.model, images, partial)
    assert np.abs(mu3[1] - mu1[0]).max() < 1e-5


def test_label_free_encoder_ignores_labels_and_a_missing_label_is_a_zero_block(small):
    images, labels, _ = small
    x = torch.from_numpy(images[:8].reshape(8, -1))
    y = torch.from_numpy(labels[:8])
    free = EnsembleVAE(cfg(encoder_input="image").model, [0])
    assert torch.equal(free.encode(x, y)[0], free.encode(x, None)[0])
    paper = EnsembleVAE(cfg().model, [0])
    y_missing = y.clone()
    y_missing[0, 1] = -1
    onehot = paper.one_hot(y_missing, 8, x)
    assert onehot[0].tolist() == [float(y[0, 0] == 0), float(y[0, 0] == 1), 0.0, 0.0]
    assert torch.equal(onehot[1:], paper.one_hot(y, 8, x)[1:])
    with pytest.raises(ValueError, match="--encoder-input image"):
        paper.encode(x, None)


def test_diagonal_head_label_j_depends_on_latent_j_only():
    c = make_run_config("wela", label_dims=(3, 2), latent_dim=4, label_head="diagonal", hidden=(8,),
                        image_shape=(6, 5), data=DataConfig(source="arrays"))
    model = EnsembleVAE(c.model, [0, 1])
    z = torch.randn(2, 5, 4, requires_grad=True)
    for j, p in enumerate((3, 2)):
        for cls in range(p):
            (g,) = torch.autograd.grad(model.label_logits(z)[j][..., cls].sum(), z)
            others = [k for k in range(4) if k != j]
            assert torch.count_nonzero(g[..., others]) == 0  # exactly zero: no path from latent k ≠ j
            assert torch.count_nonzero(g[..., j]) == 10
    assert model.decode(z)[1][1].shape == (2, 5, 2)


def test_k_larger_than_m_trains_with_either_head(small):
    images, labels, _ = small
    for kw in (dict(latent_dim=4), dict(latent_dim=3, label_head="diagonal")):
        r = train(cfg(epochs=1, **kw), [0], images, labels, progress=False)
        assert np.isfinite(r.history).all()
    with pytest.raises(ValueError, match="K >= m"):
        make_run_config("wela", label_dim=2, latent_dim=1, label_head="diagonal")


def test_load_encode_equals_mu_npy_and_safetensors_work_without_the_package(small, tmp_path):
    images, labels, factors = small
    model = welavae.fit(images, labels, seeds=[2, 5], out=tmp_path / "run", hidden=(32, 16), epochs=1,
                        batch_size=64, lr=1e-3, encoder_input="image", factors=factors)
    mu = np.load(tmp_path / "run" / "mu.npy")
    assert model.seeds == [2, 5] and mu.shape == (2, len(images), 2)
    loaded = welavae.load(tmp_path / "run")
    assert np.allclose(loaded.encode(images), mu, atol=1e-6)
    assert np.allclose(loaded.encode(images, seed=5), mu[1], atol=1e-6)
    probs = loaded.decode(mu[1][:3], seed=5)
    assert probs.shape == (3, 64, 64) and 0 <= probs.min() and probs.max() <= 1
    pred = loaded.predict_labels(mu)
    assert pred.shape == (2, len(images), 2)
    assert np.array_equal(pred.astype(np.int8), np.load(tmp_path / "run" / "label_pred.npy"))
    # model.safetensors read by safetensors alone, forward in plain numpy: seed 5's μ
    from safetensors import safe_open
    from safetensors.numpy import load_file

    w = load_file(tmp_path / "run" / "model.safetensors")
    with safe_open(tmp_path / "run" / "model.safetensors", "np") as f:
        meta = f.metadata()
    assert json.loads(meta["seeds"]) == [2, 5] and json.loads(meta["config"])["model"]["latent_dim"] == 2
    h = images.reshape(len(images), -1)
    for j in range(3):
        h = h @ w[f"seed_5.encoder.{j}.weight"].T + w[f"seed_5.encoder.{j}.bias"]
        h = np.maximum(h, 0) if j < 2 else h
    assert np.allclose(h[:, :2], mu[1], atol=1e-4)


def test_a_diagonal_head_run_loads_from_its_checkpoint_and_predicts_its_labels(small, tmp_path):
    # The checkpoint's model is built on the meta device; the head's column → latent map is not saved,
    # so it must come out of the constructor with its values (it once stayed on meta: load failed).
    images, labels, _ = small
    welavae.fit(images, labels, seeds=[0, 3], out=tmp_path / "run", hidden=(16,), epochs=1, batch_size=64,
                lr=1e-3, latent_dim=3, label_head="diagonal")
    loaded = welavae.load(tmp_path / "run")
    mu = np.load(tmp_path / "run" / "mu.npy")
    np.testing.assert_allclose(loaded.encode(images, labels), mu, atol=1e-6)
    assert np.array_equal(loaded.predict_labels(mu).astype(np.int8), np.load(tmp_path / "run" / "label_pred.npy"))
    assert loaded.ensemble.diagonal.latent_of.tolist() == [0, 0, 1, 1]  # p = 2 classes of labels 0 and 1


def test_fit_with_partial_labels_reports_observed_and_hidden_accuracy(small, tmp_path):
    from welavae.evaluate import evaluate_run

    images, labels, factors = small
    welavae.fit(images, labels, seeds=[0], out=tmp_path / "r", hidden=(32, 16), epochs=2, batch_size=64,
                lr=1e-3, label_fraction=0.25, factors=factors)
    observed = np.load(tmp_path / "r" / "observed.npy")
    assert observed.shape == labels.shape and observed[:, 0].sum() == 256  # round(0.25 · 1024)
    assert (np.load(tmp_path / "r" / "labels.npy") == labels).all()  # the full labels are kept for evaluation
    seed = evaluate_run(tmp_path / "r", standard=False)["seeds"][0]
    assert len(seed["accuracy"]) == 2 and len(seed["accuracy_hidden"]) == 2
    assert seed["active_latents"] in (0, 1, 2)


def write_folder(root, images, labels, names):
    root.mkdir()
    rows = ["file,angle,distance"]
    for i, (img, lab) in enumerate(zip(images, labels)):
        Image.fromarray((img * 255).round().astype(np.uint8), mode="L").save(root / names[i])
        rows.append(",".join([names[i]] + ["" if v < 0 else ["low", "high"][v] for v in lab]))
    (root.parent / f"{root.name}.csv").write_text("\n".join(rows) + "\n")
    return root.parent / f"{root.name}.csv"


def test_cli_trains_on_a_png_folder_and_encodes_new_unlabelled_images(small, tmp_path, capsys):
    images, labels, _ = small
    partial = labels[:256].copy()
    partial[::3, 1] = -1  # some empty cells
    csv = write_folder(tmp_path / "train", images[:256], partial, [f"{i:04d}.png" for i in range(256)])
    out = tmp_path / "run"
    assert main(["train", "--model", "wela", "--images", str(tmp_path / "train"), "--labels", str(csv),
                 "--encoder-input", "image", "--hidden", "32,16", "--epochs", "1", "--batch-size", "64",
                 "--seeds", "0-1", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["label_classes"] == [["high", "low"], ["high", "low"]]  # sorted strings
    new = tmp_path / "new"
    new.mkdir()
    for i in range(5):
        Image.fromarray((images[300 + i] * 255).round().astype(np.uint8), mode="L").save(new / f"n{i}.png")
    assert main(["encode", str(out), "--images", str(new), "--out", str(tmp_path / "z.npy"), "--seed", "1"]) == 0
    z = np.load(tmp_path / "z.npy")
    assert z.shape == (5, 2)
    as_png = np.round(images[300:305] * 255) / 255  # 8-bit, as written
    assert np.allclose(z, welavae.load(out).encode(as_png, seed=1), atol=1e-6)


def test_cli_refuses_bad_data_and_label_conditioned_encoding_without_writing(small, tmp_path, capsys):
    images, labels, _ = small
    csv = write_folder(tmp_path / "train", images[:128], labels[:128], [f"{i:04d}.png" for i in range(128)])
    csv.write_text(csv.read_text() + "missing.png,low,low\n")
    out = tmp_path / "never"
    assert main(["train", "--model", "wela", "--images", str(tmp_path / "train"), "--labels", str(csv),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "row 130: 'missing.png' is not a file" in err
    assert not out.exists()
    csv.write_text("\n".join(csv.read_text().splitlines()[:-1]) + "\n")
    run = tmp_path / "paper"
    assert main(["train", "--model", "wela", "--images", str(tmp_path / "train"), "--labels", str(csv),
                 "--hidden", "16", "--epochs", "1", "--batch-size", "64", "--out", str(run)]) == 0
    assert main(["encode", str(run), "--images", str(tmp_path / "train"), "--out", str(tmp_path / "z.npy")]) == 2
    err = capsys.readouterr().err
    assert "--encoder-input image" in err and not (tmp_path / "z.npy").exists()
    assert main(["encode", str(run), "--images", str(tmp_path / "train"), "--labels", str(csv),
                 "--out", str(tmp_path / "z.npy")]) == 0
    assert np.allclose(np.load(tmp_path / "z.npy"), np.load(run / "mu.npy"), atol=1e-6)


def test_conv_encoder_takes_any_size_from_16_and_refuses_smaller():
    # 4 convs of kernel 4, stride 2, padding 1: n → ⌊n/2⌋ four times, so 20×36 → 1×2 positions of 64 channels.
    rng = np.random.default_rng(0)
    images = rng.random((128, 20, 36)).astype(np.float32)
    labels = rng.integers(0, 3, size=(128, 1))
    c = make_run_config("wela", label_dims=(3,), encoder="conv", hidden=(8,), image_shape=(20, 36),
                        data=DataConfig(source="arrays"), train=TrainConfig(epochs=1, batch_size=32, lr=1e-3))
    model = EnsembleVAE(c.model, [0, 1])
    assert model.conv.out_features == 64 * 1 * 2
    r = train(c, [0, 1], images, labels, progress=False)
    assert np.isfinite(r.history).all()
    with pytest.raises(ValueError, match="H, W >= 16"):
        make_run_config("wela", label_dims=(3,), encoder="conv", image_shape=(15, 64))
