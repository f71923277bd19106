"""welavae.data.dataset: to_float of stored pixels, check_labels and hide_labels, from_arrays' refusals,
require_file."""
import os

import numpy as np
import pytest
import torch
from fixtures import one_sentence

from welavae.data import check_labels, from_arrays, hide_labels
from welavae.data.dataset import to_float


def test_to_float_of_every_8_bit_value_is_blobs_float_image():
    k = np.arange(256, dtype=np.uint8)
    blobs_way = k.astype(np.float32)
    blobs_way *= np.float32(1.0 / 255.0)  # how welavae.data.blobs makes its float32 images
    assert to_float(k).tobytes() == blobs_way.tobytes()
    assert to_float(torch.from_numpy(k)).numpy().tobytes() == blobs_way.tobytes()
    np.testing.assert_array_equal(to_float(np.array([True, False])), [1.0, 0.0])


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


def test_to_float_per_batch():
    import torch

    bits = np.array([[0, 1]], np.uint8).view(bool)
    np.testing.assert_array_equal(to_float(bits), [[0.0, 1.0]])
    colour = np.array([0, 51, 255], np.uint8)
    out = to_float(colour)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.0, 0.2, 1.0], rtol=1e-7)
    t = to_float(torch.from_numpy(colour))
    assert t.dtype == torch.float32 and torch.allclose(t, torch.tensor([0.0, 0.2, 1.0]))
    assert to_float(torch.tensor([True, False])).tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="bool, uint8 or float, got dtype int64"):
        to_float(np.zeros(2, np.int64))


# ------------------------------------------------------------------ refusals at the edges (issue 31)

X = np.zeros((3, 4, 4), np.float32)


@pytest.mark.parametrize("labels", [np.array(["a", "b", "a"]), [["x", "y"], ["y", "x"], ["x", "x"]],
                                    np.array([b"a", b"b", b"a"])])
def test_string_labels_are_refused_in_words(labels):
    for call in (lambda: from_arrays(X, labels), lambda: from_arrays(X, labels, label_dims=(2,) * np.ndim(labels)),
                 lambda: check_labels(labels, 3, 2)):
        with pytest.raises(ValueError) as e:
            call()
        assert one_sentence(e.value).startswith("labels must be integer class indices, got strings")


def test_fit_with_string_labels_is_refused_before_anything_is_written(tmp_path):
    import welavae

    with pytest.raises(ValueError, match="labels must be integer class indices, got strings"):
        welavae.fit(X, np.array(["a", "b", "a"]), out=tmp_path / "run", epochs=1)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("names, words", [(("", "b"), "label 0 has an empty name"),
                                          (("a", " "), "label 1 has an empty name"),
                                          (("a", "a"), "names the label 'a' twice")])
def test_an_empty_or_repeated_label_name_is_refused(names, words):
    with pytest.raises(ValueError) as e:
        from_arrays(X, np.array([[0, 1], [1, 0], [1, 1]]), label_names=names)
    assert words in one_sentence(e.value)


def test_require_file_says_what_is_there_instead_of_a_file(tmp_path):
    from welavae.data.dataset import require_file  # imported here: the module's other tests ran before it existed

    (tmp_path / "f").write_text("x")
    assert require_file(tmp_path / "f") == tmp_path / "f"
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "loop").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for name, kind in (("fifo", "a FIFO"), ("loop", "a symbolic link loop"), (".", "a directory"),
                       ("dangling", f"a broken symbolic link (to {tmp_path / 'nowhere'})")):
        with pytest.raises(ValueError) as e:
            require_file(tmp_path / name)
        assert one_sentence(e.value) == f"{tmp_path / name} is {kind}, not a file"
    with pytest.raises(FileNotFoundError, match="the data is not here"):
        require_file(tmp_path / "missing", "the data is not here")
