"""Seeded train/test splits of a fixed data set for the classifier-based metrics (DCI, SAP).

disentanglement_lib draws ``num_train = 10000`` training and ``num_test =
5000`` test points afresh from the generator (``dci.gin``, ``sap_score.gin``);
a fixed data set of N < 15000 samples is split 2 : 1 instead, and groups
(e.g. the variants of one Blobs position) can be kept on one side.
"""
from __future__ import annotations

import numpy as np

from ._checks import check_count

__all__ = ["NUM_TRAIN", "NUM_TEST", "split_indices"]

#: disentanglement_lib's study defaults (``metric_configs/dci.gin``, ``sap_score.gin``).
NUM_TRAIN = 10_000
NUM_TEST = 5_000


def split_indices(n: int, *, num_train: int = NUM_TRAIN, num_test: int = NUM_TEST, seed: int = 0,
                  groups=None) -> tuple[np.ndarray, np.ndarray]:
    """Seeded disjoint train/test sample indices.

    Takes ``num_train`` and ``num_test`` samples; when n < num_train + num_test
    both shrink in proportion (10000 : 5000 → a 2 : 1 split of n).  ``groups``:
    optional (n,) labels (e.g. Blobs position c1·64 + c2); every group then lies
    on one side only: groups are taken in random order, the training set is
    the first ``num_train`` samples (so its last group may be cut short) and
    the test set starts at the next group.
    """
    n = check_count(n, "n")
    num_train, num_test = check_count(num_train, "num_train"), check_count(num_test, "num_test")
    if n < 2:
        raise ValueError(f"need at least 2 samples to split into train and test, got {n}")
    if num_train + num_test > n:
        num_train = min(max(n * num_train // (num_train + num_test), 1), n - 1)
        num_test = n - num_train
    rng = np.random.default_rng(seed)
    if groups is None:
        order = rng.permutation(n)
        return order[:num_train], order[num_train:num_train + num_test]
    g = np.asarray(groups).reshape(-1)
    if g.shape[0] != n:
        raise ValueError(f"groups must have one label per sample ({n}), got {g.shape[0]}")
    _, inv = np.unique(g, return_inverse=True)
    rank = rng.permutation(inv.max() + 1)[inv]  # random order of the groups
    order = np.lexsort((rng.random(n), rank))  # grouped, shuffled within each group
    ranks = rank[order]
    start = int(np.searchsorted(ranks, ranks[num_train - 1], side="right"))
    test = order[start:start + num_test]
    if test.size == 0:
        raise ValueError(
            f"the groups leave no sample for the test split: the training set of {num_train} "
            f"samples already takes every group; pass a smaller num_train"
        )
    return order[:num_train], test
