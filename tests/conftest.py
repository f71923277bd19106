"""Pytest fixtures shared by several test files: the Blobs sets the trainer tests train on, and float64."""
import numpy as np
import pytest
import torch
from fixtures import SIZE

from welavae.data import make_blobs, weak_labels


@pytest.fixture(scope="module")
def blobs():
    """64×64 Blobs with one variant (N = 4,096): images, p = 2 weak labels, factors."""
    b = make_blobs(1, seed=0)
    return b.images, weak_labels(b.factors, 2), b.factors


@pytest.fixture(scope="module")
def blobs16():
    """16×16 Blobs (N = 256, seconds per run): images, p = 2 weak labels, factors."""
    b = make_blobs(1, size=SIZE, seed=0)
    return b.images, weak_labels(b.factors, 2, size=SIZE), b.factors


@pytest.fixture(scope="module")
def small():
    """Every 4th sample of 64×64 Blobs (N = 1,024): images, p = 2 weak labels, factors."""
    b = make_blobs(1, seed=0)
    idx = np.arange(0, 4096, 4)
    return b.images[idx], weak_labels(b.factors, 2)[idx], b.factors[idx]


@pytest.fixture
def float64():
    # Known answers are checked in double precision; restore the default afterwards.
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)
