"""WeLa-VAE: learning alternative disentangled representations using weak labels.

Reference implementation of Margonis, Davvetas & Klampanos.  Submodules:
``data`` (Blobs set and weak labels), ``objectives`` (eq. 4 terms), ``nn``
(seed-stacked networks), ``train`` (multi-seed trainer), ``metrics``
(coordinate MSE, eqs. 5–7, and disentanglement metrics), ``plots``,
``experiments`` (Table 1 sweeps).
"""
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
