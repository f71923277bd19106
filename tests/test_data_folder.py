"""A user's own data (issue: beyond Blobs): image folders with a CSV of labels, .npz files, label hiding.

Every defect must be refused with one sentence naming the file (and row).
"""
import numpy as np
import pytest
from PIL import Image

from welavae.data import check_labels, hide_labels, load_image_folder, load_npz


def write_png(path, array):
    Image.fromarray((np.asarray(array) * 255).round().astype(np.uint8), mode="L").save(path)


@pytest.fixture
def folder(tmp_path):
    """Four 12x10 PNGs with known pixels and a CSV: a string label (missing once) and an integer label."""
    d = tmp_path / "imgs"
    d.mkdir()
    rng = np.random.default_rng(0)
    arrays = {}
    for name in ("a.png", "b.png", "c.png", "d.png"):
        a = rng.integers(0, 256, size=(12, 10)) / 255.0
        write_png(d / name, a)
        arrays[name] = a
    csv = tmp_path / "labels.csv"
    csv.write_text("file,shape,size\nb.png,square,1\na.png,circle,0\nc.png,,2\nd.png,square,\n")
    return d, csv, arrays


def test_folder_with_csv_reads_pixels_labels_and_classes(folder):
    d, csv, arrays = folder
    ds = load_image_folder(d, csv)
    assert ds.files == ("b.png", "a.png", "c.png", "d.png")  # the CSV's row order
    assert ds.images.shape == (4, 12, 10) and ds.images.dtype == np.float32
    assert np.allclose(ds.images[1], arrays["a.png"], atol=1e-7)  # k/255 exactly
    # strings in sorted order: circle=0, square=1; integers as given; empty cell = −1
    assert ds.label_names == ("shape", "size") and ds.label_dims == (2, 3)
    assert ds.label_classes == (("circle", "square"), ("0", "1", "2"))
    assert ds.labels.tolist() == [[1, 1], [0, 0], [-1, 2], [1, -1]]


def test_folder_without_csv_reads_every_file_sorted(folder):
    d, _, arrays = folder
    ds = load_image_folder(d)
    assert ds.labels is None and ds.files == ("a.png", "b.png", "c.png", "d.png")
    assert np.allclose(ds.images[3], arrays["d.png"], atol=1e-7)


def test_rgb_and_jpeg_are_read_as_grayscale(tmp_path):
    d = tmp_path / "rgb"
    d.mkdir()
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    rgb[..., 0] = 255  # pure red → L = 299/1000 · 255 (ITU-R 601-2, Pillow's convert("L"))
    Image.fromarray(rgb, mode="RGB").save(d / "r.png")
    Image.fromarray(rgb, mode="RGB").save(d / "r2.jpg", quality=100)
    ds = load_image_folder(d)
    assert ds.images.shape == (2, 8, 8)
    assert abs(ds.images[0, 0, 0] - round(0.299 * 255) / 255) < 1e-6
    assert abs(ds.images[1].mean() - 0.299) < 0.02  # JPEG is lossy


@pytest.mark.parametrize("defect,match", [
    ("file,shape,size\nb.png,square,1\na.png,circle,0\nc.png,,2\nzz.png,square,1\nd.png,square,0\n",
     r"row 5: 'zz.png' is not a file"),
    ("file,shape,size\nb.png,square,1\na.png,circle,0\nc.png,,2\n", r"d.png has no row"),
    ("file,shape,size\nb.png,square,1\na.png,circle,0\nc.png,,2\nd.png,square,0\nb.png,circle,1\n",
     r"row 6: 'b.png' is listed twice"),
    ("file,shape,size\nb.png,square,1\na.png,square,0\nc.png,,2\nd.png,square,0\n", r"'shape' has a single class"),
    ("file,shape,size\nb.png,square,1\na.png,circle,-1\nc.png,,2\nd.png,square,0\n", r"row 3: label 'size' = -1 is negative"),
    ("file,shape,size\nb.png,,\na.png,,\nc.png,,\nd.png,,\n", r"no observed label"),
    ("name,shape\nb.png,square\n", r"header must be 'file,"),
    ("file,shape,size\nb.png,square\n", r"row 2: 2 cells"),
])
def test_each_csv_defect_is_one_sentence_naming_file_and_row(folder, defect, match):
    d, csv, _ = folder
    csv.write_text(defect)
    with pytest.raises(ValueError, match=match) as e:
        load_image_folder(d, csv)
    assert str(csv) in str(e.value) or str(d) in str(e.value)


def test_unreadable_and_mismatched_images_are_named(folder):
    d, csv, _ = folder
    (d / "c.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"c.png is not a readable image file"):
        load_image_folder(d, csv)
    write_png(d / "c.png", np.zeros((5, 5)))
    with pytest.raises(ValueError, match=r"c.png is 5x5 pixels but .*b.png is 10x12"):
        load_image_folder(d, csv)


def test_a_label_outside_a_trained_models_classes_is_named(folder):
    d, csv, _ = folder
    with pytest.raises(ValueError, match=r"row 2: label 'shape' = 'square' is not one of its classes \['circle', 'oval'\]"):
        load_image_folder(d, csv, label_names=("shape", "size"), label_classes=(("circle", "oval"), ("0", "1", "2")))


def test_npz_with_partial_labels_and_names(tmp_path):
    p = tmp_path / "d.npz"
    images = np.random.default_rng(1).random((6, 9, 7)).astype(np.float32)
    labels = np.array([[0, 2], [1, -1], [-1, 0], [1, 1], [0, 2], [1, 0]])
    np.savez(p, images=images, labels=labels, label_names=np.array(["a", "b"]))
    ds = load_npz(p)
    assert ds.label_dims == (2, 3) and ds.label_names == ("a", "b") and ds.image_shape == (9, 7, 1)
    assert (ds.labels == labels).all()
    bad = labels.copy()
    bad[2, 0] = 4
    np.savez(p, images=images, labels=bad)
    with pytest.raises(ValueError, match=r"column 0 must lie in 0..1 \(or -1 = missing\), got 4 at row 2"):
        load_npz(p, label_dims=(2, 3))
    np.savez(p, images=images * 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        load_npz(p)


def test_check_labels_refuses_no_observed_label():
    with pytest.raises(ValueError, match="no sample has an observed label"):
        check_labels(np.full((4, 2), -1), 4, (2, 2))


def test_hide_labels_keeps_a_seeded_subset_of_round_f_n():
    labels = np.arange(2000).reshape(1000, 2) % 3
    kept, hidden = hide_labels(labels, 0.1, seed=5)
    assert (~hidden).sum() == 100  # round(0.1 · 1000)
    assert (kept[hidden] == -1).all() and (kept[~hidden] == labels[~hidden]).all()
    again, hidden2 = hide_labels(labels, 0.1, seed=5)
    assert (hidden == hidden2).all()  # the same subset for the same seed
    assert (hide_labels(labels, 0.1, seed=6)[1] != hidden).any()
    assert (~hide_labels(labels, 0.0015, seed=0)[1]).sum() == 2  # round(1.5) = 2
