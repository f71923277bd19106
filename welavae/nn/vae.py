"""The WeLa-VAE network for S seeds at once (paper §3, Figure 2; §4.3).

Encoder q(z | x, y): the flattened image, concatenated with the one-hot weak
labels (WeLa-VAE; the authors' code does the same; a missing label is an
all-zero block), through ReLU layers to the mean and log-variance of a
diagonal Gaussian over K latents.  With ``encoder_input="image"`` the
encoder is q(z | x) and reads no labels (the paper's §5 proposal).
Decoder: z through the mirrored ReLU layers to one output layer holding the
image's Bernoulli logits and one categorical head per weak label
(``label_head="dense"``, the paper's), or the image logits only, with label
j read from latent j by :class:`~welavae.nn.ensemble.DiagonalLabelHeads`
(``label_head="diagonal"``).

With ``encoder="conv"`` the image goes through Chen et al.'s convolutional
stack (4×4, stride 2: H×W → H/16 × W/16) first and the labels join at the
first dense layer, as §3 suggests.  Seeds are stacked by grouped convolutions.

Shapes: B samples, S seeds, D = H·W pixels, m labels of p_1 … p_m classes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .heads import linear_bernoulli_nll
from ..seeding import init_generators
from .ensemble import DiagonalLabelHeads, SharedInputLinear, StackedHeads, StackedLinear, init_uniform

__all__ = ["EnsembleVAE", "plain_networks"]


class _ConvTrunk(nn.Module):
    """Chen et al.'s encoder convs (4×4 stride 2: 32, 32, 64, 64 channels; 64×64 → 64·4·4 features), S seeds via groups."""

    channels = (32, 32, 64, 64)

    def __init__(self, generators, image_shape=(64, 64)):
        super().__init__()
        self.image_shape = tuple(image_shape)
        s = len(generators)
        self.seeds = s
        layers, cin = [], 1
        for i, cout in enumerate(self.channels):
            # First layer: shared single-channel input, S·cout filters; later: groups=S.
            conv = nn.Conv2d(cin if i == 0 else s * cin, s * cout, 4, 2, 1, groups=1 if i == 0 else s)
            bound = 1.0 / (cin * 16) ** 0.5
            w = torch.cat([init_uniform((cout, cin, 4, 4), bound, g) for g in generators])
            b = torch.cat([init_uniform((cout,), bound, g) for g in generators])
            conv.weight.data.copy_(w)
            conv.bias.data.copy_(b)
            layers.append(conv)
            cin = cout
        self.convs = nn.ModuleList(layers)
        h, w = self.image_shape
        for _ in self.channels:  # kernel 4, stride 2, padding 1: n → ⌊n/2⌋
            h, w = h // 2, w // 2
        self.out_features = self.channels[-1] * h * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.view(-1, 1, *self.image_shape)
        for conv in self.convs:
            h = F.relu(conv(h))
        b = h.shape[0]
        return h.view(b, self.seeds, -1).transpose(0, 1)  # (S, B, 64·H/16·W/16)


class EnsembleVAE(nn.Module):
    """S independently initialised VAEs as one module; see the module docstring."""

    def __init__(self, config: ModelConfig, seeds):
        super().__init__()
        self.config = config
        self.seeds = [int(s) for s in seeds]
        gens = init_generators(self.seeds)
        c = config
        k, d = c.latent_dim, c.image_dim
        label_in = sum(c.label_dims) if c.labels_in_encoder else 0
        self.label_out = sum(c.label_dims) if c.has_labels else 0
        self.conv = _ConvTrunk(gens, c.image_shape) if c.encoder == "conv" else None
        enc_sizes = list(c.hidden) + [2 * k]
        layers = []
        if self.conv is None:
            layers.append(SharedInputLinear(d + label_in, enc_sizes[0], gens))
        else:
            layers.append(StackedLinear(self.conv.out_features + label_in, enc_sizes[0], gens))
        for a, b in zip(enc_sizes[:-1], enc_sizes[1:]):
            layers.append(StackedLinear(a, b, gens))
        self.encoder = nn.ModuleList(layers)
        dec_sizes = [k] + list(reversed(c.hidden))
        dense = self.label_out and c.label_head == "dense"
        heads = [d, self.label_out] if dense else [d]
        self.decoder = nn.ModuleList(
            [*(StackedLinear(a, b, gens) for a, b in zip(dec_sizes[:-1], dec_sizes[1:])), StackedHeads(dec_sizes[-1], heads, gens)]
        )
        self.diagonal = DiagonalLabelHeads(c.label_dims, gens) if self.label_out and not dense else None
        self.label_in = label_in

    @property
    def num_seeds(self) -> int:
        return len(self.seeds)

    def one_hot(self, y: torch.Tensor | None, batch: int, like: torch.Tensor) -> torch.Tensor | None:
        """(B, m) ints, −1 = missing → (B, Σ p_j) floats: label j's one-hot block, all zeros where missing."""
        if not self.label_in:
            return None
        if y is None:
            raise ValueError(
                "this model's encoder reads the weak labels, q(z|x, y): give labels for the images, "
                "or train a label-free encoder with --encoder-input image"
            )
        dims = self.config.label_dims
        blocks = [F.one_hot(y[:, j].clamp(min=0), p) * (y[:, j, None] >= 0) for j, p in enumerate(dims)]
        return torch.cat(blocks, dim=1).to(like.dtype)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None):
        """x (B, D), y (B, m) (−1 = missing; unused by a label-free encoder) → mu, logvar (S, B, K)."""
        b = x.shape[0]
        onehot = self.one_hot(y, b, x)
        if self.conv is None:
            h = self.encoder[0](x, onehot)  # (S, B, H); same as the layer on cat(x, onehot)
        else:
            h = self.conv(x)  # (S, B, F)
            if onehot is not None:
                h = torch.cat([h, onehot.unsqueeze(0).expand(self.num_seeds, -1, -1)], dim=-1)
            h = self.encoder[0](h)
        for layer in self.encoder[1:]:
            h = layer(F.relu(h))
        mu, logvar = h.chunk(2, dim=-1)
        return mu, logvar

    def _decoder_hidden(self, z: torch.Tensor) -> torch.Tensor:
        h = z
        for i, layer in enumerate(self.decoder[:-1]):
            h = layer(h if i == 0 else F.relu(h))
        return F.relu(h)  # hidden is never empty (ModelConfig checks)

    def label_logits(self, z: torch.Tensor, h: torch.Tensor | None = None):
        """z (S, B, K) → m label logits (S, B, p_j), or None for a model without labels.

        ``h``: the decoder's last hidden layer for z, when already computed (dense head).
        """
        if not self.label_out:
            return None
        if self.diagonal is not None:
            return self.diagonal(z)
        head = self.decoder[-1]
        h = self._decoder_hidden(z) if h is None else h
        return torch.baddbmm(head.bias1, h, head.weight1).split(self.config.label_dims, dim=-1)

    def decode(self, z: torch.Tensor):
        """z (S, B, K) → image logits (S, B, D), m label logits (S, B, p_j) or None."""
        h = self._decoder_hidden(z)
        head = self.decoder[-1]
        return torch.baddbmm(head.bias0, h, head.weight0), self.label_logits(z, h)

    def decode_nll(self, z: torch.Tensor, x: torch.Tensor, *, compiled: bool = False):
        """z (S, B, K), x (B, D) → −log p(x|z) (S, B) and m label logits (S, B, p_j) or None.

        ``bernoulli_nll(decode(z)[0], x)`` computed by :func:`linear_bernoulli_nll`,
        which fuses the image head with its likelihood (the trainer's path).
        """
        h = self._decoder_hidden(z)
        head = self.decoder[-1]
        nll = linear_bernoulli_nll(h, head.weight0, head.bias0, x, compiled=compiled)
        return nll, self.label_logits(z, h)

    def parameter_seed_dims(self):
        """Yield (parameter, seed axis) for every parameter."""
        for module in self.modules():
            dims = getattr(module, "seed_dims", None)
            if dims is not None:
                for name, dim in dims.items():
                    yield getattr(module, name), dim
        if self.conv is not None:
            for conv in self.conv.convs:
                # Grouped conv weights (S·cout, …): seed i owns rows i·cout … (i+1)·cout.
                yield conv.weight, ("groups", self.num_seeds)
                yield conv.bias, ("groups", self.num_seeds)

    def seed_slice(self, param: torch.Tensor, dim, i: int) -> torch.Tensor:
        """View of seed i's part of a parameter (or of a tensor shaped like it)."""
        if isinstance(dim, tuple):
            n = param.shape[0] // dim[1]
            return param[i * n : (i + 1) * n]
        return param.select(dim, i)

    @torch.no_grad()
    def subset(self, seeds) -> "EnsembleVAE":
        """A new ensemble of some of this one's seeds, weights copied (not retrained), in eval mode."""
        seeds = [int(s) for s in seeds]
        missing = [s for s in seeds if s not in self.seeds]
        if missing:
            raise ValueError(f"seeds {missing} are not in this model (seeds: {self.seeds})")
        device = next(self.parameters()).device
        out = EnsembleVAE(self.config, seeds).to(device)
        for (p_out, dim), (p_all, dim_all) in zip(out.parameter_seed_dims(), self.parameter_seed_dims()):
            for j, s in enumerate(seeds):  # a grouped conv's seed axis counts this model's seeds, not out's
                out.seed_slice(p_out, dim, j).copy_(self.seed_slice(p_all, dim_all, self.seeds.index(s)))
        return out.eval()


def plain_networks(model: EnsembleVAE, i: int) -> tuple[nn.Sequential, nn.Sequential]:
    """Seed i of an MLP ensemble as two ordinary ``nn.Sequential`` (encoder, decoder), weights copied.

    The reference implementation for tests and the naive benchmark: same
    architecture, one seed, stock PyTorch layers.
    """
    if model.conv is not None:
        raise ValueError("plain_networks supports the MLP encoder only")

    def build(layers):
        mods = []
        for j, layer in enumerate(layers):
            w, b = layer.seed_weight(i)
            lin = nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                lin.weight.copy_(w)
                lin.bias.copy_(b)
            if j:
                mods.append(nn.ReLU())
            mods.append(lin)
        return nn.Sequential(*mods)

    return build(model.encoder), build(model.decoder)
