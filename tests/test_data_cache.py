"""Cache round trip and corruption detection."""
import warnings

import numpy as np
import pytest

from welavae.data import load_blobs, make_blobs
from welavae.data.cache import cache_path


def test_round_trip_equals_fresh(tmp_path):
    a = load_blobs(1, data_dir=tmp_path, seed=4)
    path = cache_path(tmp_path, variants=1, seed=4)
    assert path.exists()
    mtime = path.stat().st_mtime_ns
    b = load_blobs(1, data_dir=tmp_path, seed=4)
    assert path.stat().st_mtime_ns == mtime  # reused, not rewritten
    fresh = make_blobs(1, seed=4)
    assert np.array_equal(a.images, fresh.images) and np.array_equal(b.images, fresh.images)
    assert np.array_equal(b.factors, fresh.factors)
    assert not list(tmp_path.glob("*.tmp"))


def test_different_parameters_different_files(tmp_path):
    load_blobs(1, data_dir=tmp_path, seed=0)
    load_blobs(1, data_dir=tmp_path, seed=1)
    load_blobs(1, data_dir=tmp_path, shape="disk")
    assert len(list(tmp_path.glob("blobs-*.npz"))) == 3


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_corrupt_cache_is_rebuilt_with_warning(tmp_path, damage):
    good = load_blobs(1, data_dir=tmp_path)
    path = cache_path(tmp_path, variants=1)
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "flip":
        raw[len(raw) // 2] ^= 0xFF  # inside the pixel array: only the checksum can tell
    else:
        raw = b"not a zip file"
    path.write_bytes(bytes(raw))
    with pytest.warns(RuntimeWarning, match="rebuilding"):
        again = load_blobs(1, data_dir=tmp_path)
    assert np.array_equal(again.images, good.images)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_blobs(1, data_dir=tmp_path)  # healthy again: no warning
