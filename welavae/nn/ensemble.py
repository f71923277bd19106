"""Seed-stacked layers: S independent networks evaluated as one program.

Every parameter carries a seed axis, so one forward pass trains 1 or 50
seeds.  Three layouts:

* :class:`SharedInputLinear` — the first layer, whose input batch is shared
  by all seeds (the paper varies only the initialisation).  Its weight is
  stored ``(in, S, out)`` so that ``x @ W.view(in, S·out)`` is one wide
  matmul over all seeds — the largest and most efficient GEMM of the step.
* :class:`StackedLinear` — later layers, ``(S, in, out)``, a batched matmul.
* :class:`StackedHeads` — an output layer split into heads (image logits,
  label logits), each with its own weight, so every head's output and
  gradient is one contiguous block (no copy of the (S, B, 4096) gradient
  into a concatenated one in backward).

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

__all__ = ["SharedInputLinear", "StackedLinear", "StackedHeads", "DiagonalLabelHeads", "init_uniform"]


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

        ``extra`` (the one-hot labels) is appended to the batch — a (B, in) copy, small
        next to the weight — so that forward and the weight gradient are one GEMM each
        (splitting the weight instead costs a copy of the whole weight gradient).
        """
        s, o = self.seeds, self.out_features
        if extra is not None:
            x = torch.cat([x, extra.to(x.dtype)], dim=1)
        y = torch.addmm(self.bias.view(1, s * o), x, self.weight.view(self.in_features, s * o))  # (B, S·out)
        return y.view(-1, s, o).transpose(0, 1)  # (S, B, out), a view

    def seed_weight(self, i: int, grad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Seed i's parameters (or their gradients) in nn.Linear layout: weight (out, in), bias (out,)."""
        w, b = (self.weight.grad, self.bias.grad) if grad else (self.weight, self.bias)
        return w[:, i, :].t(), b[i]


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

    def seed_weight(self, i: int, grad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        w, b = (self.weight.grad, self.bias.grad) if grad else (self.weight, self.bias)
        return w[i].t(), b[i, 0]


class StackedHeads(nn.Module):
    """x (S, B, in) → one (S, B, out_j) per head.  Head j: ``weight{j}`` (S, in, out_j), ``bias{j}`` (S, 1, out_j).

    Equal to one :class:`StackedLinear` with Σ out_j outputs followed by a
    split, and initialised as that layer (the same random draws), so a seed's
    heads are one ``nn.Linear`` for :func:`seed_weight`.  But each head has
    its own weight, so its output and gradient are one contiguous block:
    backward needs no copy of the (S, B, 4096) image gradient into a
    concatenated (S, B, 4096 + labels) one.
    """

    def __init__(self, in_features: int, out_sizes, generators: list[torch.Generator]):
        super().__init__()
        self.out_sizes = [int(o) for o in out_sizes]
        w, b = init_linear_stack(in_features, sum(self.out_sizes), generators)
        self.seed_dims = {}
        for j, (wj, bj) in enumerate(zip(w.split(self.out_sizes, dim=2), b.split(self.out_sizes, dim=1))):
            self.register_parameter(f"weight{j}", nn.Parameter(wj.contiguous()))
            self.register_parameter(f"bias{j}", nn.Parameter(bj.unsqueeze(1).contiguous()))
            self.seed_dims[f"weight{j}"] = self.seed_dims[f"bias{j}"] = 0
        self.in_features, self.out_features, self.seeds = in_features, sum(self.out_sizes), len(generators)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(torch.baddbmm(getattr(self, f"bias{j}"), x, getattr(self, f"weight{j}"))
                     for j in range(len(self.out_sizes)))

    def seed_weight(self, i: int, grad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Seed i's heads as one nn.Linear: weight (Σ out, in), bias (Σ out,)."""
        heads = range(len(self.out_sizes))
        ws = [getattr(self, f"weight{j}") for j in heads]
        bs = [getattr(self, f"bias{j}") for j in heads]
        if grad:
            ws, bs = [w.grad for w in ws], [b.grad for b in bs]
        return torch.cat([w[i] for w in ws], dim=1).t(), torch.cat([b[i, 0] for b in bs])


class DiagonalLabelHeads(nn.Module):
    """Label j from latent j alone (CCVAE-style, Joy et al. 2021): z (S, B, K) → one (S, B, p_j) per label.

    logits_j[c] = a_{j,c} · z_j + b_{j,c}, a per-class affine map of one latent;
    latents m … K−1 carry no label.  weight, bias (S, 1, Σ p_j), initialised as
    ``nn.Linear(1, Σ p_j)`` per seed; ``latent_of`` (Σ p_j,) maps each column to its latent.
    """

    seed_dims = {"weight": 0, "bias": 0}

    def __init__(self, label_dims, generators: list[torch.Generator]):
        super().__init__()
        self.label_dims = [int(p) for p in label_dims]
        total = sum(self.label_dims)
        w, b = init_linear_stack(1, total, generators)  # (S, 1, Σp), (S, Σp)
        self.weight = nn.Parameter(w)
        self.bias = nn.Parameter(b.unsqueeze(1))
        # On the CPU even under ``torch.device("meta")`` (a checkpoint's model is built there and takes its
        # saved tensors; this buffer is not saved, so it must hold its values).
        latent_of = torch.cat([torch.full((p,), j, dtype=torch.int64, device="cpu")
                               for j, p in enumerate(self.label_dims)])
        self.register_buffer("latent_of", latent_of, persistent=False)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits = torch.addcmul(self.bias, z[..., self.latent_of], self.weight)  # (S, B, Σp)
        return logits.split(self.label_dims, dim=-1)
