"""Helpers for the tests of sweep plans: resolve a plan's configs without reading its data, and a tiny plan."""
import numpy as np

from welavae.data import Dataset
from welavae.experiments.sweep import resolve_plan


class NoRead:
    """A sweep's data reader that reads nothing.  A Blobs config does not depend on its data (p makes the
    labels), so a Blobs preset's plan resolves to the configs it runs without generating the set."""

    def __init__(self):
        self.data_dir, self.by_model = None, {}

    def __call__(self, data, label_dim=None):
        return Dataset(images=np.zeros((1, data.size, data.size), np.uint8), labels=None)


def resolved(plan):
    """A plan of Blobs ModelSpecs as the RunSpecs (key, config, seeds) the sweep runs."""
    return resolve_plan(plan, NoRead())


def tiny_tcvae_plan():
    """β-TCVAE, one seed, one epoch, on 16×16 Blobs (N = 256)."""
    from welavae.config import DataConfig, TrainConfig
    from welavae.experiments.plan import ModelSpec

    return [ModelSpec("tcvae", "tcvae", DataConfig(variants=1, size=16, shape="disk"), (0,),
                      hyper=dict(hidden=(16,), train=TrainConfig(epochs=1, batch_size=32, lr=1e-3, checkpoint_every=1)))]
