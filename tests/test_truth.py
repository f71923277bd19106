"""welavae.truth: GroundTruth, what evaluation scores a representation against, on Blobs and a benchmark."""
import math

import numpy as np
import pytest
from fixtures import SPEC

from welavae.data import polar_factors
from welavae.data.blobs import make_blobs
from welavae.data.published import DSPRITES_FACTORS
from welavae.evaluate import evaluate_seed
from welavae.metrics import cartesian_mse, pair_mse, polar_mse
from welavae.truth import benchmark_truth, blobs_truth

SIZES = (1, 3, 2, 4, 8, 6)  # a reduced dSprites grid: color, shape, scale, orientation, posX, posY
GRID = np.stack(np.meshgrid(*[np.arange(n) for n in SIZES], indexing="ij"), -1).reshape(-1, len(SIZES))


def test_benchmark_truth_scores_the_labelled_pair_and_swaps_it_for_the_label_coordinates():
    t = benchmark_truth(GRID, DSPRITES_FACTORS, SIZES, SPEC)
    np.testing.assert_array_equal(t.pair, GRID[:, [4, 5]])
    assert t.widths == (7.0, 5.0) and t.grid == (8, 6) and t.systems == ("cartesian", "polar") and t.task == "polar"
    f, names, cont = t.factor_sets["factors"]
    assert names == ("shape", "scale", "orientation", "posX", "posY") and cont == ()  # colour: one class, left out
    np.testing.assert_array_equal(f, GRID[:, 1:])
    f, names, cont = t.factor_sets["label_coordinates"]
    assert names == ("shape", "scale", "orientation", "angle(posX,posY)", "distance(posX,posY)") and cont == (3, 4)
    np.testing.assert_allclose(f[:, 3], np.arctan2(GRID[:, 5], GRID[:, 4]))
    np.testing.assert_allclose(f[:, 4], np.hypot(GRID[:, 4], GRID[:, 5]))
    # a code of (φ, d) and noise: zero polar error about the corner, in position-class units
    mu = np.stack([np.random.default_rng(1).normal(size=len(GRID)), f[:, 3], f[:, 4]], 1)
    assert t.mse(mu, "polar").mse == pytest.approx(0.0, abs=1e-20)
    assert t.mse(mu, "cartesian") == pair_mse(mu, GRID[:, [4, 5]], widths=(7, 5), system="cartesian")


def test_a_benchmark_without_a_spec_is_scored_on_its_position_and_one_without_either_on_factors_only():
    t = benchmark_truth(GRID, DSPRITES_FACTORS, SIZES, None, position=("posX", "posY"))
    assert t.pair is not None and t.factor_sets["label_coordinates"][1][-2:] == ("angle(posX,posY)", "distance(posX,posY)")
    bare = benchmark_truth(GRID, DSPRITES_FACTORS, SIZES, None, position=None)
    assert bare.pair is None and list(bare.factor_sets) == ["factors"] and bare.heatmaps(GRID) is None
    row = evaluate_seed(np.random.default_rng(0).normal(size=(len(GRID), 3)), bare, standard=False)
    assert "polar" not in row and "cartesian" not in row and row["standard"] is None


def test_heatmaps_are_the_mean_code_per_cell_and_nan_where_no_sample_falls():
    t = benchmark_truth(GRID, DSPRITES_FACTORS, SIZES, SPEC)
    keep = ~((GRID[:, 4] == 2) & (GRID[:, 5] == 3))  # one empty cell
    sub = benchmark_truth(GRID[keep], DSPRITES_FACTORS, SIZES, SPEC)
    mu = np.stack([GRID[:, 4] * 10.0 + GRID[:, 1], GRID[:, 5].astype(float)], 1)
    heat = sub.heatmaps(mu[keep])
    assert heat.shape == (2, 8, 6) and np.isnan(heat[:, 2, 3]).all()
    # shape 0, 1, 2 equally often in each cell: mean 10·posX + 1
    want = np.where((np.arange(8)[:, None] == 2) & (np.arange(6) == 3), np.nan, np.arange(8)[:, None] * 10.0 + 1 + 0 * np.arange(6))
    np.testing.assert_array_equal(heat[0], want)
    np.testing.assert_array_equal(t.heatmaps(mu)[1], np.tile(np.arange(6.0), (8, 1)))


def test_blobs_truth_is_the_papers_eqs_and_factor_sets():
    f = make_blobs(1).factors
    t = blobs_truth(f)
    mu = polar_factors(f)
    assert t.mse(mu, "polar") == polar_mse(mu, f) and t.mse(mu, "cartesian") == cartesian_mse(mu, f)
    assert t.factor_sets["cartesian"][1] == ("c1", "c2") and t.factor_sets["polar"][2] == (0, 1)
    assert len(np.unique(t.groups)) == 64 * 64 and math.isclose(t.widths[0], 64)


def test_blobs_with_sum_diff_labels_report_and_are_scored_on_the_rotated_system():
    f = make_blobs(1, size=16).factors
    t = blobs_truth(f, size=16, spec="sum(c1,c2):3, diff(c1,c2):3")
    assert t.systems == ("cartesian", "polar", "rotated") and t.task == "rotated" and t.paper
    # The rotated system is pair_mse's on the canvas [0, 16]² (the centres are 0 … 15, so even the code
    # (s, t) = (c1 + c2, c1 − c2) keeps the canvas-versus-centres error the paper's eqs. 5–7 have: 0.69,
    # against 49.0 for the Cartesian code (c1, c2)).
    code = np.stack([f.sum(1), f[:, 0] - f[:, 1]], 1)
    assert t.mse(code, "rotated").mse == pair_mse(code, f, widths=(16, 16), system="rotated").mse
    assert t.mse(code, "rotated").mse < 1 < 40 < t.mse(f, "rotated").mse
    assert t.mse(code, "polar").mse == polar_mse(code, f).mse
    plain = blobs_truth(f, size=16)
    assert plain.systems == ("cartesian", "polar") and plain.task == "polar"
