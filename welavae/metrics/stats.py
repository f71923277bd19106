"""Table-1 statistics over seeds (paper §4.4, Table 1), and what the paper leaves out.

The paper reports, per model over 50 seeds, the lowest MSE, the mean MSE and
the mean of the best 10 % of seeds.  Seeds that diverged (non-finite loss)
have no representation worth scoring: they are excluded and counted.

The lowest of 50 seeds says what a model *can* learn, not how often it does.
So we add the median, a bootstrap interval of the mean (how far the mean of
this many seeds could move) and the success rate: the fraction of seeds that
found the polar code at all, i.e. whose MSE is below :data:`SUCCESS_MSE`.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["seed_summary", "bootstrap_mean_ci", "success_rate", "SUCCESS_MSE", "BOOTSTRAP_RESAMPLES"]

#: A seed "succeeds" when its coordinate MSE (paper eqs. 5–7) is below this.  A perfect
#: Cartesian code scores 668.8 on the polar task (tests/test_metrics_coordinates.py) and a
#: perfect polar code 407.3 on the Cartesian one: 100 is a sixth of the first and a quarter
#: of the second, so a seed below it has learned the task's coordinates, not the other pair.
SUCCESS_MSE = 100.0
#: Resamples of :func:`bootstrap_mean_ci`: the 2.5 % tail then holds 250 of them, enough for
#: the interval's ends to move by well under its width between bootstrap seeds.
BOOTSTRAP_RESAMPLES = 10_000


def seed_summary(values, *, valid=None, best_fraction: float = 0.1) -> dict:
    """Summarise per-seed scores where lower is better.

    values: (S,) per-seed scores; non-finite entries count as excluded.
    valid:  optional (S,) bool, False for seeds to exclude (e.g. diverged).
    Returns ``{"lowest", "mean", "median", "best_mean", "best_k", "n", "excluded", "argmin"}``
    where ``best_mean`` averages the ``best_k = ceil(best_fraction · n)`` lowest
    scores of the ``n`` included seeds and ``argmin`` indexes ``values``.
    With no seed included every statistic is NaN and ``argmin`` is -1.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    keep = _kept(v, valid)
    n = int(keep.sum())
    if n == 0:
        nan = float("nan")
        return {"lowest": nan, "mean": nan, "median": nan, "best_mean": nan, "best_k": 0, "n": 0,
                "excluded": int(v.size), "argmin": -1}
    kept = np.sort(v[keep])
    k = max(1, math.ceil(best_fraction * n - 1e-9))
    idx = np.flatnonzero(keep)
    return {
        "lowest": float(kept[0]),
        "mean": float(kept.mean()),
        "median": float(np.median(kept)),
        "best_mean": float(kept[:k].mean()),
        "best_k": k,
        "n": n,
        "excluded": int(v.size - n),
        "argmin": int(idx[np.argmin(v[keep])]),
    }


def bootstrap_mean_ci(values, *, level: float = 0.95, n_resamples: int = BOOTSTRAP_RESAMPLES,
                      seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (Efron & Tibshirani 1993, §13.3).

    values: (n,) scores; non-finite entries are dropped first.  Draws
    ``n_resamples`` samples of size n with replacement from a generator seeded
    by ``seed`` (same input, same interval), and returns the (1−level)/2 and
    (1+level)/2 percentiles of their means.  No finite value → (NaN, NaN);
    one value v → (v, v).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_resamples, v.size))].mean(axis=1)  # (n_resamples,)
    lo, hi = np.percentile(means, [50.0 * (1.0 - level), 50.0 * (1.0 + level)])
    return float(lo), float(hi)


def success_rate(values, threshold: float = SUCCESS_MSE, *, valid=None) -> float:
    """Fraction of the given seeds whose score is below ``threshold``.

    values: (S,) per-seed scores of every finished seed; a non-finite score or
    ``valid`` False (a diverged seed) counts as a seed that did not succeed,
    not as one left out.  No seed → NaN.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        return float("nan")
    return float(np.sum(_kept(v, valid) & (v < threshold)) / v.size)


def _kept(v: np.ndarray, valid) -> np.ndarray:
    keep = np.isfinite(v)
    if valid is not None:
        valid = np.asarray(valid, dtype=bool).reshape(-1)
        if valid.shape != v.shape:
            raise ValueError(f"valid has shape {valid.shape}, expected {v.shape}")
        keep &= valid
    return keep
