"""welavae.train.tracking: the polar and Cartesian MSE of every seed during training (``--track-every``; issue 23).

Known answers: the last tracked row is the run's own score (every sample tracked when N < TRACK_SAMPLES),
and tracking changes no weight.
"""
import numpy as np
import pytest
from fixtures import _tracking, as_dataset
from fixtures import cfg16 as cfg

from welavae.config import TrainConfig
from welavae.metrics import cartesian_mse, polar_mse
from welavae.run import Run
from welavae.train.rundir import train_run
from welavae.train.tracking import TRACK_SAMPLES, tracked
from welavae.train.trainer import labels_observed


@pytest.fixture(scope="module")
def blobs(blobs16):
    """This file's runs are on 16×16 Blobs (tests/conftest.py)."""
    return blobs16


def test_window_and_tracked_epochs():
    t = TrainConfig(epochs=10, label_epochs=(2, 5), track_every=4)
    assert [e for e in range(10) if labels_observed(t, e)] == [2, 3, 4]
    assert [e for e in range(11) if tracked(t, e)] == [4, 5, 8, 10]  # every 4th, the window's end, the last
    assert not any(tracked(TrainConfig(epochs=10), e) for e in range(11))


def test_tracking_rows_hold_the_coordinate_mse_and_change_nothing(blobs, tmp_path):
    images, labels, factors = blobs
    c = cfg(epochs=5, label_epochs=(0, 3), track_every=2)
    train_run(c, [0, 1], tmp_path / "tracked", data=as_dataset(images, labels, factors))
    train_run(cfg(epochs=5, label_epochs=(0, 3)), [0, 1], tmp_path / "plain", data=as_dataset(images, labels, factors))
    run = Run(tmp_path / "tracked")
    assert np.array_equal(run.mu, Run(tmp_path / "plain").mu)  # tracking draws no randomness, changes no weight
    rows = _tracking(tmp_path / "tracked" / "tracking.csv")
    assert [(int(r["epoch"]), int(r["seed"])) for r in rows] == [(e, s) for e in (2, 3, 4, 5) for s in (0, 1)]
    # N = 256 < TRACK_SAMPLES: the subset is every sample, so the last epoch's row is the run's own score
    assert len(images) < TRACK_SAMPLES
    for r in rows[-2:]:
        mu = run.mu[int(r["seed"])]
        assert float(r["polar_mse"]) == pytest.approx(polar_mse(mu, factors).mse, rel=1e-6)
        assert float(r["cartesian_mse"]) == pytest.approx(cartesian_mse(mu, factors).mse, rel=1e-6)


def test_tracking_needs_factors(blobs, tmp_path):
    images, labels, _ = blobs
    with pytest.raises(ValueError, match="ground-truth factors"):
        train_run(cfg(track_every=1), [0], tmp_path / "out", data=as_dataset(images, labels, None))
    assert not (tmp_path / "out").exists()
