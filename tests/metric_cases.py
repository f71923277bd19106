"""Shared synthetic representations and factors for the metric tests (test_metrics_*.py)."""
import numpy as np

C = np.arange(64.0)
GRID = np.stack(np.meshgrid(C, C, indexing="ij"), axis=-1).reshape(-1, 2)  # (4096, 2) independent (c1, c2)
# 8 × 8 grid, each cell 16 times: (1024, 2) discrete factors for the classifier-based metrics.
G8 = np.repeat(np.stack(np.meshgrid(np.arange(8), np.arange(8), indexing="ij"), -1).reshape(-1, 2), 16, 0)
SMALL = dict(num_train=400, num_test=200)  # keeps GradientBoostingClassifier to 400 points
TINY = dict(num_train=200, num_test=100)
KEYS = {"mig", "modularity", "dci_disentanglement", "dci_completeness", "dci_informativeness_train",
        "dci_informativeness_test", "sap", "factor_vae", "factor_vae_train", "params"}


def _jitter(x, seed=0, scale=0.3):
    """Code = factors + uniform noise smaller than half the spacing: still perfectly separable."""
    return x + np.random.default_rng(seed).uniform(-scale, scale, size=x.shape)


def _entropy_of(labels):
    p = np.unique(labels, return_counts=True)[1] / len(labels)
    return -np.sum(p * np.log(p))



def _dlib_dci(r):
    """disentanglement_lib dci.disentanglement / completeness with scipy.stats.entropy inlined."""
    def entropy(p, base):  # scipy.stats.entropy: normalises along axis 0
        p = p / p.sum(axis=0)
        return -np.sum(p * np.log(p), axis=0) / np.log(base)

    per_code = 1 - entropy(r.T + 1e-11, r.shape[1])
    per_factor = 1 - entropy(r + 1e-11, r.shape[0])
    return (np.sum(per_code * r.sum(1) / r.sum()), np.sum(per_factor * r.sum(0) / r.sum()))

