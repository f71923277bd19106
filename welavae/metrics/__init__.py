"""Metrics: coordinate MSE (paper §4.2, eqs. 5–7), weak-label accuracy and Table-1
seed statistics (§4.4), and standard disentanglement metrics (MIG, DCI, SAP,
modularity) as pure numpy array cores."""
from .accuracy import label_accuracy
from .coordinates import (
    CARTESIAN_RANGE,
    D_RANGE,
    PHI_RANGE,
    CoordinateMSE,
    cartesian_mse,
    coordinate_mse,
    polar_mse,
)
from .disentanglement import (
    DCIResult,
    all_metrics,
    dci,
    dci_from_importance,
    dci_importance,
    histogram_discretize,
    mig,
    modularity,
    modularity_from_mi,
    mutual_info_matrix,
    sap,
)
from .stats import seed_summary

__all__ = [
    # coordinate MSE (eqs. 5–7)
    "CoordinateMSE",
    "cartesian_mse",
    "polar_mse",
    "coordinate_mse",
    "CARTESIAN_RANGE",
    "PHI_RANGE",
    "D_RANGE",
    # weak-label accuracy and seed statistics (Table 1)
    "label_accuracy",
    "seed_summary",
    # disentanglement metrics
    "DCIResult",
    "histogram_discretize",
    "mutual_info_matrix",
    "mig",
    "dci_importance",
    "dci_from_importance",
    "dci",
    "sap",
    "modularity_from_mi",
    "modularity",
    "all_metrics",
]
