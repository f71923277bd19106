"""Evaluation of run directories: metrics.json agrees with an independent recomputation."""
import json
import math

import numpy as np
import pytest

from welavae.config import DataConfig, TrainConfig, make_run_config
from welavae.data import make_blobs, polar_factors, weak_labels
from welavae.evaluate import evaluate_arrays, evaluate_run, plot_run, single_seed_model
from welavae.train.run import train_run
from welavae.train.trainer import load_checkpoint


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    b = make_blobs(1)
    cfg = make_run_config("wela", label_dim=2, hidden=(16, 8), data=DataConfig(variants=1),
                          train=TrainConfig(epochs=1, batch_size=64, lr=1e-3))
    train_run(cfg, [3, 5], d, data=(b.images, weak_labels(b.factors, 2), b.factors), progress=False)
    return d


def test_known_representations():
    f = make_blobs(1).factors
    mu = np.stack([f, polar_factors(f)])  # seed 0 Cartesian, seed 1 polar
    rows = evaluate_arrays(mu, f, standard=False)
    # 0.672 = 2·mean((c/63)²) over c = 0..63, the floor of eq. 5's 63 → 64 stretch.
    assert rows[0]["cartesian"]["mse"] == pytest.approx(2 * np.mean((np.arange(64) / 63) ** 2))
    assert rows[1]["polar"]["mse"] < 1.0 and rows[0]["polar"]["mse"] > 500


def test_metrics_json_matches_independent_recomputation(run_dir):
    from welavae.metrics import all_metrics, cartesian_mse, polar_mse

    result = evaluate_run(run_dir)
    on_disk = json.loads((run_dir / "metrics.json").read_text())
    assert on_disk["seeds"][0]["seed"] == 3 and len(on_disk["seeds"]) == 2
    mu = np.load(run_dir / "mu.npy")
    f = np.load(run_dir / "factors.npy")
    pred, labels = np.load(run_dir / "label_pred.npy"), np.load(run_dir / "labels.npy")
    for i, row in enumerate(result["seeds"]):
        assert row["polar"]["mse"] == pytest.approx(polar_mse(mu[i], f).mse)
        assert row["cartesian"]["channels"] == list(cartesian_mse(mu[i], f).channels)
        assert row["accuracy"] == pytest.approx(list((pred[i] == labels).mean(0)))
        assert row["standard"]["polar"]["mig"] == pytest.approx(all_metrics(mu[i], polar_factors(f))["mig"])


def test_single_seed_model_reproduces_mu(run_dir):
    import torch

    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    model, _ = single_seed_model(state, 5)
    images = make_blobs(1).images
    x = torch.from_numpy(images[:100].reshape(100, -1))
    y = torch.from_numpy(weak_labels(make_blobs(1).factors[:100], 2))
    with torch.no_grad():
        mu = model.encode(x, y)[0][0].numpy()
    assert np.allclose(mu, np.load(run_dir / "mu.npy")[1, :100], atol=1e-5)


def test_plot_run_writes_figures(run_dir, tmp_path):
    paths = plot_run(run_dir, seed=3, out_dir=tmp_path, data=make_blobs(1).images)
    assert [p.name for p in paths] == ["wela_p2_seed3.png", "wela_p2_seed3_scatter.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000
    with pytest.raises(ValueError, match="seed 9"):
        plot_run(run_dir, seed=9, out_dir=tmp_path)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(ValueError, match="config.json is missing"):
        evaluate_run(tmp_path)


def test_nan_representation_is_reported_not_raised():
    f = make_blobs(1).factors
    mu = np.full((1, len(f), 2), np.nan)
    row = evaluate_arrays(mu, f)[0]
    assert math.isnan(row["polar"]["mse"])
