"""The WeLa-VAE network for S seeds at once (paper §3, Figure 2; §4.3).

Encoder q(z | x, y): the flattened image, concatenated with the one-hot weak
labels (WeLa-VAE; the authors' code does the same), through ReLU layers to
the mean and log-variance of a diagonal Gaussian over K latents.
Decoder: z through the mirrored ReLU layers to one output layer holding the
image's Bernoulli logits and one categorical head per weak label.

With ``encoder="conv"`` the image goes through Chen et al.'s 64×64
convolutional stack first and the labels join at the first dense layer, as
§3 suggests.  Seeds are stacked by grouped convolutions.

Shapes: B samples, S seeds, D = size² pixels, m labels of p classes each.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from ..objectives.likelihoods import linear_bernoulli_nll
from .ensemble import SharedInputLinear, StackedHeads, StackedLinear, init_uniform

__all__ = ["EnsembleVAE", "seed_generators", "plain_networks"]


def seed_generators(seeds, purpose: int = 0) -> list[torch.Generator]:
    """One CPU generator per seed, for a given purpose (0 = init)."""
    return [torch.Generator().manual_seed(int(s) * 1_000_003 + purpose) for s in seeds]


class _ConvTrunk(nn.Module):
    """Chen et al.'s encoder convs for 64×64 (4×4 stride 2: 32, 32, 64, 64 channels → 64·4·4 features), S seeds via groups."""

    channels = (32, 32, 64, 64)

    def __init__(self, generators):
        super().__init__()
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
        self.out_features = 64 * 4 * 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.view(-1, 1, 64, 64)
        for conv in self.convs:
            h = F.relu(conv(h))
        b = h.shape[0]
        return h.view(b, self.seeds, -1).transpose(0, 1)  # (S, B, 64·4·4)


class EnsembleVAE(nn.Module):
    """S independently initialised VAEs as one module; see the module docstring."""

    def __init__(self, config: ModelConfig, seeds):
        super().__init__()
        self.config = config
        self.seeds = [int(s) for s in seeds]
        gens = seed_generators(self.seeds)
        c = config
        k, d = c.latent_dim, c.image_dim
        label_in = c.num_labels * c.label_dim if (c.has_labels and c.labels_in_encoder) else 0
        self.label_out = c.num_labels * c.label_dim if c.has_labels else 0
        self.conv = _ConvTrunk(gens) if c.encoder == "conv" else None
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
        heads = [d, self.label_out] if self.label_out else [d]
        self.decoder = nn.ModuleList(
            [*(StackedLinear(a, b, gens) for a, b in zip(dec_sizes[:-1], dec_sizes[1:])), StackedHeads(dec_sizes[-1], heads, gens)]
        )
        self.label_in = label_in

    @property
    def num_seeds(self) -> int:
        return len(self.seeds)

    def one_hot(self, y: torch.Tensor | None, batch: int, like: torch.Tensor) -> torch.Tensor | None:
        if not self.label_in:
            return None
        # (B, m) ints → (B, m·p) floats.
        return F.one_hot(y, self.config.label_dim).to(like.dtype).reshape(batch, -1)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None):
        """x (B, D), y (B, m) → mu, logvar (S, B, K)."""
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

    def _label_logits(self, lab: torch.Tensor) -> torch.Tensor:
        s, b = lab.shape[:2]
        return lab.view(s, b, self.config.num_labels, self.config.label_dim)

    def decode(self, z: torch.Tensor):
        """z (S, B, K) → image logits (S, B, D), label logits (S, B, m, p) or None."""
        heads = self.decoder[-1](self._decoder_hidden(z))
        return heads[0], (self._label_logits(heads[1]) if self.label_out else None)

    def decode_nll(self, z: torch.Tensor, x: torch.Tensor, *, compiled: bool = False):
        """z (S, B, K), x (B, D) → −log p(x|z) (S, B) and label logits (S, B, m, p) or None.

        ``bernoulli_nll(decode(z)[0], x)`` computed by :func:`linear_bernoulli_nll`,
        which fuses the image head with its likelihood (the trainer's path).
        """
        h = self._decoder_hidden(z)
        head = self.decoder[-1]
        nll = linear_bernoulli_nll(h, head.weight0, head.bias0, x, compiled=compiled)
        lab = torch.baddbmm(head.bias1, h, head.weight1) if self.label_out else None
        return nll, (self._label_logits(lab) if self.label_out else None)

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
