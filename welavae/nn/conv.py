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

**Seeds.**  All S seeds' weights are stacked in one tensor per layer, in the
layout of one grouped convolution (channels stacked seed-major: seed i owns
channels i·c … (i+1)·c − 1; the first convolution reads the shared batch with
S·32 filters, like :class:`~welavae.nn.ensemble.SharedInputLinear`).  Each
seed's weights are drawn from its own generator
(:func:`welavae.seeding.init_generators`), so a seed's network does not
depend on the seeds beside it.  The stacked weights run in one of two
**layouts** (:data:`LAYOUTS`, :meth:`ConvEncoder.set_layout`):

* ``"grouped"`` — one convolution per layer for all seeds (``groups=S``);
* ``"per-seed"`` — S stock convolutions per layer, each on a view of its
  seed's block of the same stacked weight (``weight.chunk(S)``), the outputs
  stacked back to (S, B, …).

The parameters, and so checkpoints and the optimiser's state, are the same
tensors in both; only the kernels differ, so a seed's numbers agree to float
rounding (tests/test_nn_conv.py).  Which is faster depends on the device and
the shapes: on a CPU oneDNN's grouped convolutions ran below its dense ones,
and S dense convolutions at batch 64 already fill it (docs/performance.md),
while on a GPU one launch for all seeds may be what fills the device.
:func:`time_layouts` times both on the run's own batch and keeps the faster.

Shapes: B samples, S seeds, images (B, D) with D = H·W·C flattened in
(H, W, C) order, as the data are stored.
"""
from __future__ import annotations

import math
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from .ensemble import init_uniform

__all__ = ["ConvEncoder", "ConvDecoder", "ENCODER_CHANNELS", "DECODER_CHANNELS", "LAYOUTS", "choose_layout",
           "time_layouts", "to_chw", "to_hwc"]

ENCODER_CHANNELS = (32, 32, 64, 64)
DECODER_CHANNELS = (64, 32, 32)  # then C, the image's channels
KERNEL, STRIDE, PADDING = 4, 2, 1  # TF "same" for even sizes (module docstring)
#: The ways the stacked weights run (module docstring, Seeds); the first is the default.
LAYOUTS = ("grouped", "per-seed")


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


def _check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"seed layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    return layout


def _seed_blocks(layers, s: int):
    """Per layer, (weights, biases): S views of each seed's block of the stacked parameters.

    ``chunk`` is one autograd node per parameter: backward writes the S blocks'
    gradients into the stacked gradient with one concatenation, where S
    separate slices would each add a full-size zero-padded gradient.
    """
    return [(layer.weight.chunk(s), layer.bias.chunk(s)) for layer in layers]


class ConvEncoder(nn.Module):
    """x (B, D) → (S, B, 64·⌊H/16⌋·⌊W/16⌋): four 4×4 stride-2 convolutions with ReLU, S seeds via groups.

    ``convs[j]`` holds every seed's layer j: weight (S·c_out, c_in, 4, 4), bias
    (S·c_out,), seed i's part rows i·c_out … (i+1)·c_out − 1 (``nn.Conv2d``
    layout).  Layer 0 reads the shared (B, C, H, W) batch (groups 1), the
    others their own seed's channels (groups S); in the ``"per-seed"``
    layout each seed's block runs as a stock convolution.  Sizes not divisible by 16
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
        self.layout = LAYOUTS[0]

    def set_layout(self, layout: str) -> ConvEncoder:
        """Run the convolutions as ``"grouped"`` or ``"per-seed"`` (module docstring); the weights are unchanged."""
        self.layout = _check_layout(layout)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = to_chw(x, self.image_shape) if self.image_shape[2] > 1 else x.view(-1, 1, *self.image_shape[:2])
        if self.layout == "per-seed":
            return self._per_seed(h)
        for conv in self.convs:
            h = F.relu(conv(h))  # (B, S·c, h, w)
        return h.view(h.shape[0], self.seeds, -1).transpose(0, 1)  # (S, B, 64·h·w), each seed's (c, h, w) flattened

    def _per_seed(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W) → (S, B, 64·h·w): seed by seed, every layer of a seed before the next seed,
        so that each activation is read while it is still in cache."""
        blocks = _seed_blocks(self.convs, self.seeds)
        out = []
        for i in range(self.seeds):
            h = x
            for ws, bs in blocks:
                h = F.relu(F.conv2d(h, ws[i], bs[i], STRIDE, PADDING))  # (B, c, h, w)
            out.append(h.flatten(1))
        return torch.stack(out)


class ConvDecoder(nn.Module):
    """h (S, B, 64·(H/16)·(W/16)) → image logits (S, B, D) in (C, H, W) order: four 4×4 stride-2 transposed convs.

    ``deconvs[j]``: weight (S·c_in, c_out, 4, 4), bias (S·c_out,) (``nn.ConvTranspose2d``
    layout; seed i owns rows i·c_in … of the weight and i·c_out … of the bias),
    ReLU between layers, none after the last (logits).  In the ``"per-seed"``
    layout each seed's block runs as a stock transposed convolution.
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
        self.layout = LAYOUTS[0]

    def set_layout(self, layout: str) -> ConvDecoder:
        """Run the transposed convolutions as ``"grouped"`` or ``"per-seed"``; the weights are unchanged."""
        self.layout = _check_layout(layout)
        return self

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        s, b = h.shape[:2]
        if self.layout == "per-seed":
            return self._per_seed(h)
        g = h.transpose(0, 1).reshape(b, s * self.feature_shape[0], *self.feature_shape[1:])  # (B, S·64, h, w)
        for j, deconv in enumerate(self.deconvs):
            g = deconv(g if j == 0 else F.relu(g))
        return g.view(b, s, -1).transpose(0, 1)  # (S, B, C·H·W), a view

    def _per_seed(self, h: torch.Tensor) -> torch.Tensor:
        """h (S, B, F) → (S, B, C·H·W), seed by seed (see :meth:`ConvEncoder._per_seed`)."""
        blocks = _seed_blocks(self.deconvs, self.seeds)
        out = []
        for i, g in enumerate(h.unbind(0)):
            g = g.reshape(len(g), *self.feature_shape)  # (B, 64, h, w)
            for j, (ws, bs) in enumerate(blocks):
                g = F.conv_transpose2d(g if j == 0 else F.relu(g), ws[i], bs[i], STRIDE, PADDING)
            out.append(g.flatten(1))
        return torch.stack(out)


# --------------------------------------------------------------------------- choosing a layout


def choose_layout(seconds: dict) -> str:
    """``"per-seed"`` when the median over pairs of per-seed / grouped step time (index-aligned: pair k's
    two steps ran back to back) is below 1; else ``"grouped"``, the default, also on a tie or without times.

    A ratio within a pair cancels a slow drift of the machine's speed, and the
    median over pairs ignores one pair hit by a burst of load.
    """
    pairs = list(zip(seconds.get("grouped") or [], seconds.get("per-seed") or []))
    if not pairs:
        return "grouped"
    return "per-seed" if statistics.median(p / g for g, p in pairs) < 1 else "grouped"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # kernels run asynchronously: time them, not their launch


def time_layouts(modules, x: torch.Tensor, *, steps: int = 3, clock=time.perf_counter) -> tuple[str, dict]:
    """Time forward and backward of the conv ``modules`` in each layout; returns (the faster, the times).

    modules: the model's :class:`ConvEncoder` and/or :class:`ConvDecoder`
    (their layouts are restored after); x (B, D): a batch of the run's images,
    float, on the model's device.  The decoder reads the encoder's features
    of x (or, alone, uniform values of its input's shape), and its input
    gradient is computed as in training; no ``.grad`` is written
    (``torch.autograd.grad``).  One untimed warm-up per layout, then ``steps``
    timed steps of each in the order grouped, per-seed, per-seed, grouped, …
    (pair k: steps 2k and 2k + 1, back to back).  Times:
    ``{"grouped": [s, …], "per-seed": [s, …]}``; the choice is
    :func:`choose_layout`'s.  A single seed has one layout: ``("grouped", {})``,
    nothing timed.
    """
    modules = [m for m in modules if m is not None]
    if not modules or all(m.seeds == 1 for m in modules):
        return "grouped", {}
    before = [m.layout for m in modules]
    device = x.device
    order = [LAYOUTS[(k + k // 2) % 2] for k in range(2 * steps)]  # g, p, p, g, g, p, …
    seconds = {layout: [] for layout in LAYOUTS}
    try:
        with torch.enable_grad():
            for k, layout in enumerate([*LAYOUTS, *order]):
                for m in modules:
                    m.set_layout(layout)
                _sync(device)
                t0 = clock()
                _forward_backward(modules, x)
                _sync(device)
                elapsed = clock() - t0
                if k >= len(LAYOUTS):  # the first of each is the warm-up
                    seconds[layout].append(elapsed)
    finally:
        for m, layout in zip(modules, before):
            m.set_layout(layout)
    return choose_layout(seconds), seconds


def _forward_backward(modules, x: torch.Tensor) -> None:
    """One forward and backward of the encoder and/or decoder, gradients returned, not accumulated."""
    encoder = next((m for m in modules if isinstance(m, ConvEncoder)), None)
    decoder = next((m for m in modules if isinstance(m, ConvDecoder)), None)
    outputs, inputs = [], []
    if encoder is not None:
        outputs.append(encoder(x))
    if decoder is not None:
        if encoder is not None and encoder.out_features == math.prod(decoder.feature_shape):
            h = outputs[0].detach()
        else:
            g = torch.Generator().manual_seed(0)
            h = torch.rand(decoder.seeds, len(x), math.prod(decoder.feature_shape), generator=g).to(x.device)
        h.requires_grad_(True)
        inputs.append(h)
        outputs.append(decoder(h))
    params = [p for m in modules for p in m.parameters()]
    torch.autograd.grad(sum(o.sum() for o in outputs), params + inputs)
