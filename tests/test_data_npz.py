"""welavae.data.npz: .npz files read (gray or colour, partial labels, names) and written, and their refusals."""
import numpy as np
import pytest
from fixtures import colour_blobs

from welavae.config import DataConfig
from welavae.data import Dataset, load, load_npz, save_npz
from welavae.data.dataset import check_images


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
