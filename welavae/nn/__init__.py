"""Seed-stacked networks: one program for S seeds."""
from .ensemble import SharedInputLinear, StackedLinear
from .vae import EnsembleVAE, plain_networks, seed_parameters

__all__ = ["SharedInputLinear", "StackedLinear", "EnsembleVAE", "plain_networks", "seed_parameters"]
