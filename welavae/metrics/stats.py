"""Table-1 statistics over seeds (paper §4.4, Table 1).

The paper reports, per model over 50 seeds, the lowest MSE, the mean MSE and
the mean of the best 10 % of seeds.  Seeds that diverged (non-finite loss)
have no representation worth scoring: they are excluded and counted.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["seed_summary"]


def seed_summary(values, *, valid=None, best_fraction: float = 0.1) -> dict:
    """Summarise per-seed scores where lower is better.

    values: (S,) per-seed scores; non-finite entries count as excluded.
    valid:  optional (S,) bool, False for seeds to exclude (e.g. diverged).
    Returns ``{"lowest", "mean", "best_mean", "best_k", "n", "excluded", "argmin"}``
    where ``best_mean`` averages the ``best_k = ceil(best_fraction · n)`` lowest
    scores of the ``n`` included seeds and ``argmin`` indexes ``values``.
    With no seed included every statistic is NaN and ``argmin`` is -1.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    keep = np.isfinite(v)
    if valid is not None:
        valid = np.asarray(valid, dtype=bool).reshape(-1)
        if valid.shape != v.shape:
            raise ValueError(f"valid has shape {valid.shape}, expected {v.shape}")
        keep &= valid
    n = int(keep.sum())
    if n == 0:
        nan = float("nan")
        return {"lowest": nan, "mean": nan, "best_mean": nan, "best_k": 0, "n": 0,
                "excluded": int(v.size), "argmin": -1}
    kept = np.sort(v[keep])
    k = max(1, math.ceil(best_fraction * n - 1e-9))
    idx = np.flatnonzero(keep)
    return {
        "lowest": float(kept[0]),
        "mean": float(kept.mean()),
        "best_mean": float(kept[:k].mean()),
        "best_k": k,
        "n": n,
        "excluded": int(v.size - n),
        "argmin": int(idx[np.argmin(v[keep])]),
    }
