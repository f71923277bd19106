"""welavae.data.dataset: to_float of stored pixels, check_labels and hide_labels."""
import numpy as np
import pytest
import torch

from welavae.data import check_labels, hide_labels
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
