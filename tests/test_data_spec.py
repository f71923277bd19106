"""welavae.data.spec: weak labels from a spec (hand-binned values, the paper's Blobs labels) and its pair."""
import math

import numpy as np
import pytest
from fixtures import SPEC, TINY, bounded_allocation, cli_refuses, one_sentence
from hypothesis import given, settings
from hypothesis import strategies as st

from welavae.data.blobs import weak_labels as blobs_weak_labels
from welavae.data.spec import (
    CustomTerm,
    LabelPair,
    Term,
    bin_coordinate,
    label_pair,
    parse_spec,
    weak_labels,
    weak_labels_from_spec,
)


def blobs_grid():
    c1, c2 = np.meshgrid(np.arange(64), np.arange(64), indexing="ij")
    return np.stack([c1.ravel(), c2.ravel()], 1).astype(float)


@pytest.mark.parametrize("p", range(2, 9))
def test_blobs_spec_equals_the_papers_labels(p):
    # CONTRIBUTING.md "Conventions": angle over [0, π/2], distance over [0, 64√2] (the canvas, not the data's max 63√2).
    f = blobs_grid()
    expected = blobs_weak_labels(f, p)
    got = weak_labels(f, f"angle(c1,c2):{p}, distance(c1,c2):{p}")
    np.testing.assert_array_equal(got, expected)
    res = weak_labels_from_spec(f, f"angle(c1,c2):{p},distance(c1,c2):{p}", ("c1", "c2"), factor_ranges=((0, 64), (0, 64)))
    np.testing.assert_array_equal(res.labels, expected)
    assert res.dims == (p, p) and res.names == ("angle(c1,c2)", "distance(c1,c2)")
    np.testing.assert_allclose(res.coordinates[:, 0], np.arctan2(f[:, 1], f[:, 0]))
    np.testing.assert_allclose(res.coordinates[:, 1], np.hypot(f[:, 0], f[:, 1]))


def test_int_spec_is_the_blobs_function():
    f = blobs_grid()
    np.testing.assert_array_equal(weak_labels(f, 3), blobs_weak_labels(f, 3))


def test_bins_of_class_indices_by_hand():
    # 32 classes 0..31 over [0, 31], p = 2: step 15.5 → 0..15 in bin 0, 16..31 in bin 1.
    f = np.arange(32.0)[:, None]
    res = weak_labels_from_spec(f, "bins(posX):2", ["posX"], factor_sizes=[32])
    np.testing.assert_array_equal(res.labels[:, 0], (np.arange(32) >= 16).astype(int))
    # 3 classes, p = 3: step 2/3 → 0, 1, 2 each its own bin.
    res = weak_labels_from_spec(np.array([[0.0], [1.0], [2.0]]), "bins(shape):3", ["shape"], factor_sizes=[3])
    np.testing.assert_array_equal(res.labels[:, 0], [0, 1, 2])


def test_edge_rule_value_on_an_edge_goes_to_the_lower_bin():
    # [0, 4] in 2 bins: 0 → 0, 2 (on the edge) → 0, 2.5 → 1, 4 → 1.
    np.testing.assert_array_equal(bin_coordinate([0, 2, 2.5, 4], 0, 4, 2), [0, 0, 1, 1])
    # lo ≠ 0: [-2, 2] in 4 bins of width 1: -2 → 0, -1 → 0, -0.5 → 1, 2 → 3.
    np.testing.assert_array_equal(bin_coordinate([-2, -1, -0.5, 2], -2, 2, 4), [0, 0, 1, 3])


def test_angle_and_distance_about_the_centre_by_hand():
    # Ranges [0, 4] x [0, 4], centre (2, 2); the four points one unit away along ±a, ±b.
    f = np.array([[3.0, 2.0], [2.0, 3.0], [1.0, 2.0], [2.0, 1.0], [4.0, 4.0]])
    res = weak_labels_from_spec(
        f, "angle(a,b,origin=centre):4, distance(a,b,origin=center):2", ["a", "b"], factor_ranges=[(0, 4), (0, 4)]
    )
    # angle 0, π/2, π, 3π/2 and π/4: quadrant bins of width π/2, edges in the lower bin.
    np.testing.assert_allclose(res.coordinates[:, 0], [0, math.pi / 2, math.pi, 3 * math.pi / 2, math.pi / 4])
    np.testing.assert_array_equal(res.labels[:, 0], [0, 0, 1, 2, 0])
    # distance range [0, hypot(4, 4)/2 = 2√2], 2 bins split at √2: 1 → 0, 2√2 → 1.
    np.testing.assert_allclose(res.coordinates[:, 1], [1, 1, 1, 1, 2 * math.sqrt(2)])
    np.testing.assert_array_equal(res.labels[:, 1], [0, 0, 0, 0, 1])
    assert res.names == ("angle(a,b,origin=centre)", "distance(a,b,origin=centre)")


def test_sum_and_diff_are_the_rotated_axes():
    # a in [0, 2], b in [0, 4]: sum over [0, 6], diff a−b over [-4, 2].
    f = np.array([[0.0, 0.0], [2.0, 4.0], [2.0, 0.0], [0.0, 4.0], [1.0, 1.0]])
    res = weak_labels_from_spec(f, "sum(a,b):3, diff(a,b):3", ["a", "b"], factor_ranges=[(0, 2), (0, 4)])
    np.testing.assert_array_equal(res.coordinates[:, 0], [0, 6, 2, 4, 2])
    np.testing.assert_array_equal(res.coordinates[:, 1], [0, -2, 2, -4, 0])
    np.testing.assert_array_equal(res.labels[:, 0], [0, 2, 0, 1, 0])  # edges 2, 4
    np.testing.assert_array_equal(res.labels[:, 1], [1, 0, 2, 0, 1])  # edges -2, 0: on an edge → the lower bin


def test_ranges_come_from_the_factor_space_not_the_sample():
    # A sample that only reaches class 10 of 32 still bins over [0, 31].
    f = np.array([[0.0], [10.0]])
    assert weak_labels_from_spec(f, "bins(x):2", ["x"], factor_sizes=[32]).labels[:, 0].tolist() == [0, 0]
    assert weak_labels_from_spec(f, "bins(x):2", ["x"]).labels[:, 0].tolist() == [0, 1]  # observed range


def test_custom_term_and_term_objects():
    f = blobs_grid()
    custom = CustomTerm("row", lambda x: x[:, 0], 2, range=(0, 64))
    res = weak_labels_from_spec(f, [Term("angle", ("c1", "c2"), 4), custom], ("c1", "c2"), factor_ranges=[(0, 64)] * 2)
    np.testing.assert_array_equal(res.labels[:, 0], blobs_weak_labels(f, 4)[:, 0])
    np.testing.assert_array_equal(res.labels[:, 1], (f[:, 0] > 32).astype(int))
    assert res.names == ("angle(c1,c2)", "row")


def test_parse_ignores_whitespace():
    assert parse_spec(" angle( posX , posY ,origin = centre ) : 3 ,bins(shape):3") == (
        Term("angle", ("posX", "posY"), 3, "centre"),
        Term("bins", ("shape",), 3),
    )


@pytest.mark.parametrize(
    "spec, words",
    [
        ("angle(posX,posY)", "cannot read the weak-label term 'angle(posX,posY)'"),
        ("polar(posX,posY):3", "unknown coordinate 'polar'"),
        ("angle(posX):3", "angle takes 2 factors, got 1"),
        ("bins(posX,origin=centre):3", "unknown option 'origin=centre'"),
        ("angle(posX,posY,origin=middle):3", "origin must be corner or centre"),
        ("bins(posX):1", "p >= 2"),
        ("angle(posX,posY:3", "unbalanced '('"),
        ("", "non-empty string"),
        ("bins(posZ):2", "factor 'posZ' in the weak-label term bins(posZ):2 is not one of posX, posY"),
        ("bins(posX):2, bins(posX):3", "appears twice"),
    ],
)
def test_refusals_name_the_token(spec, words):
    f = np.zeros((2, 2))
    f[1] = 1
    with pytest.raises(ValueError, match=None) as e:
        weak_labels_from_spec(f, spec, ["posX", "posY"], factor_sizes=[2, 2])
    assert words in str(e.value)
    assert "\n" not in str(e.value)


def test_factor_outside_its_range_is_refused():
    with pytest.raises(ValueError, match=r"factor 0 takes values in \[0, 32\], outside its range \[0, 31\]"):
        weak_labels_from_spec(np.array([[0.0], [32.0]]), "bins(x):2", ["x"], factor_sizes=[32])


def test_a_spec_of_the_wrong_type_is_refused():
    for bad in (True, 2.5, None):
        with pytest.raises(ValueError, match="a weak-label spec is a string like"):
            weak_labels(blobs_grid()[:3], bad)


def test_label_pair_names_the_pair_and_its_system():
    assert label_pair(SPEC) == LabelPair(("posX", "posY"), "polar", "corner")
    assert label_pair("bins(shape):3, sum(posX,posY):2, diff(posX,posY):2") == LabelPair(("posX", "posY"), "rotated")
    assert label_pair("angle(posX,posY,origin=centre):4") == LabelPair(("posX", "posY"), "polar", "centre")
    assert label_pair("bins(posY):3, bins(scale):2") == LabelPair(("posY", "scale"), "cartesian")
    assert label_pair("bins(shape):3") is None


# ------------------------------------------------------------------ refusals at the edges (issue 31)

POS = np.stack(np.unravel_index(np.arange(32 * 32), (32, 32)), 1).astype(float)  # dSprites' posX × posY grid


@pytest.mark.parametrize("spec, p, k, where", [
    ("bins(posX):1000000", 1000000, 32, "on the factor grid"),  # posX has 32 classes
    ("bins(posX):100000000", 100000000, 32, "on the factor grid"),  # p = 10^8 asked for 47.7 GiB
    ("bins(posX):99999999999999999999999", 99999999999999999999999, 32, "on the factor grid"),  # beyond int64
    ("sum(posX,posY):64", 64, 63, "on the factor grid"),  # 0 … 62: n_a + n_b − 1 values
])
def test_p_beyond_the_distinct_values_of_its_coordinate_is_refused_before_allocating(spec, p, k, where):
    with bounded_allocation(10**6), pytest.raises(ValueError) as e:
        weak_labels_from_spec(POS, spec, ["posX", "posY"], factor_sizes=[32, 32])
    assert one_sentence(e.value) == (f"the weak-label term {spec.replace(' ', '')} asks for {p} classes but its "
                                     f"coordinate takes only {k} distinct values {where}; choose p <= {k}")


def test_p_up_to_the_bound_is_taken_and_the_bound_is_the_factor_grid_not_the_subset():
    # 32 classes, p = 32: class k → bin k (step 31/32 < 1).  A subset of 5 rows still allows the grid's 32.
    assert weak_labels_from_spec(POS, "bins(posX):32", ["posX", "posY"], factor_sizes=[32, 32]).dims == (32,)
    sub = POS[::200]  # 6 rows, posX 0, 6, 12, 18, 25, 31
    assert weak_labels_from_spec(sub, "bins(posX):32", ["posX", "posY"], factor_sizes=[32, 32]).dims == (32,)
    # Without the grid (observed ranges) the bound is the data's: 6 distinct values.
    with pytest.raises(ValueError, match="takes only 6 distinct values in the data; choose p <= 6"):
        weak_labels_from_spec(sub, "bins(posX):7", ["posX", "posY"])


@pytest.mark.parametrize("spec", ["angle(posX,posX):2", "diff(posX,posX):3", "sum(posY,posY):2",
                                  "distance(posX,posX,origin=centre):2"])
def test_a_two_factor_term_naming_one_factor_twice_is_refused(spec):
    # angle(a,a) = π/4 everywhere and diff(a,a) = 0: one class; sum and distance of (a,a) are bins(a) rescaled.
    with pytest.raises(ValueError) as e:
        weak_labels_from_spec(POS, spec, ["posX", "posY"], factor_sizes=[32, 32])
    assert "names the factor" in one_sentence(e.value) and "twice" in str(e.value)
    with pytest.raises(ValueError, match="twice"):
        Term("angle", ("a", "a"), 2)


def test_factor_names_given_twice_are_refused():
    with pytest.raises(ValueError) as e:
        weak_labels_from_spec(POS, "bins(posX):2", ["posX", "posX"], factor_sizes=[32, 32])
    assert one_sentence(e.value) == "factor_names names 'posX' twice; each factor column needs its own name"


@pytest.mark.parametrize("p", [1, 0, True, 2.5])
def test_a_term_object_needs_an_integer_p_of_at_least_two(p):
    with pytest.raises(ValueError, match="a weak label needs p >= 2 classes"):
        weak_labels_from_spec(POS, [Term("bins", ("posX",), p)], ["posX", "posY"], factor_sizes=[32, 32])


def test_cli_refuses_a_p_beyond_the_factor_and_writes_nothing(tmp_path, capsys):
    from welavae.data.sprites import write_sprites_npz

    twin = write_sprites_npz(tmp_path / "twin.npz", keep={"scale": [0], "orientation": [0], "posX": [0, 1, 2, 3],
                                                          "posY": [0, 1]}, compress=False)
    line = cli_refuses(capsys, "train", "--model", "wela", "--dataset", "sprites", "--data-path", twin,
                       "--grid", "1,3,1,1,4,2", "--weak-labels", "bins(posX):1000000", *TINY,
                       "--out", tmp_path / "run", out=tmp_path / "run")
    assert line.endswith("bins(posX):1000000 asks for 1000000 classes but its coordinate takes only 4 distinct "
                         "values on the factor grid; choose p <= 4")


# A spec of any text over the spec's alphabet, and of terms with any kind, factors, origin and p.
_TERMS = st.builds(
    "{}({}{}):{}".format,
    st.sampled_from(["bins", "angle", "distance", "sum", "diff", "polar", ""]),
    st.one_of(st.sampled_from(["a", "b", "a,b", "b,a", "a,a", "a,c"]),
              st.lists(st.sampled_from(["a", "b", "c", "a b", "1x", ""]), max_size=3).map(",".join)),
    st.sampled_from(["", "", ",origin=centre", ",origin=middle", ",p=3"]),
    st.one_of(st.integers(0, 40), st.integers(10**6, 10**30)),
)
_SPECS = st.one_of(st.text(alphabet="abcdefginorstuxm(),:= 0123456789", max_size=40),
                   st.lists(_TERMS, min_size=1, max_size=3).map(", ".join))


@settings(max_examples=100, deadline=None, derandomize=True)
@given(spec=_SPECS, sizes=st.sampled_from([None, (4, 5, 1)]))
def test_any_spec_gives_valid_labels_or_one_sentence(spec, sizes):
    f = np.stack(np.unravel_index(np.arange(20), (4, 5, 1)), 1).astype(float)  # a 4 × 5 grid; c constant
    with bounded_allocation(10**5):  # the grid is 20 points: nothing of size p may be built
        try:
            res = weak_labels_from_spec(f, spec, ["a", "b", "c"], factor_sizes=sizes)
        except ValueError as e:
            one_sentence(e)
            return
    assert res.labels.shape == (20, len(res.dims)) and res.coordinates.shape == res.labels.shape
    for j, p in enumerate(res.dims):
        assert 2 <= p <= 20 and 0 <= res.labels[:, j].min() and res.labels[:, j].max() < p
