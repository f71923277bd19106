"""welavae.data.npz: .npz files read (gray or colour, partial labels, names) and written, and their refusals;
NpzMember on damaged and lying members."""
import io
import os
import struct
import zipfile

import numpy as np
import pytest
from fixtures import TINY, _cli, _error_line, bounded_allocation, colour_blobs, one_sentence
from hypothesis import given, settings
from hypothesis import strategies as st

from welavae.config import DataConfig
from welavae.data import Dataset, load, load_npz, save_npz
from welavae.data.dataset import check_images
from welavae.data.npz import NpzMember


def test_check_images_takes_channels_and_npz_reads_either_layout(tmp_path):
    images, labels = colour_blobs(8)
    assert check_images(images).shape == (8, 16, 16, 3)
    np.savez(tmp_path / "rgb.npz", images=images, labels=labels)
    np.savez(tmp_path / "gray.npz", images=images[..., 0], labels=labels)
    rgb, gray = load_npz(tmp_path / "rgb.npz"), load_npz(tmp_path / "gray.npz")
    assert rgb.image_shape == (16, 16, 3) and np.array_equal(rgb.images, images)
    assert gray.image_shape == (16, 16, 1) and gray.images.shape == (8, 16, 16)


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


def test_save_npz_round_trips_through_load_npz(tmp_path):
    rng = np.random.default_rng(0)
    ds = Dataset(images=rng.random((5, 4, 4), dtype=np.float32), labels=np.array([[0], [1], [-1], [1], [0]]),
                 label_dims=(2,), label_names=("size",), factors=rng.random((5, 2)))
    save_npz(tmp_path / "x.npz", ds)
    back = load(DataConfig(source="npz", path=str(tmp_path / "x.npz")))
    np.testing.assert_array_equal(back.images, ds.images)
    np.testing.assert_array_equal(back.labels, ds.labels)
    np.testing.assert_array_equal(back.factors, ds.factors)
    assert back.label_names == ("size",) and back.label_dims == (2,)


# ------------------------------------------------------------------ refusals at the edges (issue 31)

def _member_data_offset(raw: bytes, info) -> int:
    """Where a member's bytes start: its local header (30 bytes, then the name and the extra field)."""
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26 : info.header_offset + 30])
    return info.header_offset + 30 + name_len + extra_len


def _stored_npz_with_a_flipped_byte(path, member="images"):
    """An np.savez (stored) data set whose ``member`` has one byte flipped near its end, in the data."""
    np.savez(path, images=np.linspace(0, 1, 64 * 16, dtype=np.float32).reshape(64, 4, 4),
             labels=np.arange(64) % 2)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(f"{member}.npy")
    raw[_member_data_offset(raw, info) + info.file_size - 5] ^= 0x40
    path.write_bytes(bytes(raw))
    return path


def test_a_corrupt_stored_member_is_refused_by_its_crc_whole_or_subset(tmp_path):
    path = _stored_npz_with_a_flipped_byte(tmp_path / "d.npz")
    crc = (f"array 'images' of {path} is corrupt: its bytes do not match the CRC-32 its zip entry records (a "
           "damaged copy: download or write the file again)")
    for indices in (None, np.array([0, 1])):  # rows 0 and 1 lie far from the flipped byte in row 63
        with NpzMember(path, "images") as m, pytest.raises(ValueError) as e:
            m.rows(indices)
        assert one_sentence(e.value) == crc
    with pytest.raises(ValueError, match="CRC-32"):
        load_npz(path)


def _zip_with(path, name, payload: bytes, compress=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compress) as z:
        z.writestr(f"{name}.npy", payload)
    return path


def _npy(shape, descr="<f4", fortran=False, data=b""):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": fortran, "shape": shape})
    return buf.getvalue() + data


@pytest.mark.parametrize("compress", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_a_header_that_lies_about_its_size_is_refused_before_allocating(tmp_path, compress):
    path = _zip_with(tmp_path / "d.npz", "images", _npy((10**12, 4, 4), data=bytes(64)), compress)
    with bounded_allocation(10**6):
        for read in (lambda: load_npz(path), lambda: NpzMember(path, "images").rows()):
            with pytest.raises(ValueError) as e:
                read()
            assert one_sentence(e.value) == (f"array 'images' of {path} is corrupt (its header describes float32 "
                                              "(1000000000000, 4, 4), but it holds 64 bytes of data)")


def _patch_central(path, offset: int, value: bytes):
    """Overwrite ``value`` at ``offset`` of the (one) central directory entry of a zip file."""
    raw = bytearray(path.read_bytes())
    at = raw.rindex(b"PK\x01\x02") + offset
    raw[at : at + len(value)] = value
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("patch, words", [
    ((8, b"\x01\x00"), "is encrypted; welavae reads no password-protected data"),  # flag bit 0
    ((10, b"\x63\x00"), "is compressed by a method Python's zipfile cannot read (method 99); write it with "
                        "np.savez or np.savez_compressed"),
])
def test_an_encrypted_member_or_an_unknown_compression_is_one_sentence(tmp_path, patch, words):
    path = _zip_with(tmp_path / "d.npz", "images", _npy((2, 2), data=bytes(16)))
    _patch_central(path, *patch)
    with pytest.raises(ValueError) as e:
        NpzMember(path, "images")
    assert one_sentence(e.value) == f"array 'images' of {path} {words}"
    with pytest.raises(ValueError, match="password-protected|cannot read"):
        load_npz(path)


def test_load_npz_refuses_an_object_member_without_numpys_advice(tmp_path):
    np.savez(tmp_path / "d.npz", images=X4, labels=np.array([[0], [1], [None], [1]], dtype=object))
    with pytest.raises(ValueError) as e:
        load_npz(tmp_path / "d.npz")
    assert one_sentence(e.value) == (f"array 'labels' of {tmp_path / 'd.npz'} holds an object array (pickled data), "
                                     "which welavae never unpickles")


def test_load_npz_reads_only_its_own_members(tmp_path):
    # A pickled extra (as dSprites' metadata) is never opened; a Fortran-order array reads as it did.
    np.savez(tmp_path / "d.npz", images=np.asfortranarray(np.arange(64, dtype=np.float32).reshape(4, 4, 4) / 64),
             labels=np.array([0, 1, 1, 0]), metadata=np.array({"a": 1}, dtype=object))
    ds = load_npz(tmp_path / "d.npz")
    np.testing.assert_array_equal(ds.images, np.arange(64, dtype=np.float32).reshape(4, 4, 4) / 64)
    assert ds.labels[:, 0].tolist() == [0, 1, 1, 0]


X4 = np.zeros((4, 3, 3), np.float32)


@pytest.mark.parametrize("names, words", [(["", "b"], "label 0 has an empty name"),
                                          (["a", "a"], "names the label 'a' twice")])
def test_an_empty_or_repeated_label_name_in_an_npz_is_refused(tmp_path, names, words):
    np.savez(tmp_path / "d.npz", images=X4, labels=np.array([[0, 1], [1, 0], [0, 0], [1, 1]]),
             label_names=np.array(names))
    with pytest.raises(ValueError) as e:
        load_npz(tmp_path / "d.npz")
    assert one_sentence(e.value).startswith(f"{tmp_path / 'd.npz'}: label_names") and words in str(e.value)


def test_an_npz_that_is_a_fifo_or_a_link_loop_is_named_as_such(tmp_path):
    loop = tmp_path / "loop.npz"
    loop.symlink_to(tmp_path / "loop2.npz")
    (tmp_path / "loop2.npz").symlink_to(loop)
    with pytest.raises(ValueError) as e:
        load_npz(loop)
    assert one_sentence(e.value) == f"{loop} is a symbolic link loop, not a file"
    # A FIFO opened for reading waits for a writer forever: the command line must refuse it at once.
    os.mkfifo(tmp_path / "fifo.npz")
    r = _cli("train", "--model", "tcvae", "--npz", tmp_path / "fifo.npz", *TINY, "--out", tmp_path / "run",
             timeout=60)
    assert r.returncode == 2 and _error_line(r.stderr) == f"welavae: error: {tmp_path / 'fifo.npz'} is a FIFO, not a file"
    assert not (tmp_path / "run").exists()


# Hostile files: a valid npz (stored or deflated) with bytes overwritten or cut, and npy headers of any
# dtype, order and shape (negative, huge) over data of any length.
def _valid_npz(compressed: bool) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(
        buf, images=np.linspace(0, 1, 48, dtype=np.float32).reshape(3, 4, 4), labels=np.array([0, 1, 1]),
        label_names=np.array(["a"]), factors=np.arange(6.0).reshape(3, 2))
    return buf.getvalue()


_BYTES = {c: _valid_npz(c) for c in (False, True)}


def _member_rows(path, name, rows):
    with NpzMember(path, name) as m:
        return m.rows(None if rows is None else np.array(rows))


def _check_read(read, limit):
    """read() gives arrays within the bound, or refuses in one sentence (ValueError, FileNotFoundError)."""
    with bounded_allocation(limit):
        try:
            out = read()
        except (ValueError, FileNotFoundError) as e:
            one_sentence(e)
            return
    arrays = [out] if isinstance(out, np.ndarray) else [a for a in (out.images, out.labels, out.factors)
                                                         if a is not None]
    assert all(a.nbytes <= limit for a in arrays)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(compressed=st.booleans(), cut=st.one_of(st.none(), st.integers(0, 2000)),
       edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=4),
       rows=st.sampled_from([None, [0], [1, 2]]))
def test_any_damaged_npz_gives_arrays_or_one_sentence(tmp_path_factory, compressed, cut, edits, rows):
    raw = bytearray(_BYTES[compressed])
    for where, value in edits:
        raw[int(where * (len(raw) - 1))] = value
    path = tmp_path_factory.getbasetemp() / "hostile.npz"
    path.write_bytes(bytes(raw[:cut] if cut is not None else raw))
    limit = 1100 * len(raw) + (1 << 16)  # what deflate can expand the file to, at most
    _check_read(lambda: load_npz(path), limit)
    _check_read(lambda: _member_rows(path, "images", rows), limit)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(descr=st.sampled_from(["<f4", "|u1", "|b1", "<i8", ">f8", "|O", "<U3", "|V8", [("a", "<i4")],
                              [("o", "|O")], "<c16"]),
       fortran=st.booleans(), compress=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]),
       shape=st.lists(st.one_of(st.integers(-2, 6), st.integers(0, 10**15)), max_size=4).map(tuple),
       data=st.binary(max_size=96), rows=st.sampled_from([None, [0], [0, 2]]))
def test_any_npy_header_gives_arrays_or_one_sentence(tmp_path_factory, descr, fortran, compress, shape, data, rows):
    path = tmp_path_factory.getbasetemp() / "header.npz"
    for name in ("images", "labels"):
        _zip_with(path, name, _npy(shape, descr, fortran, data), compress)
        _check_read(lambda name=name: _member_rows(path, name, rows), 1 << 20)
        _check_read(lambda: load_npz(path), 1 << 20)


def test_a_damaged_deflate_stream_is_one_sentence_even_in_the_header(tmp_path):
    path = tmp_path / "d.npz"
    np.savez_compressed(path, images=X4)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("images.npy")
    start = _member_data_offset(raw, info)
    raw[start : start + 8] = b"\xff" * 8  # deflate block type 3 does not exist: zlib.error at the first read
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError) as e:
        NpzMember(path, "images")
    assert one_sentence(e.value).startswith(f"array 'images' of {path} has an unreadable header (error: ")
