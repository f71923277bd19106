"""welavae.data.folder: image folders with a CSV of labels, in gray or colour.

Every defect must be refused with one sentence naming the file (and row).
Known answers: pixel values written into PNG files read back exactly (/255);
alpha composited onto black by hand.
"""
import warnings

import numpy as np
import pytest
from fixtures import write_png
from PIL import Image

from welavae.data import load_image_folder


def write_gray_png(path, array):
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
        write_gray_png(d / name, a)
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
    write_gray_png(d / "c.png", np.zeros((5, 5)))
    with pytest.raises(ValueError, match=r"c.png is 5x5 pixels but .*b.png is 10x12"):
        load_image_folder(d, csv)


def test_a_label_outside_a_trained_models_classes_is_named(folder):
    d, csv, _ = folder
    with pytest.raises(ValueError, match=r"row 2: label 'shape' = 'square' is not one of its classes \['circle', 'oval'\]"):
        load_image_folder(d, csv, label_names=("shape", "size"), label_classes=(("circle", "oval"), ("0", "1", "2")))


def _folder(tmp_path, rows, header="file,a"):
    from PIL import Image

    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(4):
        Image.fromarray(np.full((4, 4), 60 * i, np.uint8)).save(d / f"{i}.png")
    (tmp_path / "labels.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    return d, tmp_path / "labels.csv"


@pytest.mark.parametrize("outside", ["../x.png", "ABS"])
def test_a_csv_row_naming_a_file_outside_the_folder_is_refused(tmp_path, outside):
    from PIL import Image

    from welavae.data.folder import load_image_folder

    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "x.png")
    name = str(tmp_path / "x.png") if outside == "ABS" else outside
    d, csv = _folder(tmp_path, [f"{i}.png,{i % 2}" for i in range(4)] + [f"{name},1"])
    with pytest.raises(ValueError, match=r"row 6: .* outside .*imgs"):
        load_image_folder(d, csv)


def test_a_label_column_named_twice_is_refused(tmp_path):
    from welavae.data.folder import load_image_folder

    d, csv = _folder(tmp_path, [f"{i}.png,{i % 2},{i % 2}" for i in range(4)], header="file,a,a")
    with pytest.raises(ValueError, match="'a' twice"):
        load_image_folder(d, csv)


def test_numerals_are_classes_by_value(tmp_path):
    from welavae.data.folder import load_image_folder

    d, csv = _folder(tmp_path, ["0.png,0", "1.png,1", "2.png,1.0", "3.png,01"])
    ds = load_image_folder(d, csv)
    assert ds.label_dims == (2,) and ds.labels[:, 0].tolist() == [0, 1, 1, 1]  # '1', '1.0', '01': class 1


def test_a_non_integer_number_in_a_label_column_is_refused(tmp_path):
    from welavae.data.folder import load_image_folder

    d, csv = _folder(tmp_path, ["0.png,0", "1.png,1", "2.png,1.5", "3.png,0"])
    with pytest.raises(ValueError, match="row 4: label 'a' = 1.5 is not a whole number"):
        load_image_folder(d, csv)


def test_folder_read_in_colour_or_gray(tmp_path):
    px = np.array([[[255, 0, 0], [0, 128, 255]]], dtype=np.uint8)  # 1×2 RGB: red, a blue
    folder = tmp_path / "pngs"
    folder.mkdir()
    write_png(folder / "a.png", px, "RGB")
    write_png(folder / "b.png", px[:, ::-1], "RGB")
    (tmp_path / "labels.csv").write_text("file,k\na.png,0\nb.png,1\n")
    rgb = load_image_folder(folder, tmp_path / "labels.csv", color="rgb")
    assert rgb.images.shape == (2, 1, 2, 3)
    assert np.array_equal(rgb.images[0], px.astype(np.float32) / 255)  # exact: value / 255
    gray = load_image_folder(folder, tmp_path / "labels.csv")
    # Pillow's L = (299 R + 587 G + 114 B) / 1000, rounded: red 255 → 76, (0, 128, 255) → 104.
    assert gray.images.shape == (2, 1, 2) and np.allclose(gray.images[0, 0] * 255, [76, 104])


def test_folder_mixing_gray_and_colour_is_refused_naming_the_file(tmp_path):
    write_png(tmp_path / "a.png", np.zeros((4, 4, 3)), "RGB")
    write_png(tmp_path / "b.png", np.zeros((4, 4)), "L")
    with pytest.raises(ValueError, match=r"b\.png is a grayscale image but .*a\.png is colour"):
        load_image_folder(tmp_path, color="rgb")
    with pytest.raises(ValueError, match=r"b\.png is a grayscale image"):
        load_image_folder(tmp_path)


def test_rgba_is_flattened_onto_black_with_one_warning(tmp_path):
    rgba = np.array([[[200, 100, 50, 255], [200, 100, 50, 0], [200, 100, 50, 128]]], dtype=np.uint8)
    write_png(tmp_path / "a.png", rgba, "RGBA")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_image_folder(tmp_path, color="rgb")
    assert len(caught) == 1 and "alpha channel: flattened onto black" in str(caught[0].message)
    assert "a.png" in str(caught[0].message)
    x = ds.images[0, 0] * 255
    assert np.array_equal(x[0], [200, 100, 50])  # opaque: unchanged
    assert np.array_equal(x[1], [0, 0, 0])  # transparent: black
    assert np.abs(x[2] - np.array([200, 100, 50]) * 128 / 255).max() <= 1.0  # value·α, up to Pillow's rounding
