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

With ``arch="conv"`` the network is disentanglement_lib's convolutional
encoder and transposed-convolution decoder (:mod:`welavae.nn.conv`): the
labels join the encoder at its first dense layer (image features + one-hot
labels, as §3 suggests), and the dense label head reads the decoder's first
dense layer (256 units, a function of z alone), the diagonal head z.  With
``arch="mlp"`` and ``encoder="conv"`` (0.2.0's ``--encoder conv``) the conv
network's encoder feeds the MLP's dense layers.

The peers S2 and CCVAE (``label_side``, docs/peers.md) decode no label
(``label_head="none"``, a label-free encoder): their labels' parameters are a
:class:`~welavae.nn.labelside.LabelSide`, and :meth:`EnsembleVAE.label_logits`
returns its class scores (the method's own label predictor).

Shapes: B samples, S seeds, D = H·W·C image values, m labels of p_1 … p_m classes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from ..seeding import init_generators
from .conv import ConvDecoder, ConvEncoder, to_chw, to_hwc
from .ensemble import DiagonalLabelHeads, SharedInputLinear, StackedHeads, StackedLinear
from .heads import bernoulli_nll, linear_bernoulli_nll
from .labelside import LabelSide

__all__ = ["EnsembleVAE", "plain_networks", "seed_parameters"]


class EnsembleVAE(nn.Module):
    """S independently initialised VAEs as one module; see the module docstring.

    ``label_side``: :attr:`welavae.config.ObjectiveConfig.label_side` of an S2 or CCVAE run (its
    labels' parameters), None for every other model.
    """

    def __init__(self, config: ModelConfig, seeds, *, label_side: str | None = None):
        super().__init__()
        self.config = config
        self.seeds = [int(s) for s in seeds]
        gens = init_generators(self.seeds)
        c = config
        k, d = c.latent_dim, c.image_dim
        label_in = sum(c.label_dims) if c.labels_in_encoder else 0
        self.label_out = sum(c.label_dims) if c.has_labels else 0
        conv_arch = c.arch == "conv"
        self.conv = ConvEncoder(gens, c.image_shape) if conv_arch or c.encoder == "conv" else None
        dense = self.label_out and c.label_head == "dense"
        diagonal = self.label_out and c.label_head == "diagonal"
        if conv_arch:  # disentanglement_lib's dense sizes: 256, then 2K; decoder 256, 64·(H/16)·(W/16)
            self.encoder = nn.ModuleList([StackedLinear(self.conv.out_features + label_in, 256, gens),
                                          StackedLinear(256, 2 * k, gens)])
            self.decoder = nn.ModuleList([StackedLinear(k, 256, gens),
                                          StackedLinear(256, self.conv.out_features, gens)])
            self.deconv = ConvDecoder(gens, c.image_shape)
            self.label_head = StackedLinear(256, self.label_out, gens) if dense else None
            self.diagonal = DiagonalLabelHeads(c.label_dims, gens) if diagonal else None
            self.label_in = label_in
            self._label_side(label_side, gens)
            return
        self.deconv = self.label_head = None
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
        heads = [d, self.label_out] if dense else [d]
        self.decoder = nn.ModuleList(
            [*(StackedLinear(a, b, gens) for a, b in zip(dec_sizes[:-1], dec_sizes[1:])),
             StackedHeads(dec_sizes[-1], heads, gens)]
        )
        self.diagonal = DiagonalLabelHeads(c.label_dims, gens) if diagonal else None
        self.label_in = label_in
        self._label_side(label_side, gens)

    def _label_side(self, kind: str | None, gens) -> None:
        """The peers' label parameters, built last so that every other weight's draws stay as they were."""
        self.label_side = None if kind is None else LabelSide(kind, self.config.label_dims, gens)

    @property
    def num_seeds(self) -> int:
        return len(self.seeds)

    def conv_modules(self) -> list:
        """The convolutional parts (:class:`ConvEncoder`, :class:`ConvDecoder`) whose seed layout can be chosen;
        empty for the MLP, whose dense layers always run stacked (docs/performance.md)."""
        return [m for m in (self.conv, self.deconv) if m is not None]

    def set_seed_layout(self, layout: str) -> EnsembleVAE:
        """Run the convolutions ``"grouped"`` or ``"per-seed"`` (:mod:`welavae.nn.conv`, Seeds); the weights,
        and so checkpoints, are the same in both."""
        for m in self.conv_modules():
            m.set_layout(layout)
        return self

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

    def _conv_decode(self, z: torch.Tensor):
        """z (S, B, K) → (first dense layer h (S, B, 256), image logits (S, B, D) in (C, H, W) order)."""
        h = F.relu(self.decoder[0](z))
        return h, self.deconv(F.relu(self.decoder[1](h)))

    def _decoder_hidden(self, z: torch.Tensor) -> torch.Tensor:
        h = z
        for i, layer in enumerate(self.decoder[:-1]):
            h = layer(h if i == 0 else F.relu(h))
        return F.relu(h)  # hidden is never empty (ModelConfig checks)

    def label_logits(self, z: torch.Tensor, h: torch.Tensor | None = None):
        """z (S, B, K) → m label logits (S, B, p_j), or None for a model without labels.

        ``h``: the decoder's last hidden layer for z, when already computed (dense head).
        S2 and CCVAE: their :meth:`LabelSide.scores <welavae.nn.labelside.LabelSide.scores>`, whose argmax is
        the method's own predictor (None for S2's ``cov``); they are not a decoder's, so :meth:`decode` and
        :meth:`decode_nll` leave them out.
        """
        if self.label_side is not None:
            return self.label_side.scores(z)
        if not self.label_out:
            return None
        if self.diagonal is not None:
            return self.diagonal(z)
        if self.deconv is not None:
            h = F.relu(self.decoder[0](z)) if h is None else h
            return self.label_head(h).split(self.config.label_dims, dim=-1)
        head = self.decoder[-1]
        h = self._decoder_hidden(z) if h is None else h
        return torch.baddbmm(head.bias1, h, head.weight1).split(self.config.label_dims, dim=-1)

    def _decoded_labels(self, z: torch.Tensor, h: torch.Tensor):
        """The label decoder's logits p(y_j|z), or None (no labels; S2 and CCVAE decode none)."""
        return None if self.label_side is not None else self.label_logits(z, h)

    def decode(self, z: torch.Tensor):
        """z (S, B, K) → image logits (S, B, D) in the data's (H, W, C) order, m label logits (S, B, p_j) or None."""
        if self.deconv is not None:
            h, logits = self._conv_decode(z)
            return to_hwc(logits, self.config.image_shape), self._decoded_labels(z, h)
        h = self._decoder_hidden(z)
        head = self.decoder[-1]
        return torch.baddbmm(head.bias0, h, head.weight0), self._decoded_labels(z, h)

    def decode_nll(self, z: torch.Tensor, x: torch.Tensor, *, compiled: bool = False):
        """z (S, B, K), x (B, D) → −log p(x|z) (S, B) and m label logits (S, B, p_j) or None.

        ``bernoulli_nll(decode(z)[0], x)`` computed by :func:`linear_bernoulli_nll`,
        which fuses the image head with its likelihood (the trainer's path; MLP).  The conv
        decoder's logits go to :func:`bernoulli_nll` in their own (C, H, W) order, with x
        brought into it: the sum over values is the same, and the (S, B, D) logits are not copied.
        """
        if self.deconv is not None:
            h, logits = self._conv_decode(z)
            shape = self.config.image_shape
            target = x if shape[2] == 1 else to_chw(x, shape).view(len(x), -1)
            return bernoulli_nll(logits, target), self._decoded_labels(z, h)
        h = self._decoder_hidden(z)
        head = self.decoder[-1]
        nll = linear_bernoulli_nll(h, head.weight0, head.bias0, x, compiled=compiled)
        return nll, self._decoded_labels(z, h)

    def parameter_seed_dims(self):
        """Yield (parameter, seed axis) for every parameter."""
        for module in self.modules():
            dims = getattr(module, "seed_dims", None)
            if dims is not None:
                for name, dim in dims.items():
                    yield getattr(module, name), dim
        convs = [*(self.conv.convs if self.conv is not None else ()),
                 *(self.deconv.deconvs if self.deconv is not None else ())]
        for conv in convs:
            # Grouped (transposed) conv weights and biases: seed i owns the i-th of S equal blocks of rows.
            yield conv.weight, ("groups", self.num_seeds)
            yield conv.bias, ("groups", self.num_seeds)

    def seed_slice(self, param: torch.Tensor, dim, i: int) -> torch.Tensor:
        """View of seed i's part of a parameter (or of a tensor shaped like it)."""
        if isinstance(dim, tuple):
            n = param.shape[0] // dim[1]
            return param[i * n : (i + 1) * n]
        return param.select(dim, i)

    @torch.no_grad()
    def subset(self, seeds) -> EnsembleVAE:
        """A new ensemble of some of this one's seeds, weights copied (not retrained), in eval mode."""
        seeds = [int(s) for s in seeds]
        missing = [s for s in seeds if s not in self.seeds]
        if missing:
            raise ValueError(f"seeds {missing} are not in this model (seeds: {self.seeds})")
        device = next(self.parameters()).device
        side = None if self.label_side is None else self.label_side.kind
        out = EnsembleVAE(self.config, seeds, label_side=side).to(device)
        for (p_out, dim), (p_all, dim_all) in zip(out.parameter_seed_dims(), self.parameter_seed_dims()):
            for j, s in enumerate(seeds):  # a grouped conv's seed axis counts this model's seeds, not out's
                out.seed_slice(p_out, dim, j).copy_(self.seed_slice(p_all, dim_all, self.seeds.index(s)))
        return out.eval()


def seed_parameters(model: EnsembleVAE, i: int) -> dict[str, torch.Tensor]:
    """Seed i's parameters in stock layout, named by layer (views, not copies).

    ``conv.j`` (``nn.Conv2d``: weight (c_out, c_in, 4, 4)), ``encoder.j`` and
    ``decoder.j`` (``nn.Linear``: weight (out, in)), ``deconv.j``
    (``nn.ConvTranspose2d``: weight (c_in, c_out, 4, 4)), ``labels`` (the conv
    network's dense label head, ``nn.Linear`` from the decoder's first layer),
    ``label_head`` (the diagonal head: label j's class c is weight[c]·z_j + bias[c]),
    ``label_side.<name>`` (S2's and CCVAE's label parameters, :mod:`welavae.nn.labelside`: ``scale`` (),
    or (Σ p_j,) label after label).
    The layout of ``model.safetensors`` (prefixed ``seed_<S>.``) and of :func:`plain_networks`.
    """
    out = {}
    groups = ("groups", model.num_seeds)
    for prefix, convs in (("conv", model.conv.convs if model.conv is not None else ()),
                          ("deconv", model.deconv.deconvs if model.deconv is not None else ())):
        for j, conv in enumerate(convs):
            out[f"{prefix}.{j}.weight"] = model.seed_slice(conv.weight, groups, i)
            out[f"{prefix}.{j}.bias"] = model.seed_slice(conv.bias, groups, i)
    for part in ("encoder", "decoder"):
        for j, layer in enumerate(getattr(model, part)):
            out[f"{part}.{j}.weight"], out[f"{part}.{j}.bias"] = layer.seed_weight(i)
    if model.label_head is not None:
        out["labels.weight"], out["labels.bias"] = model.label_head.seed_weight(i)
    if model.diagonal is not None:
        out["label_head.weight"] = model.diagonal.weight[i, 0]
        out["label_head.bias"] = model.diagonal.bias[i, 0]
    if model.label_side is not None:
        for name, p in model.label_side.named_parameters():
            out[f"label_side.{name}"] = p[i]
    return out


def _stock(params: dict, name: str, make) -> nn.Module:
    """A stock layer built by ``make(weight shape)`` holding a copy of ``params[name.weight / name.bias]``."""
    w, b = params[f"{name}.weight"], params[f"{name}.bias"]
    layer = make(w.shape).to(device=w.device, dtype=w.dtype)
    with torch.no_grad():
        layer.weight.copy_(w)
        layer.bias.copy_(b)
    return layer


def plain_networks(model: EnsembleVAE, i: int):
    """Seed i as ordinary PyTorch modules (weights copied): the reference for tests and the naive benchmark.

    MLP: two ``nn.Sequential`` (encoder on cat(x, one-hot labels) → (mean, log-variance);
    decoder z → image logits then, with the dense head, label logits).

    Conv (``arch="conv"``): two ``nn.ModuleDict`` of stock layers (``nn.Conv2d``,
    ``nn.ConvTranspose2d``, ``nn.Linear``), since the labels enter and leave midway::

        encoder["features"]: x (B, C, H, W) → (B, F)   convs with ReLU, flattened
        encoder["head"]:     cat(features, one-hot labels) → (B, 2K)
        decoder["trunk"]:    z (B, K) → h (B, 256)      dense 256, ReLU
        decoder["image"]:    h → logits (B, C, H, W)    dense, ReLU, unflatten, transposed convs
        decoder["labels"]:   h → label logits (B, Σ p_j)   (the dense label head, when there is one)

    The MLP encoder after a conv trunk (0.2.0's ``encoder="conv"``) is not covered.
    """
    p = {k: v.detach() for k, v in seed_parameters(model, i).items()}
    if model.deconv is None and model.conv is not None:
        raise ValueError("plain_networks covers --arch mlp and --arch conv, not 0.2.0's conv encoder before an MLP")

    def linear(name):
        return _stock(p, name, lambda s: nn.Linear(s[1], s[0]))

    def conv(name):
        return _stock(p, name, lambda s: nn.Conv2d(s[1], s[0], 4, 2, 1))

    def deconv(name):
        return _stock(p, name, lambda s: nn.ConvTranspose2d(s[0], s[1], 4, 2, 1))

    def chain(layers):
        mods = []
        for j, layer in enumerate(layers):
            mods += [nn.ReLU()] if j else []
            mods.append(layer)
        return nn.Sequential(*mods)

    if model.deconv is None:
        return (chain([linear(f"encoder.{j}") for j in range(len(model.encoder))]),
                chain([linear(f"decoder.{j}") for j in range(len(model.decoder))]))
    convs = [conv(f"conv.{j}") for j in range(len(model.conv.convs))]
    features = nn.Sequential(*(m for c in convs for m in (c, nn.ReLU())), nn.Flatten())
    encoder = nn.ModuleDict({"features": features, "head": chain([linear("encoder.0"), linear("encoder.1")])})
    image = [linear("decoder.1"), nn.ReLU(), nn.Unflatten(1, model.deconv.feature_shape),
             chain([deconv(f"deconv.{j}") for j in range(len(model.deconv.deconvs))])]
    decoder = nn.ModuleDict({"trunk": nn.Sequential(linear("decoder.0"), nn.ReLU()), "image": nn.Sequential(*image)})
    if model.label_head is not None:
        decoder["labels"] = linear("labels")
    return encoder, decoder
