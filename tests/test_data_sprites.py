"""The dSprites twin: dSprites' grid layout and values, geometric invariants, and the reader round trip."""
import math

import numpy as np
import pytest
from fixtures import cli_refuses, one_sentence

from welavae.data.published import load_benchmark, small_grid
from welavae.data.sprites import render_sprites, sprite_grid, sprite_template, sprite_values, write_sprites_npz


def classes_of(shape=0, scale=5, orient=0, x=0, y=0):
    return np.array([[0, shape, scale, orient, x, y]])


def centroid(img):
    r, c = np.nonzero(img)
    return r.mean(), c.mean()


def test_full_grid_is_dsprites_c_order():
    classes, sizes = sprite_grid()
    assert sizes == (1, 3, 6, 40, 32, 32) and len(classes) == 737_280
    # dSprites: posY varies fastest, then posX, orientation, scale, shape (its README).
    for i in (0, 1, 31, 32, 1024, 40 * 1024, 737_279):
        assert tuple(classes[i]) == np.unravel_index(i, sizes)
    assert classes[1].tolist() == [0, 0, 0, 0, 0, 1] and classes[32].tolist() == [0, 0, 0, 0, 1, 0]


def test_values_are_the_ones_dsprites_stores():
    classes, _ = sprite_grid({"orientation": [0, 1, 39], "posX": [0, 31], "scale": [0, 5]})
    v = sprite_values(classes)
    assert set(v[:, 0]) == {1.0} and set(v[:, 1]) == {1.0, 2.0, 3.0}
    assert set(v[:, 2]) == {0.5, 1.0}
    # dSprites' orientations: linspace(0, 2π, 40), step 0.16110732 = 2π/39.
    np.testing.assert_allclose(sorted(set(v[:, 3])), [0.0, 2 * math.pi / 39, 2 * math.pi])
    assert set(v[:, 4]) == {0.0, 1.0}


def test_images_are_binary_and_the_three_shapes_differ():
    imgs = render_sprites(np.concatenate([classes_of(shape=s, x=10, y=20) for s in range(3)]))
    assert imgs.dtype == np.uint8 and set(np.unique(imgs)) == {0, 1}
    assert not np.array_equal(imgs[0], imgs[1]) and not np.array_equal(imgs[1], imgs[2])
    assert not np.array_equal(imgs[0], imgs[2])


@pytest.mark.parametrize("shape", range(3))
def test_scale_grows_the_area_about_as_its_square(shape):
    areas = render_sprites(np.concatenate([classes_of(shape=shape, scale=k) for k in range(6)])).sum(axis=(1, 2))
    assert np.all(np.diff(areas) > 0)
    # Area ∝ scale²: scale 1 against 0.5 gives 4×, up to the rasterisation of the outline.
    assert areas[5] / areas[0] == pytest.approx(4.0, rel=0.15)


def test_square_turned_a_quarter_is_itself_and_orientation_turns():
    for scale in (0.5, 0.8, 1.0):
        np.testing.assert_array_equal(sprite_template(0, scale, math.pi / 2), sprite_template(0, scale, 0.0))
    # An ellipse turned a quarter is the transposed ellipse (its axes swap), a half turn is itself.
    np.testing.assert_array_equal(sprite_template(1, 1.0, math.pi / 2), sprite_template(1, 1.0, 0.0).T)
    np.testing.assert_array_equal(sprite_template(1, 1.0, math.pi), sprite_template(1, 1.0, 0.0))
    # The heart (one-fold symmetric) turned a half is upside down: its rows reversed.
    np.testing.assert_array_equal(sprite_template(2, 1.0, math.pi), sprite_template(2, 1.0, 0.0)[::-1, ::-1])
    # On the grid, dSprites' first and last orientation (0 and 2π) are the same pose; others differ.
    imgs = render_sprites(np.concatenate([classes_of(shape=2, orient=o) for o in (0, 5, 39)]))
    np.testing.assert_array_equal(imgs[0], imgs[2])
    assert not np.array_equal(imgs[0], imgs[1])


def test_counter_clockwise_on_screen():
    # An ellipse long along the columns; after a small counter-clockwise turn its right end rises
    # (smaller row index) — row 0 is the top of the image.
    t = sprite_template(1, 1.0, 0.3)
    right = np.nonzero(t[:, 47 + 12])[0].mean()
    left = np.nonzero(t[:, 47 - 12])[0].mean()
    assert right < 47 < left


def test_position_moves_the_centroid_linearly_by_whole_pixels():
    for shape in range(3):
        xs = render_sprites(np.concatenate([classes_of(shape=shape, orient=7, x=i, y=3) for i in range(32)]))
        ys = render_sprites(np.concatenate([classes_of(shape=shape, orient=7, x=3, y=j) for j in range(32)]))
        cx = np.array([centroid(im) for im in xs])
        cy = np.array([centroid(im) for im in ys])
        # posX: column += 1 px per class, row fixed; posY: row += 1 px per class, column fixed.
        np.testing.assert_allclose(cx[:, 1] - cx[0, 1], np.arange(32), atol=1e-9)
        np.testing.assert_allclose(cx[:, 0], cx[0, 0], atol=1e-9)
        np.testing.assert_allclose(cy[:, 0] - cy[0, 0], np.arange(32), atol=1e-9)
        np.testing.assert_allclose(cy[:, 1], cy[0, 1], atol=1e-9)
        # The same sprite, shifted: no pixel falls off the canvas at either end.
        assert xs[0].sum() == xs[31].sum() == ys[31].sum()
        np.testing.assert_array_equal(np.roll(xs[0], 31, axis=1), xs[31])


def test_position_classes_put_the_centre_on_pixels_16_to_47():
    # The centre pixel of position class c is 16 + c (module docstring): the symmetric square
    # at classes 0 and 31 has its centroid at pixel (16, 16) and (47, 47) exactly.
    assert centroid(render_sprites(classes_of(shape=0, x=0, y=0))[0]) == (16.0, 16.0)
    assert centroid(render_sprites(classes_of(shape=0, x=31, y=31))[0]) == (47.0, 47.0)


@pytest.mark.parametrize("compress", [True, False])
def test_round_trip_through_the_dsprites_reader(tmp_path, compress):
    keep = {"scale": [0, 5], "orientation": [0, 10, 20], "posX": [0, 7, 31], "posY": [2, 30]}
    path = write_sprites_npz(tmp_path / "sprites.npz", keep=keep, compress=compress)
    classes, sizes = sprite_grid(keep)
    assert sizes == (1, 3, 2, 3, 3, 2)
    data = load_benchmark(small_grid("sprites", sizes), path)
    np.testing.assert_array_equal(data.images, render_sprites(classes).astype(bool))
    np.testing.assert_array_equal(data.factor_values, sprite_values(classes))
    np.testing.assert_array_equal(data.factors, np.stack(np.unravel_index(np.arange(len(classes)), sizes), 1))
    with np.load(path, allow_pickle=False) as z:  # plain arrays only: nothing to unpickle
        assert sorted(z.files) == ["imgs", "latents_classes", "latents_values"]
        assert z["imgs"].dtype == np.uint8 and z["latents_classes"].dtype == np.int64
    sub = load_benchmark(small_grid("sprites", sizes), path, subset=10, seed=2)
    np.testing.assert_array_equal(sub.images, render_sprites(classes[sub.indices]).astype(bool))
    assert [p.name for p in tmp_path.iterdir()] == ["sprites.npz"]  # no temporary file left


def test_refusals():
    with pytest.raises(ValueError, match="unknown factor 'size' in keep"):
        sprite_grid({"size": [0]})
    with pytest.raises(ValueError, match=r"keep\['scale'\] must be distinct class indices in 0..5"):
        sprite_grid({"scale": [6]})
    with pytest.raises(ValueError, match="orientation has 40 classes, got 40 at row 0"):
        render_sprites(np.array([[0, 0, 0, 40, 0, 0]]))
    with pytest.raises(ValueError, match=r"classes must be integer \(N, 6\)"):
        render_sprites(np.zeros((2, 5), np.int64))


# ------------------------------------------------------------------ refusals at the edges (issue 31)

def test_keep_with_a_class_beyond_int64_is_refused(tmp_path, capsys):
    with pytest.raises(ValueError) as e:
        sprite_grid({"posX": [99999999999999999999999]})
    assert one_sentence(e.value) == ("keep['posX'] must be distinct class indices in 0..31, "
                                     "got [99999999999999999999999]")
    out = tmp_path / "twin.npz"
    line = cli_refuses(capsys, "data", "--dataset", "sprites", "--keep", "posX=99999999999999999999999", "--out", out,
                       out=out)
    assert line.endswith("keep['posX'] must be distinct class indices in 0..31, got [99999999999999999999999]")


def test_keep_given_twice_for_one_factor_is_refused(tmp_path, capsys):
    out = tmp_path / "twin.npz"  # the rest of the grid kept tiny, so the old behaviour (the last wins) is quick
    line = cli_refuses(capsys, "data", "--dataset", "sprites", "--keep", "shape=0", "--keep", "scale=0", "--keep",
                       "orientation=0", "--keep", "posX=0,1", "--keep", "posY=0", "--keep", "shape=1", "--out", out,
                       out=out)
    assert "--keep" in line and "the factor 'shape' is given twice; list all its classes in one --keep shape=I,J" in line
