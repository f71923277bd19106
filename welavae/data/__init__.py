"""Data: the paper's Blobs set (§4.1), its weak labels, caching and validation."""
from .blobs import Blobs, blob_pixels, label_edges, make_blobs, polar_factors, weak_labels
from .cache import default_data_dir, load_blobs
from .user import UserData, check_images, check_labels, load_npz

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
    "UserData",
]
