"""The conjectures preset end to end on tiny settings, and its table code (welavae.experiments.conjectures).

The downstream classifier itself (welavae.metrics.downstream_task) has its own
known-answer tests; here it is replaced by a stand-in with disentanglement_lib's
result keys (a majority-class predictor, instant) so that the preset's plumbing —
targets, grouped split, PCA baseline, tables, tracking, forgetting — is what is tested.
"""
import csv

import numpy as np
import pytest
from plans import resolved

import welavae.metrics
from welavae.data import make_blobs, weak_labels
from welavae.experiments import conjectures
from welavae.experiments.conjectures import TARGETS, conjecture_plans, downstream_targets
from welavae.experiments.presets import reproduce
from welavae.run import Run


def majority_downstream(mu_train, y_train, mu_test, y_test, *, num_train=(10, 100, 1000, 10000),
                        predictor="logistic", seed=0):
    """Stand-in: per target, the most frequent class of the first ``size`` training samples."""
    out = {}
    for size in num_train:
        for j in range(y_train.shape[1]):
            cls = np.bincount(y_train[:size, j]).argmax()
            out[f"{size}:train_accuracy_factor_{j}"] = float(np.mean(y_train[:size, j] == cls))
            out[f"{size}:test_accuracy_factor_{j}"] = float(np.mean(y_test[:, j] == cls))
    return out


def test_downstream_targets_by_hand():
    # (c1, c2) = (0, 0): angle 0, distance 0 → every bin 0.  (63, 0): φ = 0 (bin 0), d = 63 of 64√2
    # → distance bin ⌈63/(64√2/2)⌉ − 1 = 1 of 2 and 6 of 10 (63/9.05 = 6.96); c1 = ⌊63·10/64⌋ = 9.
    # (0, 32): φ = π/2 (last angle bin), c2 = ⌊32·10/64⌋ = 5.
    y = downstream_targets(np.array([[0, 0], [63, 0], [0, 32]]))
    assert y.tolist() == [[0, 0, 0, 0, 0, 0], [0, 1, 0, 6, 9, 0], [1, 0, 9, 3, 0, 5]]


def test_windows_are_fractions_of_the_epochs():
    first, whole = (resolved(p) for p in conjecture_plans("/tmp/x", seeds=2, epochs=60))
    windows = {s.model: s.config.train.label_epochs for s in first if s.config.train.label_epochs}
    assert windows == {"wela_p2-image-first10": (0, 6), "wela_p2-image-first25": (0, 15),
                       "wela_p2-image-first50": (0, 30), "wela_p2-image-last25": (45, 60),
                       "wela_p2-image-always": (0, 60)}
    tune = whole[-1].config
    assert tune.train.epochs == 15 and tune.train.init_from.endswith("runs/tcvae-k2/chunks/seeds_0-1")
    assert tune.model.encoder_input == "image" and tune.model.latent_dim == 2
    assert {s.config.data.label_fraction for s in whole[4:] if s.config.model.has_labels} == {0.9}
    assert [s.model for s in first[:4]] == ["tcvae", "wela_p2", "wela_p2-f0.01", "wela_p2-image"]


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_preset_end_to_end_on_tiny_settings(tmp_path, monkeypatch):
    monkeypatch.setattr(conjectures, "downstream_task", majority_downstream)
    out = tmp_path / "res"
    conjectures.run(out, seeds=2, epochs=4, size=16, data_dir=tmp_path / "data", progress=False)

    down = _csv(out / "downstream.csv")
    assert list(down[0]) == ["representation", "predictor", "num_train", "seeds", *TARGETS, "mean"]
    reps = {"tcvae", "wela_p2", "wela_p2-f0.01", "wela_p2-image", "pca-k2", "pca-k5"}
    assert {r["representation"] for r in down} == reps
    # 16 × 16 Blobs: 256 positions split 2 : 1 (170 train), so the sizes 1000 and 10000 are cut to 170
    assert sorted({int(r["num_train"]) for r in down}) == [10, 100, 170]
    assert len(down) == len(reps) * 2 * 3
    for r in down:
        accs = [float(r[t]) for t in TARGETS]
        assert float(r["mean"]) == pytest.approx(np.mean(accs)) and all(0 <= a <= 1 for a in accs)

    win = {r["model"]: r for r in _csv(out / "windows.csv")}
    assert set(win) == {f"wela_p2-image-{w}" for w in ("first10", "first25", "first50", "last25", "always")} \
        | {"tcvae-k2-finetune"}
    assert win["wela_p2-image-first50"]["window"] == "0:2" and win["tcvae-k2-finetune"]["window"] == "0:1"
    assert win["tcvae-k2-finetune"]["start"] == "tcvae-k2 (4 epochs)"
    for model, row in win.items():
        run = Run(next((out / "runs" / model / "chunks").iterdir()))
        track = {(int(r["seed"]), int(r["epoch"])): float(r["polar_mse"]) for r in _csv(run.path / "tracking.csv")}
        end, window_end = int(row["epochs"]), int(row["window"].split(":")[1])
        forgetting = [track[(s, end)] - track[(s, window_end)] for s in (0, 1)]
        assert float(row["forgetting_mean"]) == pytest.approx(np.mean(forgetting))
        assert float(row["forgetting_lowest"]) == pytest.approx(min(forgetting))
        assert float(row["polar_end_mean"]) - float(row["polar_window_mean"]) == pytest.approx(np.mean(forgetting))
        assert 0 <= float(row["acc_held_out_mean"]) <= 1 and int(row["seeds"]) == 2
    assert float(win["tcvae-k2-finetune"]["forgetting_mean"]) == 0.0  # its window is its whole run
    assert (out / "figures" / "polar_mse_by_epoch.png").stat().st_size > 0
    assert "## (b) Labels for a window of training" in (out / "conjectures.md").read_text()

    # the rerun trains nothing and writes the same tables
    before = (out / "windows.csv").read_text()
    conjectures.run(out, seeds=2, epochs=4, size=16, data_dir=tmp_path / "data", progress=False)
    assert (out / "windows.csv").read_text() == before


def test_fixed_plan_refuses_models_and_chunks(tmp_path):
    with pytest.raises(ValueError, match="--models"):
        reproduce("conjectures", out=tmp_path, models=["tcvae"])
    with pytest.raises(ValueError, match="--seeds-per-task"):
        reproduce("conjectures", out=tmp_path, seeds_per_task=1)
    assert not any(tmp_path.iterdir())


def test_downstream_split_never_shares_a_position():
    b = make_blobs(2, size=8, seed=0)  # two variants per position
    y = downstream_targets(b.factors, size=8)
    groups = np.unique(b.factors, axis=0, return_inverse=True)[1].reshape(-1)
    tr, te = welavae.metrics.split_indices(len(y), num_train=10000, num_test=5000, seed=0, groups=groups)
    assert not set(map(tuple, b.factors[tr])) & set(map(tuple, b.factors[te]))
    assert weak_labels(b.factors, 2, size=8).tolist() == y[:, :2].tolist()
