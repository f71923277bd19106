"""welavae.data.folder: image folders with a CSV of labels, in gray or colour.

Every defect must be refused with one sentence naming the file (and row).
Known answers: pixel values written into PNG files read back exactly (/255);
alpha composited onto black by hand.
"""
import os
import warnings
from unittest import mock

import numpy as np
import pytest
from fixtures import TINY, bounded_allocation, cli_refuses, one_sentence, write_png
from hypothesis import given, settings
from hypothesis import strategies as st
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


# ------------------------------------------------------------------ refusals at the edges (issue 31)

def _bounded_range(*args):
    """range() in welavae.data.folder while a test runs: a class per integer up to 10^30 must never be built."""
    r = range(*args)
    assert len(r) <= 10**6, f"range of {len(r)} classes built"
    return r


@pytest.mark.parametrize("cell, classes", [("1000000000000000000000000000000", 10**30 + 1),
                                           ("1e30", int(1e30) + 1),  # the float 1e30 is 10^30 + 19884624838656
                                           ("1000000", 1000001)])
def test_a_numeric_label_far_beyond_the_values_that_occur_is_refused_before_its_classes_are_built(
        tmp_path, monkeypatch, cell, classes):
    import welavae.data.folder as folder_module

    monkeypatch.setattr(folder_module, "range", _bounded_range, raising=False)
    d, csv = _folder(tmp_path, ["0.png,0", "1.png,1", f"2.png,{cell}", "3.png,1"])
    with pytest.raises(ValueError) as e:
        load_image_folder(d, csv)
    # 3 distinct values: at most max(2·3, 1000) = 1000 classes.
    assert one_sentence(e.value) == (
        f"{csv}, row 4: label 'a' = {cell} would make {classes} classes (0 to {classes - 1}) of which 3 occur; a "
        "column of numbers holds class indices 0, 1, 2, ... (at most 1000 classes here): renumber them, or name "
        "the classes with words")


def test_a_numbering_within_the_bound_keeps_every_class():
    from welavae.data.folder import _label_columns

    # Two values 0 and 999 → 1000 classes (the bound max(2·2, 1000)); 1000 would make 1001.
    labels, dims, _ = _label_columns([["0", "999"]], ["a"], "x.csv")
    assert dims == (1000,) and labels[:, 0].tolist() == [0, 999]
    with pytest.raises(ValueError, match="would make 1001 classes"):
        _label_columns([["0", "1000"]], ["a"], "x.csv")
    # 600 distinct values of 0..1199: 2·600 = 1200 classes allowed.
    assert _label_columns([[str(2 * i) for i in range(600)]], ["a"], "x.csv")[1] == (1199,)


@pytest.mark.parametrize("cell", ["nan", "NaN", "inf", "-inf", "Infinity"])
def test_nan_or_inf_in_a_column_of_numbers_is_refused(tmp_path, cell):
    d, csv = _folder(tmp_path, ["0.png,0", "1.png,1", f"2.png,{cell}", "3.png,1"])
    with pytest.raises(ValueError) as e:
        load_image_folder(d, csv)
    assert one_sentence(e.value) == (f"{csv}, row 4: label 'a' = {cell} is not a number in a column of numbers "
                                     "(class indices 0, 1, 2, ...); leave the cell empty for a missing label")


def test_nan_among_words_stays_a_class_name(tmp_path):
    d, csv = _folder(tmp_path, ["0.png,cat", "1.png,nan", "2.png,dog", "3.png,cat"])
    assert load_image_folder(d, csv).label_classes == (("cat", "dog", "nan"),)


def test_an_unnamed_label_column_is_refused(tmp_path):
    d, csv = _folder(tmp_path, [f"{i}.png,{i % 2},{i % 2}" for i in range(4)], header="file, ,b")
    with pytest.raises(ValueError) as e:
        load_image_folder(d, csv)
    assert one_sentence(e.value) == f"{csv}: the header's column 2 has no name; name every label column"


def png_header(path, w, h):
    """A PNG whose header says w × h (8-bit gray) with a tiny IDAT: Pillow reads its size without decoding it."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(16)))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("side", [20000, 10000])  # beyond Pillow's error (2 × limit); beyond its warning
def test_an_image_over_pillows_pixel_limit_is_refused_with_its_size(tmp_path, side):
    d = tmp_path / "imgs"
    d.mkdir()
    png_header(d / "big.png", side, side)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning either: one sentence
        with pytest.raises(ValueError) as e:
            load_image_folder(d)
    assert one_sentence(e.value) == (f"{d / 'big.png'} is {side}x{side} = {side * side:,} pixels, more than "
                                     "Pillow's limit of 89,478,485 (PIL.Image.MAX_IMAGE_PIXELS, a guard against "
                                     "decompression bombs)")


def test_cli_refuses_a_decompression_bomb_and_a_huge_label_and_writes_nothing(tmp_path, capsys, monkeypatch):
    import welavae.data.folder as folder_module

    monkeypatch.setattr(folder_module, "range", _bounded_range, raising=False)
    d, csv = _folder(tmp_path, ["0.png,0", "1.png,1", "2.png,1e30", "3.png,1"])
    out = tmp_path / "run"
    line = cli_refuses(capsys, "train", "--model", "wela", "--images", d, "--labels", csv, *TINY, "--out", out, out=out)
    assert "row 4: label 'a' = 1e30 would make" in line
    csv.write_text("file,a\n0.png,0\n1.png,1\n2.png,1\n3.png,0\n")
    png_header(d / "3.png", 20000, 20000)
    line = cli_refuses(capsys, "train", "--model", "wela", "--images", d, "--labels", csv, *TINY, "--out", out, out=out)
    assert "3.png is 20000x20000 = 400,000,000 pixels, more than Pillow's limit" in line


def test_a_label_file_that_is_a_fifo_or_a_link_loop_is_named_as_such(tmp_path):
    d, csv = _folder(tmp_path, [f"{i}.png,{i % 2}" for i in range(4)])
    fifo, loop = tmp_path / "fifo.csv", tmp_path / "loop.csv"
    os.mkfifo(fifo)
    loop.symlink_to(tmp_path / "loop2.csv")
    (tmp_path / "loop2.csv").symlink_to(loop)
    for path, kind in ((fifo, "a FIFO"), (loop, "a symbolic link loop")):
        with pytest.raises(ValueError) as e:
            load_image_folder(d, path)
        assert one_sentence(e.value) == f"{path} is {kind}, not a file"
    with pytest.raises(ValueError, match="image folder .*fifo.csv is a FIFO, not a folder"):
        load_image_folder(fifo, csv)


# A CSV of any cells: numerals of every spelling, nan/inf, words, blanks, quotes, huge and negative numbers.
_CELL = st.one_of(st.sampled_from(["", "0", "1", "01", "1.0", "2", "1.5", "-1", "nan", "inf", "1e30", "1e3",
                                   "999", "cat", "dog", " ", '"', "a,b", "\x00"]),
                  st.integers(-5, 10**40).map(str), st.text(alphabet="01e.-+xn", max_size=6))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(header=st.lists(st.sampled_from(["a", "b", "", "a "]), min_size=1, max_size=3),
       cells=st.lists(st.lists(_CELL, min_size=3, max_size=3), min_size=4, max_size=4))
def test_any_label_csv_gives_bounded_classes_or_one_sentence(tmp_path_factory, header, cells):
    d = tmp_path_factory.getbasetemp() / "hostile_csv"
    if not d.exists():
        d.mkdir()
        for i in range(4):
            Image.fromarray(np.full((4, 4), 60 * i, np.uint8)).save(d / f"{i}.png")
    csv = d.parent / "hostile_labels.csv"
    rows = [",".join(["file"] + header)] + [",".join([f"{i}.png"] + row[:len(header)]) for i, row in enumerate(cells)]
    csv.write_text("\n".join(rows) + "\n")
    import welavae.data.folder as folder_module

    with bounded_allocation(10**5), mock.patch.object(folder_module, "range", _bounded_range, create=True):
        try:
            ds = load_image_folder(d, csv)
        except ValueError as e:
            assert str(csv) in one_sentence(e) or str(d) in str(e)
            return
    for j, p in enumerate(ds.label_dims):
        observed = ds.labels[:, j][ds.labels[:, j] >= 0]
        assert 2 <= p <= 1000 and len(ds.label_classes[j]) == p and observed.max() < p
