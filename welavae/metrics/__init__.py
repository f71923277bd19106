"""Metrics: coordinate MSE (paper §4.2, eqs. 5–7), weak-label accuracy and Table-1
seed statistics (§4.4), and the standard disentanglement metrics (MIG, DCI, SAP,
modularity, FactorVAE score) and the downstream-task accuracy with disentanglement_lib's
definitions, as array cores — one module per metric, as disentanglement_lib has."""
from ._mi import (
    DiscreteFactors,
    discretize_factors,
    factor_entropy,
    histogram_discretize,
    mutual_info_matrix,
)
from ._split import split_indices
from .accuracy import label_accuracy
from .coordinates import (
    CARTESIAN_RANGE,
    D_RANGE,
    PHI_RANGE,
    CoordinateMSE,
    cartesian_mse,
    coordinate_mse,
    pair_mse,
    polar_mse,
)
from .dci import DCIResult, dci, dci_from_importance, gbt_importance
from .downstream import downstream_accuracies, downstream_task
from .factor_vae import FactorVAEResult, factor_vae_score
from .mig import mig
from .modularity import modularity, modularity_from_mi
from .sap import sap, sap_score_matrix
from .standard import all_metrics, standard_metrics
from .stats import seed_summary

__all__ = [
    # coordinate MSE (eqs. 5–7)
    "CoordinateMSE",
    "cartesian_mse",
    "polar_mse",
    "coordinate_mse",
    "pair_mse",
    "CARTESIAN_RANGE",
    "PHI_RANGE",
    "D_RANGE",
    # weak-label accuracy and seed statistics (Table 1)
    "label_accuracy",
    "seed_summary",
    # disentanglement metrics (disentanglement_lib definitions)
    "standard_metrics",
    "all_metrics",
    "DiscreteFactors",
    "discretize_factors",
    "histogram_discretize",
    "split_indices",
    "mutual_info_matrix",
    "factor_entropy",
    "mig",
    "modularity_from_mi",
    "modularity",
    "DCIResult",
    "gbt_importance",
    "dci_from_importance",
    "dci",
    "sap_score_matrix",
    "sap",
    "FactorVAEResult",
    "factor_vae_score",
    # downstream classification (disentanglement_lib downstream_task)
    "downstream_accuracies",
    "downstream_task",
]
