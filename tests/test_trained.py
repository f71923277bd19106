"""welavae.trained: fit and load a run; encode, decode and predict with it; safetensors; colour; arrays.

Known answers: a plain numpy forward pass through the exported weights, the
encoder means the run wrote (mu.npy), and the network built on ``meta`` with
no initial weight drawn on the CPU.
"""
import json

import numpy as np
import pytest
import torch
from fixtures import colour_blobs

import welavae
from welavae.data import load, make_blobs, weak_labels
from welavae.run import Run


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


def test_load_builds_on_meta_reads_the_weights_and_caches_one_seed_networks(tmp_path, monkeypatch):
    import welavae
    from welavae.checkpoint import load_checkpoint
    from welavae.nn import ensemble

    rng = np.random.default_rng(0)
    images = rng.random((128, 16, 16), dtype=np.float32)
    labels = rng.integers(0, 3, size=(128, 2))
    trained = welavae.fit(images, labels, seeds=(0, 4), out=tmp_path / "run", hidden=(8,), epochs=1,
                          batch_size=32, progress=False, encoder="conv")
    drawn = []
    real = ensemble.init_uniform
    monkeypatch.setattr(ensemble, "init_uniform", lambda *a, **k: drawn.append(real(*a, **k).device.type) or real(*a, **k))
    model = welavae.load(tmp_path / "run")
    assert drawn and set(drawn) == {"meta"}  # no initial weight drawn on the CPU to be thrown away
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["model"]
    for k, v in model.ensemble.state_dict().items():
        assert v.device.type == "cpu" and torch.equal(v, state[k]), k
    z = rng.standard_normal((5, trained.config.model.latent_dim)).astype(np.float32)
    first = model.decode(z, seed=4)
    net = model._one_seed[4]
    assert np.array_equal(model.decode(z, seed=4), first) and model._one_seed[4] is net  # built once
    assert np.allclose(first, model.decode(z)[1], atol=1e-6)  # seed 4 of the ensemble (S=1 vs S=2 GEMMs round apart)
    model.to("cpu")
    assert model._one_seed == {}


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


def test_a_run_fit_on_arrays_is_evaluated_and_plotted_like_any_other(tmp_path):
    import welavae
    from welavae.evaluate import evaluate_run, plot_run

    b = make_blobs(1)
    labels = weak_labels(b.factors, 2)
    model = welavae.fit(b.images, labels, seeds=(0, 1), out=tmp_path / "run", factors=b.factors, hidden=(16, 8),
                        epochs=1, batch_size=64, lr=1e-3, label_fraction=0.5)
    assert model.config.data.source == "arrays"
    kept = Run(tmp_path / "run").data()  # the arrays fit trained on, all labels (none hidden)
    np.testing.assert_array_equal(kept.images, b.images)
    np.testing.assert_array_equal(kept.labels, labels)
    np.testing.assert_array_equal(kept.factors, b.factors)
    result = evaluate_run(tmp_path / "run", standard="none")
    assert [r["seed"] for r in result["seeds"]] == [0, 1] and np.isfinite(result["seeds"][0]["polar"]["mse"])
    assert result["seeds"][0]["accuracy_hidden"] is not None  # the hidden half is known from data.npz's labels
    names = [p.name for p in plot_run(tmp_path / "run", seed=1, out_dir=tmp_path / "fig")]
    assert names == ["wela_p2_seed1.png", "wela_p2_seed1_scatter.png"]
    with pytest.raises(ValueError, match="in-memory arrays"):
        load(model.config)  # without its run directory
    Run(tmp_path / "run").arrays_file.unlink()
    with pytest.raises(FileNotFoundError, match=Run.ARRAYS):
        plot_run(tmp_path / "run", seed=1, out_dir=tmp_path / "fig")


def _fit(images, labels, out, **kw):
    return welavae.fit(images, labels, label_dims=(2, 3), seeds=(0,), out=out, hidden=(8,), epochs=1, batch_size=32,
                       lr=1e-3, progress=False, **kw)


def test_fit_never_overwrites_the_arrays_a_run_was_trained_on(tmp_path):
    # Before: fit(x2, y2, out=o) after fit(x, y, out=o) replaced o/data.npz, and the first data set was lost.
    images, labels = colour_blobs(64, seed=0)
    out = tmp_path / "run"
    _fit(images, labels, out)
    kept = (out / Run.ARRAYS).read_bytes()
    mu = np.load(out / "mu.npy")
    other, _ = colour_blobs(64, seed=1)
    with pytest.raises(ValueError, match=f"^{out} was trained on other data: the arrays given differ from those it "
                                         f"was trained on, kept in {out / Run.ARRAYS} \\(never overwritten\\)"):
        _fit(other, labels, out)
    assert (out / Run.ARRAYS).read_bytes() == kept and np.array_equal(np.load(out / "mu.npy"), mu)
    _fit(images.copy(), labels.copy(), out)  # the same arrays again: the same run (finished), data.npz untouched
    assert (out / Run.ARRAYS).read_bytes() == kept
    # A run fit before fingerprints (none in config.json): data.npz itself says what it was trained on.
    recorded = json.loads((out / "config.json").read_text())
    del recorded["data"]["fingerprint"]
    (out / "config.json").write_text(json.dumps(recorded))
    with pytest.raises(ValueError, match="was trained on other data: the arrays given differ"):
        _fit(other, labels, out)
    assert (out / Run.ARRAYS).read_bytes() == kept
    assert _fit(images, labels, out).seeds == [0]


def test_fit_refuses_an_empty_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # "" would be this directory
    images, labels = colour_blobs(64)
    with pytest.raises(ValueError, match="--out is empty"):
        _fit(images, labels, "")
    assert list(tmp_path.iterdir()) == []
