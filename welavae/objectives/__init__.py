"""Objective terms of WeLa-VAE (paper eq. 4): pure per-sample functions, composed once."""
from .dip import dip_covariance, dip_regulariser
from .kl import gaussian_kl, log_normal
from .likelihoods import bernoulli_nll, categorical_nll
from .objective import objective_terms
from .tc import importance_weights, kl_decomposition, log_importance_weights, total_correlation

__all__ = [
    "bernoulli_nll",
    "categorical_nll",
    "gaussian_kl",
    "log_normal",
    "total_correlation",
    "importance_weights",
    "log_importance_weights",
    "kl_decomposition",
    "dip_covariance",
    "dip_regulariser",
    "objective_terms",
]
