"""welavae.plots.figures: figure structure, saved PNGs, colour, and the numpy glue.

Known answers come from the data set's conventions (CONTRIBUTING.md, "Conventions"): sample index
(c1·64 + c2)·V + v, φ = atan2(c2, c1) measured from the row axis, and the
weak-label bins of welavae.data.weak_labels.
"""
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure

from welavae.data import make_blobs, weak_labels
from welavae.plots import (
    heatmaps_from_mu,
    label_maps,
    label_regions,
    latent_figure,
    latent_scatter,
    mse_distributions,
    sample_grid,
    save_figure,
    traversal_grid,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 2000  # a real rendering, not an empty canvas header


def grid_factors(size=64, variants=1):
    c1, c2 = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    return np.repeat(np.stack([c1.ravel(), c2.ravel()], 1).astype(float), variants, axis=0)


# ------------------------------------------------------------ save_figure ---


def test_save_figure_writes_png_atomically(tmp_path):
    fig = sample_grid(np.random.default_rng(0).uniform(size=(4, 8, 8)), rows=1, cols=4)
    out = save_figure(fig, tmp_path / "a" / "b" / "fig.png")  # parents created
    assert_png(out)
    save_figure(fig, out)  # overwrite in place
    assert_png(out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["fig.png"]  # no temp file left


def test_save_figure_rejects_non_png_name(tmp_path):
    fig = sample_grid(np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match=r"\.png"):
        save_figure(fig, tmp_path / "fig.pdf")


def test_import_does_not_touch_pyplot():
    # Importing must leave the user's backend alone: no pyplot state at all.
    code = "import sys, welavae.plots; assert 'matplotlib.pyplot' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------ sample_grid ---


def test_sample_grid_axes_and_png(tmp_path):
    imgs = make_blobs(1).images[:40]
    fig = sample_grid(imgs, rows=4, cols=8)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 32
    np.testing.assert_array_equal(fig.axes[5].images[0].get_array(), imgs[5])
    assert_png(save_figure(fig, tmp_path / "samples.png"))
    # Fewer images than cells: one axes per image, titles drawn.
    fig = sample_grid(imgs[:3], titles=["a", "b", "c"])
    assert len(fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes] == ["a", "b", "c"]


def test_sample_grid_bad_input():
    with pytest.raises(ValueError, match=r"images must have shape \(n, H, W\)"):
        sample_grid(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="titles must have one entry per image"):
        sample_grid(np.zeros((3, 8, 8)), titles=["a"])


# ---------------------------------------------------------- label_regions ---


@pytest.mark.parametrize("p", [2, 3, 8])
def test_label_regions_draws_weak_labels(p, tmp_path):
    fig = label_regions(p)
    assert len(fig.axes) == 2
    expected = weak_labels(grid_factors(), p).reshape(64, 64, 2)  # row c1, col c2
    for ax, j, name in zip(fig.axes, (0, 1), ("angle", "distance")):
        assert ax.get_title() == f"{name} label (p={p})"
        np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), expected[..., j])
        assert {t.get_text() for t in ax.texts} == {str(k) for k in range(p)}
    angle, dist = label_maps(p)
    # Corners, from the conventions: φ = 0 straight down the row axis, φ = π/2
    # along the top row; (0, 0) is distance bin 0 and (63, 63) the last one.
    assert angle[63, 0] == 0 and angle[0, 63] == p - 1
    assert dist[0, 0] == 0 and dist[63, 63] == p - 1
    if p == 2:
        assert_png(save_figure(fig, tmp_path / "labels.png"))


def test_label_regions_sample_panel_and_errors():
    img = make_blobs(1).images[100]
    assert len(label_regions(3, sample=img).axes) == 3
    with pytest.raises(ValueError, match=r"sample must be one \(64, 64\) image"):
        label_regions(3, sample=np.zeros((2, 64, 64)))
    with pytest.raises(ValueError, match="label dimension p"):
        label_regions(1)


# ---------------------------------------------------------- latent_figure ---


def _latent_inputs(n=4, K=3, T=5, hw=16):
    rng = np.random.default_rng(0)
    return (rng.uniform(size=(n, hw, hw)), rng.uniform(size=(n, hw, hw)),
            rng.uniform(size=(K, T, hw, hw)), rng.normal(size=(K, 64, 64)))


def test_latent_figure_layout(tmp_path):
    orig, rec, trav, heat = _latent_inputs(n=4, K=3, T=5)
    fig = latent_figure(orig, rec, trav, heat, title="model")
    # 2 image rows of n, K rows of T traversal cells + 1 heat map, 1 colour bar.
    assert len(fig.axes) == 2 * 4 + 3 * (5 + 1) + 1
    assert_png(save_figure(fig, tmp_path / "latent.png"))

    fig = latent_figure(orig, rec, trav, heat, order=[2, 0], vlim=2.0)
    assert len(fig.axes) == 2 * 4 + 2 * (5 + 1) + 1
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert labels == ["orig.", "recon.", "z2", "z0"]
    heat_images = [ax.images[0] for ax in fig.axes if ax.images and ax.images[0].cmap.name == "jet"]
    assert len(heat_images) == 2
    np.testing.assert_array_equal(heat_images[0].get_array(), heat[2])  # first row is z2
    assert heat_images[0].get_clim() == (-2.0, 2.0)  # fixed scale, not autoscaled


def test_latent_figure_bad_shapes():
    orig, rec, trav, heat = _latent_inputs()
    with pytest.raises(ValueError, match="reconstructions must match"):
        latent_figure(orig, rec[:2], trav, heat)
    with pytest.raises(ValueError, match=r"traversals must have shape \(K, T, H, W\)"):
        latent_figure(orig, rec, trav[0], heat)
    with pytest.raises(ValueError, match="heatmaps must have shape"):
        latent_figure(orig, rec, trav, heat[:2])
    with pytest.raises(ValueError, match="order must list distinct latent indices"):
        latent_figure(orig, rec, trav, heat, order=[0, 3])


# ---------------------------------------------------------- latent_scatter ---


def test_latent_scatter_subsamples_deterministically(tmp_path):
    f = grid_factors(variants=8)  # N = 32,768 > 20,000
    mu2 = np.random.default_rng(1).normal(size=(len(f), 2))
    fig = latent_scatter(mu2, f, title="t")
    assert len(fig.axes) == 4  # two scatters, two colour bars
    offsets = fig.axes[0].collections[0].get_offsets()
    assert len(offsets) == 20_000
    again = latent_scatter(mu2, f).axes[0].collections[0].get_offsets()
    np.testing.assert_array_equal(offsets, again)
    assert_png(save_figure(fig, tmp_path / "scatter.png"))


def test_latent_scatter_bad_shapes():
    f = grid_factors(size=8)
    with pytest.raises(ValueError, match=r"mu2 must have shape \(N, 2\)"):
        latent_scatter(np.zeros((len(f), 3)), f)
    with pytest.raises(ValueError, match="factors must have shape"):
        latent_scatter(np.zeros((len(f), 2)), f[:-1])


# -------------------------------------------------------- mse_distributions ---


def test_mse_distributions(tmp_path):
    per_model = {
        "tcvae": {"polar": np.array([100.0, 300.0, 1000.0]), "cartesian": np.array([0.6, 2.0, 50.0])},
        "wela_p3": {"polar": np.array([0.7, np.nan, 4.0, np.nan]),
                    "cartesian": np.array([10.0, np.nan, 20.0, 30.0])},
    }
    fig = mse_distributions(per_model)
    assert len(fig.axes) == 2
    polar_ax, cart_ax = fig.axes
    assert polar_ax.get_yscale() == "log"
    ticks = [t.get_text() for t in polar_ax.get_xticklabels()]
    assert ticks == ["tcvae", "wela_p3\n(2 diverged)"]
    assert [t.get_text() for t in cart_ax.get_xticklabels()][1] == "wela_p3\n(1 diverged)"
    # Point collections: 3 finite tcvae seeds, 2 finite wela_p3 seeds.
    points = [c for c in polar_ax.collections if isinstance(c, PathCollection)]  # not the median bars
    assert [len(c.get_offsets()) for c in points] == [3, 2]
    # Jitter is deterministic and stays within ±0.25 of the model's x position.
    xs = points[1].get_offsets()[:, 0]
    assert np.all(np.abs(xs - 1) <= 0.25)
    again = [c for c in mse_distributions(per_model).axes[0].collections if isinstance(c, PathCollection)]
    np.testing.assert_array_equal(again[1].get_offsets()[:, 0], xs)
    assert_png(save_figure(fig, tmp_path / "mse.png"))


def test_mse_distributions_median_bar():
    fig = mse_distributions({"m": {"polar": np.array([1.0, 9.0, 3.0]), "cartesian": np.array([2.0, 4.0])}})
    polar_ax, cart_ax = fig.axes
    bars = [c for c in polar_ax.collections if isinstance(c, LineCollection)]
    assert bars[0].get_segments()[0][0][1] == 3.0  # median of (1, 9, 3)
    bars = [c for c in cart_ax.collections if isinstance(c, LineCollection)]
    assert bars[0].get_segments()[0][0][1] == 3.0  # median of (2, 4)


def test_mse_distributions_bad_input():
    with pytest.raises(ValueError, match="non-empty dict"):
        mse_distributions({})
    with pytest.raises(ValueError, match=r"per_model\['m'\] has no 'cartesian' entry"):
        mse_distributions({"m": {"polar": np.ones(3)}})
    with pytest.raises(ValueError, match="1-D array of per-seed MSE"):
        mse_distributions({"m": {"polar": np.ones((3, 2)), "cartesian": np.ones(3)}})


# ------------------------------------------------------------- numpy glue ---


def test_heatmaps_from_mu_recovers_position():
    # μ = factors (c1, c2) in the data set's own order: the heat map of latent 0
    # is the row index and of latent 1 the column index, exactly.
    blobs = make_blobs(2)
    heat = heatmaps_from_mu(blobs.factors)
    assert heat.shape == (2, 64, 64)
    rows, cols = np.meshgrid(np.arange(64), np.arange(64), indexing="ij")
    np.testing.assert_array_equal(heat[0], rows)
    np.testing.assert_array_equal(heat[1], cols)


def test_heatmaps_from_mu_averages_variants():
    # size 2, V = 2, K = 1: samples (pos 0: 0, 1), (pos 1: 2, 3), ... → means 0.5, 2.5, 4.5, 6.5.
    heat = heatmaps_from_mu(np.arange(8.0)[:, None], size=2)
    np.testing.assert_array_equal(heat, [[[0.5, 2.5], [4.5, 6.5]]])


def test_heatmaps_from_mu_bad_shapes():
    with pytest.raises(ValueError, match="multiple of size²=4096"):
        heatmaps_from_mu(np.zeros((4097, 2)))
    with pytest.raises(ValueError, match=r"mu must have shape \(N, K\)"):
        heatmaps_from_mu(np.zeros(4096))


def test_traversal_grid_with_linear_decoder():
    # Fake decoder: image = z0·A + z1·B, so every cell has a hand-computable value.
    A = np.arange(6.0).reshape(2, 3)
    B = np.ones((2, 3))
    calls = []

    def decode(z):
        calls.append((z.shape, z.dtype))
        return z[:, 0, None, None] * A + z[:, 1, None, None] * B

    base = np.array([0.5, -1.0])
    out = traversal_grid(decode, base, steps=3, limit=3.0)  # values -3, 0, +3
    assert out.shape == (2, 4, 2, 3)
    assert calls == [((7, 2), np.float32)]  # one batched call: base + K·steps
    np.testing.assert_allclose(out[:, 0], [0.5 * A - B] * 2)  # base image in both rows
    np.testing.assert_allclose(out[0, 1:], [-3 * A - B, 0 * A - B, 3 * A - B])  # z0 traversed
    np.testing.assert_allclose(out[1, 1:], [0.5 * A - 3 * B, 0.5 * A, 0.5 * A + 3 * B])  # z1


def test_traversal_grid_bad_input():
    with pytest.raises(ValueError, match=r"base_z must be one latent vector"):
        traversal_grid(lambda z: np.zeros((len(z), 4, 4)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="decode must map"):
        traversal_grid(lambda z: np.zeros((3, 4, 4)), np.zeros(2))


def test_traversal_grid_feeds_latent_figure():
    # End to end: traversal_grid + heatmaps_from_mu produce latent_figure's inputs.
    K = 2
    trav = traversal_grid(lambda z: np.tile(z[:, :1, None], (1, 8, 8)) / 6 + 0.5, np.zeros(K), steps=4)
    heat = heatmaps_from_mu(np.random.default_rng(0).normal(size=(64 * 64, K)))
    fig = latent_figure(np.zeros((3, 8, 8)), np.zeros((3, 8, 8)), trav, heat)
    assert len(fig.axes) == 2 * 3 + K * (5 + 1) + 1


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
