"""Data: the paper's Blobs set (§4.1), its weak labels, caching; a user's own data and its validation;
:func:`load`, the one way from a config to a :class:`Dataset`."""
from .blobs import Blobs, blob_pixels, label_edges, make_blobs, polar_factors, weak_labels
from .cache import default_data_dir, load_blobs
from .load import load, save_npz
from .user import Dataset, check_images, check_labels, hide_labels, load_image_folder, load_npz, read_images

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
    "load_image_folder",
    "read_images",
    "hide_labels",
    "Dataset",
    "load",
    "save_npz",
]
