"""Where every random draw of a run comes from (STYLE 3: randomness is explicit).

A run is fully determined by ``(config, seed)``: each draw uses its own CPU
``torch.Generator``, seeded from integers that name it, so a seed's run does
not depend on the other seeds trained beside it, on the device, or on where
an interrupted run was resumed (the epoch counter is the RNG state):

* initial weights of seed s: ``init_generators([s])``, one generator per seed,
  drawn layer by layer in a fixed order;
* the shared data order of epoch e: ``epoch_permutation(n, data_seed, e)``;
* the reparameterisation noise of seed s in epoch e: ``epoch_noise``;
* CCVAE's R draws of the label latents of seed s in step t of epoch e: ``classifier_noise``.

The integer mixing below is this package's since 0.1.0 and is kept as it is:
replacing it (e.g. by ``numpy.random.SeedSequence``) would change every
seed's weights and every published number of earlier runs, and break
resuming their checkpoints bit for bit.  Data sets and label subsets use
``numpy.random.default_rng(seed)`` directly.
"""
from __future__ import annotations

import torch

__all__ = ["init_generators", "derived_generator", "epoch_permutation", "epoch_noise", "classifier_noise", "MAX_SEED"]

_INIT_STRIDE = 1_000_003  # a prime: seeds s and purposes q < stride never collide
#: The largest seed: ``torch.Generator.manual_seed`` takes at most 2**64 − 1, and seed s starts at s·stride + q.
MAX_SEED = ((1 << 64) - 1) // _INIT_STRIDE - 1


def init_generators(seeds, purpose: int = 0) -> list[torch.Generator]:
    """One CPU generator per seed for a given purpose (0 = weight initialisation)."""
    return [torch.Generator().manual_seed(int(s) * _INIT_STRIDE + purpose) for s in seeds]


def derived_generator(*keys: int) -> torch.Generator:
    """A CPU generator seeded by mixing integer keys (a 63-bit linear congruential chain)."""
    h = 0x9E3779B97F4A7C15
    for k in keys:
        h = (h * 6364136223846793005 + int(k) + 1442695040888963407) % (1 << 63)
    return torch.Generator().manual_seed(h)


def epoch_permutation(n: int, data_seed: int, epoch: int) -> torch.Tensor:
    """The order of the n samples in epoch ``epoch``, shared by all seeds of a run."""
    return torch.randperm(n, generator=derived_generator(1, data_seed, epoch))


def epoch_noise(seeds, epoch: int, steps: int, batch: int, k: int) -> torch.Tensor:
    """(S, steps, B, K) standard normal noise, each seed from its own (seed, epoch) generator."""
    return torch.stack([torch.randn(steps, batch, k, generator=derived_generator(2, s, epoch)) for s in seeds])


def classifier_noise(seeds, epoch: int, step: int, draws: int, batch: int, m: int) -> torch.Tensor:
    """(S, draws, B, m) standard normal noise of CCVAE's q̂(y|x) (:func:`welavae.objectives.ccvae.ccvae_log_qy_x`)
    in step ``step`` of epoch ``epoch``, each seed from its own (seed, epoch, step) generator (drawn per step: an
    epoch's worth would be R times the size of :func:`epoch_noise`)."""
    return torch.stack([torch.randn(draws, batch, m, generator=derived_generator(3, s, epoch, step)) for s in seeds])
