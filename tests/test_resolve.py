"""welavae.resolve (and welavae.data.fingerprint, which it calls once): a run's config records what its data held.

Known answers: a zip member's CRC-32 is ``zlib.crc32`` of its bytes (the zip
format, APPNOTE 4.4.7), so the fingerprint of an npz is computed here from
``np.save``'s bytes without opening the archive; the same arrays saved again
give the same fingerprint, one changed value another.  Blobs is generated
from its config: no fingerprint.
"""
import hashlib
import io
import zlib

import numpy as np
import pytest

from welavae.config import DataConfig
from welavae.data import Dataset, from_arrays
from welavae.data.fingerprint import BLOCK_BYTES, BLOCKS, file_digest, fingerprint
from welavae.data.sprites import write_sprites_npz
from welavae.resolve import resolve

TINY = dict(hidden=(8,), latent_dim=2)


def _save(path, images, labels, *, compressed=False):
    (np.savez_compressed if compressed else np.savez)(path, images=images, labels=labels)
    return path


def _arrays(seed=0, n=32):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8)).astype(np.float32), np.stack([np.arange(n) % 3, np.arange(n) % 2], 1)


def _npz(path):
    return DataConfig(source="npz", path=str(path))


def test_an_npz_is_fingerprinted_by_its_members_crcs(tmp_path):
    images, labels = _arrays()
    path = _save(tmp_path / "d.npz", images, labels)
    config, _ = resolve(_npz(path), "wela", **TINY)
    # By hand: each member's name, size and CRC-32 of the bytes np.save writes for it, in name order.
    lines = ""
    for name, a in sorted({"images.npy": images, "labels.npy": labels}.items()):
        buf = io.BytesIO()
        np.save(buf, a)
        b = buf.getvalue()
        lines += f"{name}\0{len(b)}\0{zlib.crc32(b):08x}\n"
    digest = "zip:" + hashlib.sha256(lines.encode()).hexdigest()
    assert config.data.fingerprint == "npz:" + hashlib.sha256(digest.encode()).hexdigest()[:32]
    # The same arrays, compressed this time: the same content, the same fingerprint; one value changed: another.
    same, _ = resolve(_npz(_save(tmp_path / "d.npz", images, labels, compressed=True)), "wela", **TINY)
    assert same.data.fingerprint == config.data.fingerprint
    images[5, 3, 3] = 1 - images[5, 3, 3]
    other, _ = resolve(_npz(_save(tmp_path / "d.npz", images, labels)), "wela", **TINY)
    assert other.data.fingerprint != config.data.fingerprint
    assert other.hash() == config.hash() and other.same_config(config) and not other.same_run(config)


def test_arrays_and_image_folders_are_fingerprinted_as_the_model_reads_them(tmp_path):
    images, labels = _arrays()
    arrays = DataConfig(source="arrays", size=8)
    a, ds = resolve(arrays, "wela", arrays=from_arrays(images, labels), **TINY)
    b, _ = resolve(arrays, "wela", arrays=from_arrays(images.copy(), labels.copy()), **TINY)
    assert a.data.fingerprint == b.data.fingerprint and a.data.fingerprint.startswith("arrays:")
    assert fingerprint(a.data, ds) == a.data.fingerprint  # what Run.data recomputes from data.npz
    flipped = labels.copy()
    flipped[0, 1] = 1 - flipped[0, 1]
    c, _ = resolve(arrays, "wela", arrays=from_arrays(images, flipped), **TINY)
    assert c.data.fingerprint != a.data.fingerprint
    # A model without labels trains on the images alone: a label changed is the same data to it.
    t1, _ = resolve(arrays, "tcvae", arrays=from_arrays(images, labels), **TINY)
    t2, _ = resolve(arrays, "tcvae", arrays=from_arrays(images, flipped), **TINY)
    assert t1.data.fingerprint == t2.data.fingerprint != a.data.fingerprint


def test_blobs_has_no_fingerprint_and_a_benchmark_names_its_rows(tmp_path):
    blobs, _ = resolve(DataConfig(variants=1, size=16), "tcvae", read=lambda d, p: Dataset(
        images=np.zeros((4, 16, 16), np.uint8), labels=None), **TINY)
    assert blobs.data.fingerprint is None
    twin = write_sprites_npz(tmp_path / "sprites.npz", keep={"shape": [0, 1], "scale": [5], "orientation": [0],
                                                             "posX": [0, 10, 20, 31], "posY": [0, 31]})
    grid = (1, 2, 1, 1, 4, 2)

    def bench(seed):
        return DataConfig(source="benchmark", dataset="sprites", data_path=str(twin), grid=grid, subset=8,
                          subset_seed=seed)

    prints = {resolve(bench(s), "tcvae", **TINY)[0].data.fingerprint for s in (0, 0, 1)}
    assert len(prints) == 2  # the same rows twice, other rows once: the subset is part of what was read


def test_a_file_that_is_not_a_zip_is_fingerprinted_by_its_size_and_sampled_blocks(tmp_path):
    path = tmp_path / "big.h5"
    size = BLOCKS * BLOCK_BYTES * 2  # 8 MiB: too large to hash whole
    data = bytearray(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())
    path.write_bytes(data)
    first = file_digest(path)
    data[0] ^= 1  # inside the first block
    path.write_bytes(data)
    assert file_digest(path) != first
    data[0] ^= 1
    data[BLOCK_BYTES + 10] ^= 1  # between block 0 and block 1 (spaced ~130 KiB apart): the known blind spot
    path.write_bytes(data)
    assert file_digest(path) == first
    path.write_bytes(data + b"x")  # the size is always counted
    assert file_digest(path) != first


def test_a_benchmark_subset_that_cannot_fit_is_refused_before_anything_is_read(tmp_path):
    # --subset 1000000000 with --grid mistyped (posX and posY 3200 for 32): 7.4 billion images in the grid; by hand,
    # 10^9 rows × (4,096 pixels + 6 factors × 16 bytes + 24 bytes of the draw) = 4.216e12 bytes = 3.8 TiB.  The file
    # need not even exist: nothing is opened before the refusal.
    data = DataConfig(source="benchmark", dataset="sprites", data_path=str(tmp_path / "absent.npz"),
                      grid=(1, 3, 6, 40, 3200, 3200), subset=1_000_000_000)
    with pytest.raises(ValueError, match=r"^--subset 1000000000: reading 1,000,000,000 images of .* needs about "
                                         r"3\.8 TiB of memory .*--grid 1,3,6,40,3200,3200 is a grid of "
                                         r"7,372,800,000 images"):
        resolve(data, "tcvae", **TINY)
