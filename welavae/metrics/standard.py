"""Every standard disentanglement metric of one representation, as one JSON-ready dict.

The paper (§4.2) argues these metrics only measure statistical relation and so
cannot judge a *polar* representation; we still report them against both the
Cartesian and the polar factors so that claim can be checked.  Each metric is
the array core of google-research/disentanglement_lib (Locatello et al., 2019)
in its own module, as there — :mod:`.mig`, :mod:`.modularity`, :mod:`.dci`,
:mod:`.sap`, :mod:`.factor_vae` — with the defaults of its study configs
(``config/unsupervised_study_v1/metric_configs/*.gin``).

* **Factors are discrete.**  ``factors`` (N, F) hold integer class indices, as
  the ground-truth factors of disentanglement_lib's data sets do; the metrics
  refuse non-integer columns.  A continuous factor (the polar φ and d of
  Blobs) is binned explicitly first, with
  :func:`welavae.metrics.discretize_factors`, which records which factors
  were binned and how (``params["binned_factors"]``).
* **Sizes**: DCI and SAP train on ``num_train = 10000`` and test on
  ``num_test = 5000`` points of one :func:`welavae.metrics.split_indices`
  split; MIG and modularity use every sample given; the FactorVAE score uses
  its own sizes (:mod:`.factor_vae`).

Where disentanglement_lib would divide by zero or crash — a constant factor,
one class in a training split, a single latent — we score 0 (or predict the
one class) instead of NaN.
"""
from __future__ import annotations

import numpy as np

from ._checks import as_2d, check_bins, check_pair
from ._mi import NUM_BINS, discretize_factors
from ._split import NUM_TEST, NUM_TRAIN
from .dci import dci
from .factor_vae import factor_vae_score
from .mig import mig
from .modularity import modularity
from .sap import sap

__all__ = ["standard_metrics", "all_metrics"]


def standard_metrics(mu, factors, *, continuous=(), bins: int = NUM_BINS, factor_bins: int = NUM_BINS,
                     seed: int = 0, num_train: int = NUM_TRAIN, num_test: int = NUM_TEST,
                     groups=None, factor_vae: bool = True) -> dict:
    """Every standard metric of one representation, as one JSON-ready dict.

    mu: (N, K) encoder means; factors: (N, F); ``continuous``: the factor
    columns to bin into ``factor_bins`` equal-width bins first
    (:func:`welavae.metrics.discretize_factors`); the others must be class
    indices.  ``bins``: bins per latent for MIG and modularity.  DCI and SAP
    use the same :func:`welavae.metrics.split_indices` split (``num_train``,
    ``num_test``, ``seed``, ``groups``).  The FactorVAE score
    (:func:`welavae.metrics.factor_vae_score`, disentanglement_lib's sizes)
    reads the rows of ``mu`` as the encoder's output on the data set's own samples.

    Returns ``{"mig", "modularity", "dci_disentanglement", "dci_completeness",
    "dci_informativeness_train", "dci_informativeness_test", "sap",
    "factor_vae", "factor_vae_train", "params"}``; ``params`` records the
    parameters, the split sizes actually used and every binned factor.
    """
    mu = as_2d(mu, "mu", "(N, K) of encoder means")
    disc = discretize_factors(factors, continuous=continuous, bins=factor_bins)
    mu, y = check_pair(mu, disc.codes)
    bins = check_bins(bins)
    split = dict(num_train=num_train, num_test=num_test, seed=seed, groups=groups)
    d = dci(mu, y, **split)
    out = {
        "mig": mig(mu, y, bins=bins),
        "modularity": modularity(mu, y, bins=bins),
        "dci_disentanglement": d.disentanglement,
        "dci_completeness": d.completeness,
        "dci_informativeness_train": d.informativeness_train,
        "dci_informativeness_test": d.informativeness_test,
        "sap": sap(mu, y, **split),  # the same seeded split as DCI's
    }
    params = {
        "num_samples": int(len(mu)),
        "representation_bins": bins,
        "binned_factors": [dict(r) for r in disc.binned],
        "seed": int(seed),
        "num_train": int(d.num_train),
        "num_test": int(d.num_test),
        "num_train_requested": int(num_train),
        "num_test_requested": int(num_test),
        "split": "by group" if groups is not None else "by sample",
        "dci": "GradientBoostingClassifier() per factor",
        "sap": "LinearSVC(C=0.01, class_weight='balanced') per latent and factor",
    }
    if factor_vae:
        fv = factor_vae_score(lambda idx: mu[idx], np.arange(len(mu)), y, seed=seed)
        out["factor_vae"] = fv.eval_accuracy
        out["factor_vae_train"] = fv.train_accuracy
        params["factor_vae"] = fv.params()
    out["params"] = params
    return out


def all_metrics(mu, factors, **kwargs) -> dict:
    """:func:`standard_metrics` with continuous factors and groups found from ``factors`` itself.

    Kept for callers that pass raw factors (Blobs' integer (c1, c2) or the
    continuous polar (φ, d)): every non-integer column is binned into
    ``factor_bins`` (default 20) bins — and recorded in ``params`` — and samples
    with the same factor row (the variants of one position) form one group of
    the train/test split.  Keyword arguments go to :func:`standard_metrics`.
    """
    f = as_2d(factors, "factors", "(N, F) of ground-truth factors")
    kwargs.setdefault("continuous", [j for j in range(f.shape[1]) if not np.all(f[:, j] == np.round(f[:, j]))])
    if "groups" not in kwargs:
        kwargs["groups"] = np.unique(f, axis=0, return_inverse=True)[1].reshape(-1)
    return standard_metrics(mu, f, **kwargs)
