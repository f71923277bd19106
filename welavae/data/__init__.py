"""Data: :class:`Dataset` and :func:`load`, the one way from a config to a data set; the paper's Blobs set
(§4.1) and its weak labels; a user's ``.npz`` or image folder; the field's published data sets and weak
labels from any factors (:mod:`~welavae.data.spec`)."""
from .blobs import Blobs, blob_pixels, label_edges, make_blobs, polar_factors, weak_labels
from .cache import default_data_dir, load_blobs
from .dataset import Dataset, check_images, check_labels, from_arrays, hide_labels, to_float
from .folder import load_image_folder, read_images
from .load import load
from .npz import load_npz, save_npz

__all__ = [
    "Blobs",
    "make_blobs",
    "blob_pixels",
    "load_blobs",
    "default_data_dir",
    "polar_factors",
    "weak_labels",
    "label_edges",
    "check_images",
    "check_labels",
    "load_npz",
    "save_npz",
    "load_image_folder",
    "read_images",
    "hide_labels",
    "Dataset",
    "from_arrays",
    "to_float",
    "load",
]
