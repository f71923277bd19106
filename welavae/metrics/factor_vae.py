"""FactorVAE disentanglement score (Kim & Mnih 2018, "Disentangling by Factorising", §4).

Follows disentanglement_lib's ``evaluation/metrics/factor_vae.py`` with the
study defaults of ``metric_configs/factor_vae_metric.gin``: batch_size = 64,
num_train = 10000, num_eval = 5000, num_variance_estimate = 10000,
``prune_dims.threshold = 0.05``.

1. Global variances: the variance (ddof = 1) of each latent over
   ``num_variance_estimate`` random samples.  Latents whose standard deviation
   is below ``prune_threshold`` are pruned as collapsed to the prior
   (``_prune_dims``: √var ≥ 0.05, an absolute threshold on the latent scale).
2. One vote: pick a factor k uniformly, fix it to the value v of a random
   sample, draw ``batch_size`` samples having factor k = v (with replacement,
   from the data set's own factors — never from the model), encode them and
   take the active latent with the smallest variance / global variance, i.e.
   the smallest variance after normalising each latent by its empirical
   standard deviation.  The vote is (k, argmin latent).
3. Majority-vote classifier: each latent predicts the factor it most often
   voted for on ``num_train`` training votes; accuracy on those votes and on
   ``num_eval`` fresh evaluation votes.

disentanglement_lib samples whole factor vectors uniformly and renders them;
on a data set that holds every factor combination equally often (Blobs: one
row per position and variant) drawing a random sample and then samples that
share its factor value is that same distribution.  disentanglement_lib
indexes votes by the position among the *active* latents and reports
``num_active_dims`` as K; we vote for the latent's own index and count the
active ones — the accuracies are the same.

``encode`` maps ``images[idx]`` to (n, K) means, so a caller holding stored
encoder means can pass ``images = np.arange(N)`` and
``encode = lambda idx: mu[idx]`` (the encoder is deterministic: μ of a
data-set image is its stored row).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import check_count, factor_codes, to_numpy

__all__ = ["FactorVAEResult", "factor_vae_score"]

#: images encoded per call of ``encode`` (bounds memory for real images).
_CHUNK = 8192


@dataclass(frozen=True, eq=False)
class FactorVAEResult:
    """FactorVAE score.

    train_accuracy, eval_accuracy: majority-vote accuracy on the training and
    evaluation votes (the score is ``eval_accuracy``); active: (K,) bool, the
    latents kept by pruning; global_variances: (K,); votes_train, votes_eval:
    (F, K) int64 vote counts; settings: the parameters the score was run with.
    """

    train_accuracy: float
    eval_accuracy: float
    active: np.ndarray
    global_variances: np.ndarray
    votes_train: np.ndarray
    votes_eval: np.ndarray
    settings: dict

    @property
    def num_active_dims(self) -> int:
        return int(self.active.sum())

    def params(self) -> dict:
        """JSON-ready record of the settings and the number of active latents."""
        return {**self.settings, "num_active_dims": self.num_active_dims}


def _encode(encode, images, idx: np.ndarray) -> np.ndarray:
    """(M,) sample indices → (M, K) float64 means, encoded in chunks of ``_CHUNK``."""
    parts = []
    for s in range(0, len(idx), _CHUNK):
        z = to_numpy(encode(images[idx[s:s + _CHUNK]]), np.float64)
        if z.ndim != 2 or z.shape[0] != len(idx[s:s + _CHUNK]):
            raise ValueError(f"encode must return (n, K) means for n images, got shape {z.shape}")
        parts.append(z)
    z = np.concatenate(parts)
    if not np.all(np.isfinite(z)):
        raise ValueError("encode returned NaN or inf; cannot score the representation")
    return z


def _votes(encode, images, lookup, rng, num_votes, batch_size, global_var, active):
    """(F, K) vote counts of ``num_votes`` fixed-factor batches."""
    f, k = len(lookup), global_var.shape[0]
    n = len(lookup[0][0])
    votes = np.zeros((f, k), dtype=np.int64)
    active_idx = np.flatnonzero(active)
    per_chunk = max(_CHUNK // batch_size, 1)
    for s in range(0, num_votes, per_chunk):
        m = min(per_chunk, num_votes - s)
        factor = rng.integers(f, size=m)  # (m,) factor kept fixed in each batch
        anchor = rng.integers(n, size=m)  # (m,) sample whose value it is fixed to
        draw = rng.random((m, batch_size))  # (m, B) uniform position among that value's samples
        idx = np.empty((m, batch_size), dtype=np.int64)
        for j in range(f):
            rows = np.flatnonzero(factor == j)
            order, start, count = lookup[j]
            a = anchor[rows]
            offset = np.minimum((draw[rows] * count[a][:, None]).astype(np.int64), count[a][:, None] - 1)
            pos = start[a][:, None] + offset  # (r, B) positions in the sorted column
            idx[rows] = order[pos]
        z = _encode(encode, images, idx.reshape(-1)).reshape(m, batch_size, k)  # (m, B, K)
        local = np.var(z, axis=1, ddof=1)  # (m, K)
        argmin = active_idx[np.argmin(local[:, active_idx] / global_var[active_idx], axis=1)]
        np.add.at(votes, (factor, argmin), 1)
    return votes


def _accuracy(votes: np.ndarray, classifier: np.ndarray) -> float:
    total = votes.sum()
    return float(votes[classifier, np.arange(votes.shape[1])].sum() / total) if total else 0.0


def factor_vae_score(encode, images, factors, *, seed: int = 0, batch_size: int = 64,
                     num_train: int = 10_000, num_eval: int = 5_000, num_variance_estimate: int = 10_000,
                     prune_threshold: float = 0.05) -> FactorVAEResult:
    """FactorVAE score of ``encode`` on a data set (disentanglement_lib ``compute_factor_vae``).

    encode: images[idx] → (n, K) encoder means; images: anything indexable by
    an int array of sample indices (an (N, …) image array, or ``np.arange(N)``
    with an ``encode`` that looks stored means up); factors: (N, F) class
    indices of the same samples (bin continuous factors first with
    :func:`welavae.metrics.discretize_factors`).  All randomness comes from
    ``numpy.random.default_rng(seed)``.  With no active latent both accuracies
    are 0, as in disentanglement_lib.
    """
    codes = factor_codes(factors)
    n = codes.shape[0]
    for name, value in (("batch_size", batch_size), ("num_train", num_train), ("num_eval", num_eval),
                        ("num_variance_estimate", num_variance_estimate)):
        check_count(value, name)
    if batch_size < 2 or num_variance_estimate < 2:
        raise ValueError("batch_size and num_variance_estimate must be at least 2 to estimate a variance")
    if len(images) != n:
        raise ValueError(f"images has {len(images)} samples but factors has {n}; they must match")
    settings = {"batch_size": int(batch_size), "num_train": int(num_train), "num_eval": int(num_eval),
                "num_variance_estimate": int(num_variance_estimate),
                "prune_threshold": float(prune_threshold), "seed": int(seed)}
    rng = np.random.default_rng(seed)

    z = _encode(encode, images, rng.integers(n, size=num_variance_estimate))
    global_var = np.var(z, axis=0, ddof=1)  # (K,)
    active = (np.sqrt(global_var) >= prune_threshold) & (global_var > 0)  # a constant latent cannot be normalised
    k = global_var.shape[0]
    if not active.any():
        empty = np.zeros((codes.shape[1], k), dtype=np.int64)
        return FactorVAEResult(0.0, 0.0, active, global_var, empty, empty.copy(), settings)

    # Per factor j: samples sorted by value, and for every sample where its value's run
    # starts in that order and how long it is — a batch with factor j fixed to the
    # value of sample a is order[start[a] + U·count[a]] with U uniform in [0, 1).
    lookup = []
    for j in range(codes.shape[1]):
        order = np.argsort(codes[:, j], kind="stable")
        values, start, count = np.unique(codes[order, j], return_index=True, return_counts=True)
        value_of = np.searchsorted(values, codes[:, j])  # (N,) index of each sample's value
        lookup.append((order, start[value_of], count[value_of]))

    votes_train = _votes(encode, images, lookup, rng, num_train, batch_size, global_var, active)
    classifier = np.argmax(votes_train, axis=0)  # (K,) factor each latent predicts
    votes_eval = _votes(encode, images, lookup, rng, num_eval, batch_size, global_var, active)
    return FactorVAEResult(_accuracy(votes_train, classifier), _accuracy(votes_eval, classifier),
                           active, global_var, votes_train, votes_eval, settings)
