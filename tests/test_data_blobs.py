"""welavae.data.blobs: known answers for the Blobs generator and weak labels (paper §4.1, CONTRIBUTING.md "Conventions")."""
import math

import numpy as np
import pytest

from welavae.data import label_edges, make_blobs, polar_factors, weak_labels
from welavae.data.dataset import to_float


@pytest.fixture(scope="module")
def blobs3():
    return make_blobs(3, seed=1)


def grid():
    c1, c2 = np.meshgrid(np.arange(64), np.arange(64), indexing="ij")
    return np.stack([c1.ravel(), c2.ravel()], 1).astype(float)


def test_shapes_range_and_size(blobs3):
    assert blobs3.images.shape == (64 * 64 * 3, 64, 64)
    assert blobs3.images.dtype == np.float32
    assert blobs3.images.min() >= 0.0 and blobs3.images.max() <= 1.0
    assert blobs3.factors.shape == (64 * 64 * 3, 2)


def test_ordering_index_maps_to_position_and_variant(blobs3):
    # index = (c1*64 + c2)*V + v  (CONTRIBUTING.md, "Conventions")
    v_count = 3
    for c1, c2, v in [(0, 0, 0), (0, 1, 2), (5, 7, 1), (63, 63, 2), (40, 3, 0)]:
        i = (c1 * 64 + c2) * v_count + v
        assert tuple(blobs3.factors[i]) == (c1, c2)
    mu = blobs3.factors.reshape(64, 64, v_count, 2)
    assert np.all(mu[:, :, :, 0] == np.arange(64)[:, None, None])
    assert np.all(mu[:, :, :, 1] == np.arange(64)[None, :, None])


@pytest.mark.parametrize("shape", ["gaussian", "disk"])
def test_brightest_pixel_is_the_centre(shape):
    b = make_blobs(2, seed=3, shape=shape)
    for c1, c2 in [(10, 20), (32, 32), (50, 5), (12, 60)]:
        for v in range(2):
            img = b.images[(c1 * 64 + c2) * 2 + v]
            r, c = np.unravel_index(np.argmax(img), img.shape)
            assert (r, c) == (c1, c2)
            assert img[c1, c2] == 1.0  # peak 1 (quantised 255/255)


def test_variants_differ_and_seed_reproducible():
    a, b, c = make_blobs(2, seed=0), make_blobs(2, seed=0), make_blobs(2, seed=1)
    assert np.array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    assert not np.array_equal(a.images[0], a.images[1])  # two variants of (0, 0)
    assert np.all((a.sigmas >= 2.0) & (a.sigmas <= 4.0))


def test_gaussian_profile_matches_closed_form():
    b = make_blobs(1, seed=5)
    i = 30 * 64 + 30
    s = b.sigmas[i]
    expected = np.exp(-((np.arange(64) - 30) ** 2) / (2 * s * s))
    # Row through the centre is exp(-(c-30)^2 / 2σ²), quantised to 1/255.
    assert np.allclose(b.images[i, 30], expected, atol=0.5 / 255 + 1e-7)


def test_bad_generator_arguments():
    with pytest.raises(ValueError, match="variants_per_position"):
        make_blobs(0)
    with pytest.raises(ValueError, match="shape"):
        make_blobs(1, shape="square")


def test_polar_factors_known_points():
    pf = polar_factors(np.array([[0, 0], [10, 0], [0, 10], [3, 4], [63, 63]]))
    assert np.allclose(pf[:, 0], [0, 0, math.pi / 2, math.atan2(4, 3), math.pi / 4])
    assert np.allclose(pf[:, 1], [0, 10, 10, 5, 63 * math.sqrt(2)])


# Hand-checked bins.  Angle step π/(2p), distance step 64√2/p; bin k holds k·step < v <= (k+1)·step.
@pytest.mark.parametrize(
    "point,p,expected",
    [
        ((0, 0), 2, (0, 0)),
        ((0, 0), 8, (0, 0)),
        ((63, 0), 2, (0, 1)),  # φ=0; d=63 > 32√2 ≈ 45.25 → distance bin 1
        ((0, 63), 2, (1, 1)),
        ((63, 63), 2, (0, 1)),  # φ=π/4 on the p=2 edge → lower bin
        ((32, 32), 2, (0, 0)),  # d = 32√2 exactly on the p=2 distance edge → lower bin
        ((32, 32), 4, (1, 1)),  # φ=π/4 = 2·(π/8): upper edge of bin 1; d=32√2 = 2·16√2: bin 1
        ((63, 63), 3, (1, 2)),
        ((10, 10), 3, (1, 0)),
        ((63, 0), 5, (0, 3)),  # d=63; step 18.10; 63/18.10 = 3.48 → bin 3
        ((0, 63), 5, (4, 3)),
    ],
)
def test_weak_labels_hand_checked(point, p, expected):
    assert tuple(weak_labels(np.array([point], float), p)[0]) == expected


def test_diagonal_is_lower_angle_bin_for_even_p():
    diag = np.array([[c, c] for c in range(1, 64)], float)
    for p in (2, 4, 6, 8):
        assert np.all(weak_labels(diag, p)[:, 0] == p // 2 - 1)


@pytest.mark.parametrize("p", range(2, 9))
def test_one_bin_per_label_and_all_bins_used(p):
    lab = weak_labels(grid(), p)
    assert lab.dtype == np.int64 and lab.shape == (4096, 2)
    assert lab.min() == 0 and lab.max() == p - 1
    for j in range(2):
        assert set(np.unique(lab[:, j])) == set(range(p))


def test_bin_counts_p2():
    # Angle: c2 <= c1 (diagonal included) holds 64·65/2 = 2080 points, the rest 2016.
    # Distance: c1² + c2² <= 2048 (= (32√2)²) holds 1655 lattice points (counted below by hand formula).
    lab = weak_labels(grid(), 2)
    assert np.bincount(lab[:, 0]).tolist() == [2080, 2016]
    inside = sum(1 for a in range(64) for b in range(64) if a * a + b * b <= 2048)
    assert inside == 1655
    assert np.bincount(lab[:, 1]).tolist() == [1655, 2441]


def test_labels_match_a_plain_loop():
    g = grid()
    for p in (3, 7):
        a_step, d_step = (math.pi / 2) / p, 64 * math.sqrt(2) / p
        lab = weak_labels(g, p)
        for (c1, c2), (la, ld) in zip(g[::37], lab[::37]):
            phi, d = math.atan2(c2, c1), math.hypot(c1, c2)
            assert la == max(0, math.ceil(phi / a_step - 1e-9) - 1)
            assert ld == max(0, math.ceil(d / d_step - 1e-9) - 1)


def test_label_edges():
    a, d = label_edges(4)
    assert np.allclose(a, [math.pi / 8, math.pi / 4, 3 * math.pi / 8])
    assert np.allclose(d, [16 * math.sqrt(2), 32 * math.sqrt(2), 48 * math.sqrt(2)])


@pytest.mark.parametrize("p", [1, 0, -3, 2.5, True])
def test_bad_p(p):
    with pytest.raises(ValueError, match="label dimension"):
        weak_labels(np.zeros((1, 2)), p)


def test_bad_factors():
    with pytest.raises(ValueError, match="NaN"):
        weak_labels(np.array([[np.nan, 1.0]]), 2)
    with pytest.raises(ValueError, match="canvas"):
        weak_labels(np.array([[-1.0, 1.0]]), 2)
    with pytest.raises(ValueError, match="canvas"):
        polar_factors(np.array([[65.0, 1.0]]))
    with pytest.raises(ValueError, match="shape"):
        weak_labels(np.zeros((3, 3)), 2)


def test_blobs_float_images_are_their_8_bit_pixels_through_to_float():
    b = make_blobs(1)
    pixels = np.rint(b.images * 255).astype(np.uint8)
    assert to_float(pixels).tobytes() == b.images.tobytes()  # so Blobs stays uint8 (welavae.data.load) without a changed number
