"""Seed-stacked layers: S independent networks evaluated as one program.

Every parameter carries a seed axis, so one forward pass trains 1 or 50
seeds.  Two layouts:

* :class:`SharedInputLinear` — the first layer, whose input batch is shared
  by all seeds (the paper varies only the initialisation).  Its weight is
  stored ``(in, S, out)`` so that ``x @ W.view(in, S·out)`` is one wide
  matmul over all seeds — the largest and most efficient GEMM of the step.
* :class:`StackedLinear` — later layers, ``(S, in, out)``, a batched matmul.

``seed_dims`` names each parameter's seed axis, so the trainer can freeze or
extract one seed without knowing the layer types.

Initialisation matches ``torch.nn.Linear``'s default, U(−1/√in, 1/√in) for
weight and bias, drawn per seed from that seed's own generator: a seed's
weights do not depend on which other seeds share the program.
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["SharedInputLinear", "StackedLinear", "init_uniform"]


def init_uniform(shape, bound: float, generator: torch.Generator) -> torch.Tensor:
    """U(−bound, bound) drawn on the CPU (identical on every device)."""
    return (torch.rand(shape, generator=generator, dtype=torch.float32) * 2.0 - 1.0) * bound


def init_linear_stack(in_features: int, out_features: int, generators) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-seed nn.Linear default init: weight (S, in, out), bias (S, out), seed i from generators[i]."""
    bound = 1.0 / math.sqrt(in_features)
    w = torch.empty(len(generators), in_features, out_features)
    b = torch.empty(len(generators), out_features)
    for i, g in enumerate(generators):
        # (out, in) first, as nn.Linear draws it, then transposed into place.
        w[i] = init_uniform((out_features, in_features), bound, g).t()
        b[i] = init_uniform((out_features,), bound, g)
    return w, b


class SharedInputLinear(nn.Module):
    """x (B, in) → (S, B, out): one wide GEMM for all seeds.  weight (in, S, out), bias (S, out)."""

    seed_dims = {"weight": 1, "bias": 0}

    def __init__(self, in_features: int, out_features: int, generators: list[torch.Generator]):
        super().__init__()
        w, b = init_linear_stack(in_features, out_features, generators)
        self.weight = nn.Parameter(w.transpose(0, 1).contiguous())  # (in, S, out)
        self.bias = nn.Parameter(b)
        self.in_features, self.out_features, self.seeds = in_features, out_features, len(generators)

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, in) → (S, B, out); or x (B, in − e) and ``extra`` (B, e) for the last e inputs.

        Passing the one-hot labels as ``extra`` equals concatenating them to x, without copying
        the image batch and with the image GEMM's inner dimension left at 4096 (aligned).
        """
        s, o = self.seeds, self.out_features
        w = self.weight.view(self.in_features, s * o)
        if extra is None:
            y = torch.addmm(self.bias.view(1, s * o), x, w)  # (B, S·out)
        else:
            # split(), not w[:d] / w[d:]: one gradient copy backward instead of two zero-filled ones.
            wx, we = w.split([x.shape[1], extra.shape[1]])
            y = torch.addmm(self.bias.view(1, s * o), x, wx).addmm(extra, we)
        return y.view(-1, s, o).transpose(0, 1)  # (S, B, out), a view

    def seed_weight(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Seed i's parameters in nn.Linear layout: weight (out, in), bias (out,)."""
        return self.weight[:, i, :].t(), self.bias[i]


class StackedLinear(nn.Module):
    """x (S, B, in) → (S, B, out).  weight (S, in, out), bias (S, 1, out)."""

    seed_dims = {"weight": 0, "bias": 0}

    def __init__(self, in_features: int, out_features: int, generators: list[torch.Generator]):
        super().__init__()
        w, b = init_linear_stack(in_features, out_features, generators)
        self.weight = nn.Parameter(w)
        self.bias = nn.Parameter(b.unsqueeze(1))  # (S, 1, out) broadcasts over the batch
        self.in_features, self.out_features, self.seeds = in_features, out_features, len(generators)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)

    def seed_weight(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.weight[i].t(), self.bias[i, 0]
