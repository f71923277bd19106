"""WeLa-VAE: learning alternative disentangled representations using weak labels.

Reference implementation of Margonis, Davvetas & Klampanos.  Public API:
``load(run_dir)`` and ``fit(images, labels, …)`` (a trained model you can
encode with), the configuration dataclasses, and the submodules ``data``
(Blobs set, weak labels, your own data), ``metrics`` (coordinate MSE,
eqs. 5–7, and disentanglement metrics), ``objectives`` (eq. 4 terms),
``nn`` (seed-stacked networks), ``train`` (multi-seed trainer), ``plots``,
``experiments`` (Table 1 sweeps).  Importing the package changes no
process-wide setting.
"""
__version__ = "0.2.0"

from . import data, metrics  # noqa: E402
from .config import DataConfig, ModelConfig, ObjectiveConfig, RunConfig, TrainConfig, make_run_config  # noqa: E402
from .models import MODELS  # noqa: E402

__all__ = [
    "__version__",
    "load",
    "fit",
    "TrainedModel",
    "data",
    "metrics",
    "MODELS",
    "DataConfig",
    "ModelConfig",
    "ObjectiveConfig",
    "TrainConfig",
    "RunConfig",
    "make_run_config",
]


def __getattr__(name):
    # load / fit need torch; imported on first use so that `import welavae` stays light
    # (the command line sets torch's allocator options before torch is imported).
    if name in ("load", "fit", "TrainedModel"):
        from . import trained

        return getattr(trained, name)
    raise AttributeError(f"module 'welavae' has no attribute {name!r}")
