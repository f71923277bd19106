"""The one converter and validator of the metrics' array inputs (mu, factors, targets).

Every metric takes numpy arrays or torch tensors (on any device, with or
without grad); :func:`to_numpy` is the only place that knows about tensors.
The checks raise one ``ValueError`` sentence naming the argument, what was
expected and what came, so that the CLI can print it as it is.
"""
from __future__ import annotations

import numpy as np

__all__ = ["to_numpy", "as_2d", "factor_codes", "check_pair", "check_bins", "check_count"]


def to_numpy(x, dtype=None) -> np.ndarray:
    """A numpy array or torch tensor → numpy array (``dtype`` None keeps the array's own)."""
    if hasattr(x, "detach"):  # torch tensor, possibly requiring grad or on GPU
        x = x.detach().cpu().numpy()
    return np.asarray(x) if dtype is None else np.asarray(x, dtype=dtype)


def as_2d(x, name: str, what: str, *, vector: bool = True) -> np.ndarray:
    """x → (N, D) float64 with finite values; a 1-D x is one column when ``vector``.

    ``what`` describes the expected array in the error, e.g. "(N, K) of encoder means".
    """
    x = to_numpy(x, np.float64)
    if vector and x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array {what}, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or inf; cannot score it")
    return x


def factor_codes(factors, name: str = "factors") -> np.ndarray:
    """(N, F) integer-valued factors → int64 class indices; a clear error for continuous ones."""
    f = as_2d(factors, name, "(N, F) of integer class indices")
    bad = [j for j in range(f.shape[1]) if not np.all(f[:, j] == np.round(f[:, j]))]
    if bad:
        j = bad[0]
        example = f[f[:, j] != np.round(f[:, j]), j][0]
        arg = name.split()[0]  # "factors (columns not listed in continuous)" → "factors"
        raise ValueError(
            f"{name} column {j} is continuous (e.g. {example:.4g}); these metrics need discrete "
            f"factors — bin it first with discretize_factors({arg}, continuous={bad})"
        )
    return f.astype(np.int64)


def check_pair(mu, factors, *, mu_name: str = "mu", factors_name: str = "factors") -> tuple[np.ndarray, np.ndarray]:
    """mu (N, K) float and factors (N, F) class indices of the same N ≥ 2 samples."""
    mu = as_2d(mu, mu_name, "(N, K) of encoder means")
    codes = factor_codes(factors, factors_name)
    if mu.shape[0] != codes.shape[0]:
        raise ValueError(
            f"{mu_name} has {mu.shape[0]} samples but {factors_name} has {codes.shape[0]}; they must match"
        )
    if mu.shape[0] < 2:
        raise ValueError(f"need at least 2 samples to score a representation, got {mu.shape[0]}")
    return mu, codes


def check_bins(bins) -> int:
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    return int(bins)


def check_count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
