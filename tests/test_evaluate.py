"""Evaluation of run directories: metrics.json holds what the metric functions return for the run's arrays
(the metrics' own known answers are in tests/test_metrics_*.py)."""
import json
import math

import numpy as np
import pytest

from welavae.config import DataConfig, TrainConfig, make_run_config
from welavae.data import Dataset, make_blobs, polar_factors, weak_labels
from welavae.evaluate import evaluate_arrays, evaluate_run, plot_run
from welavae.run import Run
from welavae.train.rundir import train_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    b = make_blobs(1)
    cfg = make_run_config("wela", label_dim=2, hidden=(16, 8), data=DataConfig(variants=1),
                          train=TrainConfig(epochs=1, batch_size=64, lr=1e-3))
    train_run(cfg, [3, 5], d, data=Dataset(b.images, weak_labels(b.factors, 2), factors=b.factors), progress=False)
    return d


def test_known_representations():
    f = make_blobs(1).factors
    mu = np.stack([f, polar_factors(f)])  # seed 0 Cartesian, seed 1 polar
    rows = evaluate_arrays(mu, f, standard=False)
    # 0.672 = 2·mean((c/63)²) over c = 0..63, the floor of eq. 5's 63 → 64 stretch.
    assert rows[0]["cartesian"]["mse"] == pytest.approx(2 * np.mean((np.arange(64) / 63) ** 2))
    assert rows[1]["polar"]["mse"] < 1.0 and rows[0]["polar"]["mse"] > 500


def test_metrics_json_holds_what_the_metric_functions_return(run_dir, monkeypatch):
    import functools

    import welavae.truth
    from welavae.metrics import cartesian_mse, discretize_factors, mig, polar_mse, standard_metrics

    # The classifiers on small splits (the full sizes take minutes); MIG does not depend on them.
    small = functools.partial(standard_metrics, num_train=400, num_test=200, factor_vae=False)
    monkeypatch.setattr(welavae.truth, "standard_metrics", small)
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
    best = int(np.argmin([polar_mse(m, f).mse for m in mu]))
    assert result["seeds"][1 - best]["standard"] is None  # default: the standard metrics of the best seed only
    polar_bins = discretize_factors(polar_factors(f), continuous=(0, 1)).codes
    assert result["seeds"][best]["standard"]["polar"]["mig"] == pytest.approx(mig(mu[best], polar_bins))
    assert result["seeds"][best]["standard"]["cartesian"]["mig"] == pytest.approx(mig(mu[best], f.astype(int)))


def test_single_seed_model_reproduces_mu(run_dir):
    import torch

    model = Run(run_dir).load_model().subset([5])
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


def test_plot_run_picks_the_best_seed_on_the_models_task(run_dir, tmp_path):
    """Without a seed: β-TCVAE's figure is its lowest Cartesian MSE (paper Fig. 4a), WeLa-VAE's its lowest polar."""
    import shutil

    b = make_blobs(1)
    d, wela = tmp_path / "tcvae", shutil.copytree(run_dir, tmp_path / "wela")
    cfg = make_run_config("tcvae", hidden=(16, 8), data=DataConfig(variants=1),
                          train=TrainConfig(epochs=1, batch_size=64, lr=1e-3))
    train_run(cfg, [0, 1], d, data=Dataset(b.images, None, factors=b.factors), progress=False)
    cartesian, polar = np.zeros((2, len(b.factors), 5))
    cartesian[:, :2], polar[:, :2] = b.factors, polar_factors(b.factors)
    for run, mu in ((d, [polar, cartesian]), (wela, [cartesian, polar])):
        np.save(run / "mu.npy", np.stack(mu)[..., : np.load(run / "mu.npy").shape[-1]])
    # the perfect code of each task is the second seed in both runs
    assert [p.name for p in plot_run(d, out_dir=tmp_path, data=b.images)][0] == "tcvae_seed1.png"
    assert [p.name for p in plot_run(wela, out_dir=tmp_path, data=b.images)][0] == "wela_p2_seed5.png"
