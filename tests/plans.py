"""Helpers for the tests of sweep plans: resolve a plan's configs without reading its data."""
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
