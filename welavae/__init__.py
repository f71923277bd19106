"""WeLa-VAE: learning alternative disentangled representations using weak labels.

Reference implementation of Margonis, Davvetas & Klampanos.  Submodules:
``data`` (Blobs set and weak labels), ``objectives`` (eq. 4 terms), ``nn``
(seed-stacked networks), ``train`` (multi-seed trainer), ``metrics``
(coordinate MSE, eqs. 5–7, and disentanglement metrics), ``plots``,
``experiments`` (Table 1 sweeps).
"""
import os as _os

# Transparent huge pages for torch's CPU allocator.  Gradients are fresh tensors every
# step (hundreds of MB at the paper's size); with 4 KiB pages the kernel's page faults
# and zeroing cost ~30 % of a step (measured: paper arch, S=8, 44 % → 77 % of the matmul
# peak).  Read by torch at its first allocation, so it must be set before that.
_os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

__version__ = "0.1.0"

from . import data, metrics  # noqa: E402
from .config import DataConfig, ModelConfig, ObjectiveConfig, RunConfig, TrainConfig, make_run_config  # noqa: E402

__all__ = [
    "__version__",
    "data",
    "metrics",
    "DataConfig",
    "ModelConfig",
    "ObjectiveConfig",
    "TrainConfig",
    "RunConfig",
    "make_run_config",
]
