"""disentanglement_lib's convolutional VAE network for S seeds at once, as grouped convolutions.

The network of ``--arch conv`` (disentanglement_lib,
``methods/shared/architectures.py``: ``conv_encoder`` and ``deconv_decoder``,
after row 3 of Table 1 of Higgins et al. 2017, β-VAE; used on dSprites,
Shapes3D, MPI3D, Cars3D since Locatello et al. 2019).  For an H×W×C image:

* encoder: four 4×4 stride-2 convolutions with 32, 32, 64, 64 channels, each
  with a ReLU (H×W → H/16 × W/16), flattened, a dense layer of 256 (ReLU),
  and a dense layer of 2K outputs (mean and log-variance);
* decoder: dense 256 (ReLU), dense 64·(H/16)·(W/16) (ReLU), reshaped to 64
  channels, four 4×4 stride-2 transposed convolutions with 64, 32, 32, C
  channels (ReLU between them), giving the Bernoulli logits of every value.

This module holds the convolutions (:class:`ConvEncoder`,
:class:`ConvDecoder`); the dense layers are the seed-stacked ones of
:mod:`welavae.nn.ensemble`, and :class:`welavae.nn.vae.EnsembleVAE` puts
them together (weak labels join at the first dense layer).

Where we differ from disentanglement_lib's code, and why:

* Its ``conv_encoder`` gives the third and fourth convolutions a 2×2 kernel
  (``kernel_size=2``), unlike the 4×4 of the β-VAE paper's Table 1 that its
  docstring cites; we use 4×4 for all four, as the paper (and the issue) says.
* TensorFlow is channels-last: it flattens the last feature map in (h, w, c)
  order and reshapes the decoder's dense output as (4, 4, 64).  We flatten and
  reshape in PyTorch's (c, h, w) order.  The two differ by a fixed permutation
  of the dense layer's units, so they are the same family of functions.
* Initialisation: PyTorch's defaults (U(±1/√fan_in) for weights and biases,
  with ``nn.ConvTranspose2d``'s fan_in = out_channels·k²), not TF's Glorot.

**Padding.**  TF's ``padding="same"`` with kernel 4 and stride 2 on an even
size n gives n/2 outputs and pads (n/2 − 1)·2 + 4 − n = 2 in total, one before
and one after: exactly PyTorch's ``padding=1``.  Its ``conv2d_transpose`` with
``"same"`` is the adjoint of that convolution (output 2n), which is PyTorch's
``ConvTranspose2d(kernel_size=4, stride=2, padding=1)``: (n − 1)·2 − 2 + 4 = 2n.
Every intermediate size is even when H and W are divisible by 16, which
:class:`~welavae.config.ModelConfig` requires for ``arch="conv"``.

**Seeds.**  All S seeds run as one program: the first convolution reads the
shared batch with S·32 filters (like :class:`~welavae.nn.ensemble.SharedInputLinear`),
the others are grouped convolutions (``groups=S``, channels stacked seed-major:
seed i owns channels i·c … (i+1)·c − 1).  Measured on a 2-core CPU at S = 8,
batch 64, 64×64×1 (``scripts/conv_layouts.py``, docs/colour-and-conv.md):
about twice as fast as a loop over seeds, and level with ``torch.func.vmap``
within the machine's noise (vmap lowers such a convolution to the same grouped
one); we keep the grouped modules, whose weights are the stock layout.
Each seed's weights are drawn from its own generator
(:func:`welavae.seeding.init_generators`), so a seed's network does not
depend on the seeds beside it.

Shapes: B samples, S seeds, images (B, D) with D = H·W·C flattened in
(H, W, C) order, as the data are stored.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .ensemble import init_uniform

__all__ = ["ConvEncoder", "ConvDecoder", "ENCODER_CHANNELS", "DECODER_CHANNELS", "to_chw", "to_hwc"]

ENCODER_CHANNELS = (32, 32, 64, 64)
DECODER_CHANNELS = (64, 32, 32)  # then C, the image's channels
KERNEL, STRIDE, PADDING = 4, 2, 1  # TF "same" for even sizes (module docstring)


def to_chw(x: torch.Tensor, image_shape) -> torch.Tensor:
    """x (B, D) in (H, W, C) order → (B, C, H, W), contiguous."""
    h, w, c = image_shape
    return x.reshape(-1, h, w, c).permute(0, 3, 1, 2).contiguous()


def to_hwc(values: torch.Tensor, image_shape) -> torch.Tensor:
    """values (…, D) in (C, H, W) order → (…, D) in (H, W, C) order."""
    h, w, c = image_shape
    lead = values.shape[:-1]
    return values.reshape(*lead, c, h, w).movedim(-3, -1).reshape(*lead, h * w * c)


def _grouped_init(shape, bias: int, fan_in: int, generators) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-seed PyTorch default init of one conv layer: weight ``shape`` and ``bias`` entries per seed,
    U(±1/√fan_in), stacked seed-major along dim 0; each seed draws weight then bias from its own generator."""
    bound = 1.0 / math.sqrt(fan_in)
    ws, bs = [], []
    for g in generators:
        ws.append(init_uniform(shape, bound, g))
        bs.append(init_uniform((bias,), bound, g))
    return torch.cat(ws), torch.cat(bs)


class ConvEncoder(nn.Module):
    """x (B, D) → (S, B, 64·⌊H/16⌋·⌊W/16⌋): four 4×4 stride-2 convolutions with ReLU, S seeds via groups.

    ``convs[j]`` holds every seed's layer j: weight (S·c_out, c_in, 4, 4), bias
    (S·c_out,), seed i's part rows i·c_out … (i+1)·c_out − 1 (``nn.Conv2d``
    layout).  Layer 0 reads the shared (B, C, H, W) batch (groups 1), the
    others their own seed's channels (groups S).  Sizes not divisible by 16
    (``ModelConfig.encoder="conv"`` of 0.2.0 with the MLP decoder) shrink as
    n → ⌊n/2⌋ per layer.
    """

    channels = ENCODER_CHANNELS

    def __init__(self, generators, image_shape):
        super().__init__()
        self.image_shape = tuple(image_shape)
        s = self.seeds = len(generators)
        layers, cin = [], self.image_shape[2]
        for i, cout in enumerate(self.channels):
            conv = nn.Conv2d(cin if i == 0 else s * cin, s * cout, KERNEL, STRIDE, PADDING, groups=1 if i == 0 else s)
            w, b = _grouped_init((cout, cin, KERNEL, KERNEL), cout, cin * KERNEL * KERNEL, generators)
            with torch.no_grad():
                conv.weight.copy_(w)
                conv.bias.copy_(b)
            layers.append(conv)
            cin = cout
        self.convs = nn.ModuleList(layers)
        h, w = self.image_shape[:2]
        for _ in self.channels:  # kernel 4, stride 2, padding 1: n → ⌊n/2⌋
            h, w = h // 2, w // 2
        self.feature_shape = (self.channels[-1], h, w)
        self.out_features = self.channels[-1] * h * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = to_chw(x, self.image_shape) if self.image_shape[2] > 1 else x.view(-1, 1, *self.image_shape[:2])
        for conv in self.convs:
            h = F.relu(conv(h))  # (B, S·c, h, w)
        return h.view(h.shape[0], self.seeds, -1).transpose(0, 1)  # (S, B, 64·h·w), each seed's (c, h, w) flattened


class ConvDecoder(nn.Module):
    """h (S, B, 64·(H/16)·(W/16)) → image logits (S, B, D) in (C, H, W) order: four 4×4 stride-2 transposed convs.

    ``deconvs[j]``: weight (S·c_in, c_out, 4, 4), bias (S·c_out,) (``nn.ConvTranspose2d``
    layout; seed i owns rows i·c_in … of the weight and i·c_out … of the bias),
    ReLU between layers, none after the last (logits).
    """

    def __init__(self, generators, image_shape):
        super().__init__()
        self.image_shape = tuple(image_shape)
        s = self.seeds = len(generators)
        h, w, c = self.image_shape
        self.feature_shape = (ENCODER_CHANNELS[-1], h // 16, w // 16)
        sizes = (self.feature_shape[0], *DECODER_CHANNELS, c)
        layers = []
        for cin, cout in zip(sizes[:-1], sizes[1:]):
            deconv = nn.ConvTranspose2d(s * cin, s * cout, KERNEL, STRIDE, PADDING, groups=s)
            # nn.ConvTranspose2d's default init takes fan_in from weight.shape[1]·k² = c_out·16.
            w_, b_ = _grouped_init((cin, cout, KERNEL, KERNEL), cout, cout * KERNEL * KERNEL, generators)
            with torch.no_grad():
                deconv.weight.copy_(w_)
                deconv.bias.copy_(b_)
            layers.append(deconv)
        self.deconvs = nn.ModuleList(layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        s, b = h.shape[:2]
        g = h.transpose(0, 1).reshape(b, s * self.feature_shape[0], *self.feature_shape[1:])  # (B, S·64, h, w)
        for j, deconv in enumerate(self.deconvs):
            g = deconv(g if j == 0 else F.relu(g))
        return g.view(b, s, -1).transpose(0, 1)  # (S, B, C·H·W), a view
