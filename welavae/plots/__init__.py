"""Plots: the paper's qualitative figures (Figures 1, 3, 4, 5) as pure functions."""
from .figures import (
    heatmaps_from_mu,
    label_maps,
    label_regions,
    latent_figure,
    latent_scatter,
    mse_distributions,
    sample_grid,
    save_figure,
    traversal_grid,
)

__all__ = [
    "sample_grid",
    "label_maps",
    "label_regions",
    "latent_figure",
    "latent_scatter",
    "mse_distributions",
    "heatmaps_from_mu",
    "traversal_grid",
    "save_figure",
]
