"""welavae.nn.conv: the conv network (``--arch conv``) against stock PyTorch; its seeds kept apart; its sizes.

Issue 21 parts 2-3.  Known answers: TensorFlow's "same" padding arithmetic (``tf.nn`` documentation:
out = ⌈n / s⌉, pad_total = max((out − 1)·s + k − n, 0), pad_before =
⌊pad_total / 2⌋) for kernel 4 and stride 2; a stock ``nn.Sequential`` of
``nn.Conv2d`` / ``nn.ConvTranspose2d`` / ``nn.Linear`` written here, loaded
from ``model.safetensors`` by name, reproducing one seed's means,
log-variances, logits, loss and gradients in float64; a seed trained alone
equal to the same seed trained beside others.
"""
import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from welavae.checkpoint import export_safetensors
from welavae.config import DataConfig, TrainConfig, make_run_config
from welavae.data import Dataset
from welavae.nn import EnsembleVAE, plain_networks
from welavae.nn.conv import to_chw
from welavae.nn.encode import encode_dataset
from welavae.objectives import bernoulli_nll, objective_terms
from welavae.train import train

LABEL_DIMS = (2, 3)


def conv_config(channels, *, size=32, label_head="dense", epochs=1, lr=1e-4, batch=32):
    return make_run_config("wela", label_dims=LABEL_DIMS, latent_dim=3, arch="conv", label_head=label_head,
                           image_shape=(size, size, channels), data=DataConfig(source="arrays"),
                           train=TrainConfig(epochs=epochs, batch_size=batch, lr=lr))


def data(n, size, channels, seed=0):
    g = np.random.default_rng(seed)
    images = g.random((n, size, size, channels)).astype(np.float32) ** 3
    labels = np.stack([g.integers(0, p, n) for p in LABEL_DIMS], 1)
    return images, labels


def test_padding_1_is_tensorflow_same_for_kernel_4_stride_2_on_even_sizes():
    for n in range(4, 129, 2):
        out = math.ceil(n / 2)
        total = max((out - 1) * 2 + 4 - n, 0)
        assert (total // 2, total - total // 2) == (1, 1)  # TF pads one before, one after: PyTorch's padding=1
        assert (n + 2 - 4) // 2 + 1 == out  # nn.Conv2d(4, 2, padding=1) output size
        assert (n - 1) * 2 - 2 + 4 == 2 * n  # nn.ConvTranspose2d(4, 2, padding=1): TF "same" transpose, n·s
    m = EnsembleVAE(conv_config(3, size=64).model, [0])
    x = torch.rand(2, 64 * 64 * 3)
    assert m.conv(x).shape == (1, 2, 64 * 4 * 4)
    assert m.decode(torch.zeros(1, 2, 3))[0].shape == (1, 2, 64 * 64 * 3)


def test_sizes_not_divisible_by_16_are_refused_in_one_sentence():
    with pytest.raises(ValueError, match=r"divisible by 16 .*got 40x64"):
        make_run_config("wela", label_dim=2, arch="conv", image_shape=(40, 64))
    assert make_run_config("wela", label_dim=2, arch="conv", image_shape=(48, 80, 3)).model.image_dim == 48 * 80 * 3


class Plain(nn.Module):
    """One seed of the conv VAE in stock PyTorch, written from disentanglement_lib's layer list."""

    def __init__(self, h, w, c, k, label_in, label_out):
        super().__init__()
        self.shape = (h, w, c)
        self.features = nn.Sequential(
            nn.Conv2d(c, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(), nn.Conv2d(64, 64, 4, 2, 1), nn.ReLU(), nn.Flatten())
        f = 64 * (h // 16) * (w // 16)
        self.head = nn.Sequential(nn.Linear(f + label_in, 256), nn.ReLU(), nn.Linear(256, 2 * k))
        self.trunk = nn.Sequential(nn.Linear(k, 256), nn.ReLU())
        self.image = nn.Sequential(
            nn.Linear(256, f), nn.ReLU(), nn.Unflatten(1, (64, h // 16, w // 16)),
            nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(32, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, c, 4, 2, 1))
        self.labels = nn.Linear(256, label_out)
        # The safetensors names of each stock layer, in the layout model.safetensors documents.
        self.names = {**{f"conv.{j}": self.features[2 * j] for j in range(4)},
                      "encoder.0": self.head[0], "encoder.1": self.head[2], "decoder.0": self.trunk[0],
                      "decoder.1": self.image[0], **{f"deconv.{j}": self.image[3 + 2 * j] for j in range(4)},
                      "labels": self.labels}

    def load(self, tensors, seed):
        with torch.no_grad():
            for name, layer in self.names.items():
                layer.weight.copy_(tensors[f"seed_{seed}.{name}.weight"])
                layer.bias.copy_(tensors[f"seed_{seed}.{name}.bias"])
        return self


@pytest.mark.parametrize("channels", [1, 3])
def test_one_seed_equals_stock_pytorch_in_value_and_gradient(tmp_path, channels):
    size, k, b = 32, 3, 6
    cfg = conv_config(channels, size=size)
    seeds = [4, 9, 2]
    ens = EnsembleVAE(cfg.model, seeds)
    export_safetensors(tmp_path / "model.safetensors", ens, cfg)
    tensors = {n: t.double() for n, t in load_file(tmp_path / "model.safetensors").items()}
    ens.double()
    images, labels = data(b, size, channels)
    x = torch.from_numpy(images.reshape(b, -1)).double()  # (B, D), (H, W, C) order as stored
    y = torch.from_numpy(labels)
    y[0, 1] = -1  # a missing label: an all-zero one-hot block
    eps = torch.randn(3, b, k, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    mu, lv = ens.encode(x, y)
    z = mu + torch.exp(0.5 * lv) * eps
    img, lab = ens.decode(z)
    nll, _ = ens.decode_nll(z, x)
    t = objective_terms(cfg.objective, image_nll=nll, mu=mu, logvar=lv, z=z, dataset_size=100, y=y,
                        label_logits=lab)
    weights = torch.tensor([0.7, -1.3, 2.1], dtype=torch.float64)  # a leak across seeds would show
    (weights * t["loss"]).sum().backward()
    for i, seed in enumerate(seeds):
        plain = Plain(size, size, channels, k, sum(LABEL_DIMS), sum(LABEL_DIMS)).double().load(tensors, seed)
        xi = x.view(b, size, size, channels).permute(0, 3, 1, 2)  # NCHW for nn.Conv2d
        onehot = torch.cat([F.one_hot(y[:, j].clamp(min=0), p) * (y[:, j, None] >= 0)
                            for j, p in enumerate(LABEL_DIMS)], 1).double()
        mu_i, lv_i = plain.head(torch.cat([plain.features(xi), onehot], 1)).chunk(2, -1)
        z_i = mu_i + torch.exp(0.5 * lv_i) * eps[i]
        h = plain.trunk(z_i)
        logits = plain.image(h).permute(0, 2, 3, 1).reshape(b, -1)  # back to (H, W, C) order
        lab_i = plain.labels(h).split(LABEL_DIMS, -1)
        t_i = objective_terms(cfg.objective, image_nll=bernoulli_nll(logits[None], x), mu=mu_i[None], logvar=lv_i[None],
                              z=z_i[None], dataset_size=100, y=y, label_logits=[lg[None] for lg in lab_i])
        assert torch.allclose(mu_i, mu[i], rtol=1e-12, atol=1e-12)
        assert torch.allclose(lv_i, lv[i], rtol=1e-12, atol=1e-12)
        assert torch.allclose(logits, img[i], rtol=1e-12, atol=1e-11)
        assert torch.allclose(t_i["loss"][0], t["loss"][i], rtol=1e-12)
        (weights[i] * t_i["loss"]).sum().backward()
        for name, layer in plain.names.items():
            grad_w, grad_b = _seed_grads(ens, name, i)
            assert torch.allclose(layer.weight.grad, grad_w, rtol=1e-9, atol=1e-12), name
            assert torch.allclose(layer.bias.grad, grad_b, rtol=1e-9, atol=1e-12), name
        # plain_networks(model, i) gives the same seed as stock modules.
        enc, dec = plain_networks(ens, i)
        mu_p = enc["head"](torch.cat([enc["features"](xi), onehot], 1)).chunk(2, -1)[0]
        h_p = dec["trunk"](z_i)
        assert torch.allclose(mu_p, mu_i, rtol=1e-12, atol=1e-12)
        assert torch.allclose(dec["image"](h_p), plain.image(h), rtol=1e-12, atol=1e-12)
        assert torch.allclose(dec["labels"](h_p), plain.labels(h), rtol=1e-12, atol=1e-12)


def _seed_grads(ens, name, i):
    """Seed i's gradient of layer ``name`` in stock layout (the ensemble's own slicing, per layer kind)."""
    part, _, j = name.partition(".")
    if part in ("conv", "deconv"):
        layer = (ens.conv.convs if part == "conv" else ens.deconv.deconvs)[int(j)]
        n_w, n_b = layer.weight.shape[0] // ens.num_seeds, layer.bias.shape[0] // ens.num_seeds
        return layer.weight.grad[i * n_w:(i + 1) * n_w], layer.bias.grad[i * n_b:(i + 1) * n_b]
    layer = ens.label_head if part == "labels" else getattr(ens, part)[int(j)]
    return layer.seed_weight(i, grad=True)


@pytest.mark.parametrize("channels", [1, 3])
def test_conv_seed_alone_equals_seed_beside_others(channels):
    images, labels = data(128, 16, channels)
    c = conv_config(channels, size=16, epochs=2, batch=32)
    together = train(c, [0, 1, 2], images, labels, progress=False)
    alone = train(c, [1], images, labels, progress=False)
    mu3, _, _ = encode_dataset(together.model, images, labels)
    mu1, _, _ = encode_dataset(alone.model, images, labels)
    assert np.abs(mu3[1] - mu1[0]).max() < 1e-4  # the MLP's tolerance (tests/test_train_trainer.py)
    assert np.abs(mu3[0] - mu1[0]).max() > 1e-3  # and seeds do differ
    assert np.isfinite(together.history).all()


def test_subset_and_diagonal_head_and_the_0_2_0_conv_encoder():
    c = conv_config(3, size=16, label_head="diagonal")
    ens = EnsembleVAE(c.model, [0, 5, 7])
    x = torch.rand(4, 16 * 16 * 3)
    y = torch.tensor([[0, 1], [1, 2], [0, 0], [1, -1]])
    sub = ens.subset([7])
    with torch.no_grad():
        mu = ens.encode(x, y)[0]
        assert torch.allclose(sub.encode(x, y)[0][0], mu[2], atol=1e-6)
        assert torch.allclose(sub.decode(mu[2:])[0][0], ens.decode(mu)[0][2], atol=1e-6)
        assert torch.equal(sub.label_logits(mu[2:])[1][0], ens.label_logits(mu)[1][2])
    assert ens.label_head is None and ens.diagonal is not None
    # 0.2.0's --encoder conv (conv encoder + MLP) builds on the same ConvEncoder, its state-dict keys unchanged.
    old = EnsembleVAE(make_run_config("wela", label_dim=2, encoder="conv", hidden=(8,)).model, [0])
    assert "conv.convs.0.weight" in old.state_dict() and old.deconv is None
    assert to_chw(torch.arange(12.0).view(1, 12), (2, 2, 3))[0, :, 0, 0].tolist() == [0.0, 1.0, 2.0]


def test_a_conv_run_resumes_loads_and_encodes(tmp_path):
    from welavae import load
    from welavae.train.rundir import train_run

    images, labels = data(64, 16, 3)
    c = conv_config(3, size=16, epochs=2, batch=32)
    ds = Dataset(images=images, labels=labels, label_dims=tuple(c.model.label_dims))
    # A layout given: "auto" could time the two runs into different layouts, equal only to float rounding.
    full = train_run(c, [0, 1], tmp_path / "full", data=ds, progress=False, seed_layout="per-seed")
    cfg = dataclasses.replace(c, train=dataclasses.replace(c.train, checkpoint_every=1))

    class Stop(Exception):
        pass

    def interrupt(epoch, _):
        if epoch == 1:
            raise Stop

    with pytest.raises(Stop):
        train_run(cfg, [0, 1], tmp_path / "cut", data=ds, progress=False, on_epoch=interrupt, seed_layout="per-seed")
    resumed = train_run(cfg, [0, 1], tmp_path / "cut", data=ds, progress=False)  # auto: the recorded layout
    assert resumed.resumed_from == 1 and resumed.seed_layout["chosen"] == "resumed"
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    model = load(tmp_path / "full")
    assert np.allclose(model.encode(images, labels), np.load(tmp_path / "full" / "mu.npy"), atol=1e-6)
    assert model.decode(np.zeros((3, 3), np.float32), seed=1).shape == (3, 16, 16, 3)


def test_conv_encoder_takes_any_size_from_16_and_refuses_smaller():
    # 4 convs of kernel 4, stride 2, padding 1: n → ⌊n/2⌋ four times, so 20×36 → 1×2 positions of 64 channels.
    rng = np.random.default_rng(0)
    images = rng.random((128, 20, 36)).astype(np.float32)
    labels = rng.integers(0, 3, size=(128, 1))
    c = make_run_config("wela", label_dims=(3,), encoder="conv", hidden=(8,), image_shape=(20, 36),
                        data=DataConfig(source="arrays"), train=TrainConfig(epochs=1, batch_size=32, lr=1e-3))
    model = EnsembleVAE(c.model, [0, 1])
    assert model.conv.out_features == 64 * 1 * 2
    r = train(c, [0, 1], images, labels, progress=False)
    assert np.isfinite(r.history).all()
    with pytest.raises(ValueError, match="H, W >= 16"):
        make_run_config("wela", label_dims=(3,), encoder="conv", image_shape=(15, 64))


# --------------------------------------------------------------------------- seed layouts (grouped | per-seed)


def _conv_pass(ens, x, h, layout):
    """Encoder features of x and decoder logits of h in ``layout``, and the gradients of a seed-weighted
    loss with respect to every conv parameter and to h (returned, not accumulated)."""
    ens.conv.set_layout(layout)
    ens.deconv.set_layout(layout)
    feats, logits = ens.conv(x), ens.deconv(h)
    weights = torch.tensor([0.7, -1.3, 2.1, 0.4][: ens.num_seeds], dtype=x.dtype)  # a leak across seeds would show
    loss = (weights[:, None] * ((feats ** 2).sum(-1) + (logits.sin()).sum(-1))).sum()
    params = [*ens.conv.parameters(), *ens.deconv.parameters()]
    return feats, logits, torch.autograd.grad(loss, [*params, h])


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("seeds", [[5], [4, 9, 2]])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_both_layouts_give_the_same_outputs_and_gradients(channels, seeds, dtype):
    """The same stacked weights, two kernels: float64 agrees to 1e-12 (there CPU convolutions run group by
    group in both layouts), float32 to 1e-5 of each tensor's largest value (oneDNN's grouped kernels sum in
    another order than its dense ones: measured differences up to 2e-6)."""
    size, b = 32, 5
    ens = EnsembleVAE(conv_config(channels, size=size).model, seeds).to(dtype)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(b, size * size * channels, generator=g).to(dtype)
    h = torch.rand(len(seeds), b, ens.conv.out_features, generator=g).to(dtype).requires_grad_()
    grouped = _conv_pass(ens, x, h, "grouped")
    per_seed = _conv_pass(ens, x, h, "per-seed")
    assert per_seed[0].shape == (len(seeds), b, ens.conv.out_features)
    assert per_seed[1].shape == (len(seeds), b, size * size * channels)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for a, c in zip([*grouped[:2], *grouped[2]], [*per_seed[:2], *per_seed[2]]):
        assert a.shape == c.shape
        assert (a - c).abs().max() <= tol * a.abs().max()


@pytest.mark.parametrize("channels", [1, 3])
def test_a_seed_in_the_per_seed_layout_is_the_stock_convolution_of_that_seed(channels):
    """Known answer: seed i's block of the stacked weights in nn.Conv2d / nn.ConvTranspose2d
    (welavae.nn.seed_parameters) run by the stock modules; the same kernel on the same numbers, so equal bit for bit."""
    from welavae.nn.vae import seed_parameters

    size, b, seeds = 32, 4, [4, 9, 2]
    ens = EnsembleVAE(conv_config(channels, size=size).model, seeds)
    ens.conv.set_layout("per-seed")
    ens.deconv.set_layout("per-seed")
    g = torch.Generator().manual_seed(1)
    x = torch.rand(b, size * size * channels, generator=g)
    h = torch.rand(len(seeds), b, ens.conv.out_features, generator=g)
    with torch.no_grad():
        feats, logits = ens.conv(x), ens.deconv(h)
        for i in range(len(seeds)):
            p = seed_parameters(ens, i)
            # NCHW with standard strides: for C = 1 a permuted view has channels-last strides, and oneDNN
            # would pick another algorithm for the same numbers.
            xi = torch.empty(b, channels, size, size).copy_(x.view(b, size, size, channels).permute(0, 3, 1, 2))
            for j in range(4):
                conv = nn.Conv2d(p[f"conv.{j}.weight"].shape[1], p[f"conv.{j}.weight"].shape[0], 4, 2, 1)
                conv.weight.copy_(p[f"conv.{j}.weight"])
                conv.bias.copy_(p[f"conv.{j}.bias"])
                xi = F.relu(conv(xi))
            assert torch.equal(xi.flatten(1), feats[i])
            y = h[i].view(b, *ens.deconv.feature_shape)
            for j in range(4):
                w = p[f"deconv.{j}.weight"]
                deconv = nn.ConvTranspose2d(w.shape[0], w.shape[1], 4, 2, 1)
                deconv.weight.copy_(w)
                deconv.bias.copy_(p[f"deconv.{j}.bias"])
                y = deconv(y if j == 0 else F.relu(y))
            assert torch.equal(y.flatten(1), logits[i])


def test_a_few_adam_steps_agree_in_both_layouts():
    """The whole model trained three steps from the same seeds in each layout: the same weights to float32
    rounding (the layout changes no result, only the kernels)."""
    cfg = conv_config(3, size=16)
    images, labels = data(8, 16, 3)
    x, y = torch.from_numpy(images.reshape(8, -1)), torch.from_numpy(labels)
    eps = torch.randn(3, 8, 3, generator=torch.Generator().manual_seed(0))
    states = []
    for layout in ("grouped", "per-seed"):
        ens = EnsembleVAE(cfg.model, [0, 1, 2])
        ens.conv.set_layout(layout)
        ens.deconv.set_layout(layout)
        opt = torch.optim.Adam(ens.parameters(), lr=1e-3)
        for _ in range(3):
            mu, lv = ens.encode(x, y)
            z = mu + torch.exp(0.5 * lv) * eps
            nll, lab = ens.decode_nll(z, x)
            loss = objective_terms(cfg.objective, image_nll=nll, mu=mu, logvar=lv, z=z, dataset_size=8, y=y,
                                   label_logits=lab)["loss"]
            opt.zero_grad()
            loss.sum().backward()
            opt.step()
        states.append(ens.state_dict())
    assert states[0].keys() == states[1].keys()  # the same parameters: checkpoints do not depend on the layout
    for name in states[0]:
        assert torch.allclose(states[0][name], states[1][name], rtol=1e-4, atol=1e-6), name


def test_an_unknown_layout_is_refused_in_one_sentence():
    ens = EnsembleVAE(conv_config(1, size=16).model, [0, 1])
    with pytest.raises(ValueError, match=r"seed layout must be one of grouped, per-seed, got 'loop'"):
        ens.conv.set_layout("loop")
    assert ens.conv.layout == "grouped" and ens.deconv.set_layout("per-seed").layout == "per-seed"


def test_choose_layout_takes_the_median_pair_ratio_and_grouped_on_a_tie():
    from welavae.nn.conv import choose_layout

    # Pair ratios per-seed / grouped (hand-computed) and their median:
    # 1.9/3, 5/1, 1/2 = 0.633, 5, 0.5 → 0.633 < 1: per-seed.
    assert choose_layout({"grouped": [3.0, 1.0, 2.0], "per-seed": [1.9, 5.0, 1.0]}) == "per-seed"
    # 1/2, 3/2 = 0.5, 1.5 → median 1.0: a tie keeps grouped.
    assert choose_layout({"grouped": [2.0, 2.0], "per-seed": [1.0, 3.0]}) == "grouped"
    # A burst of load in pair 1: 0.9, 11, 0.9 → 0.9: per-seed, though the medians of the times (1 against 9) differ.
    assert choose_layout({"grouped": [1.0, 1.0, 10.0], "per-seed": [0.9, 11.0, 9.0]}) == "per-seed"
    assert choose_layout({"grouped": [], "per-seed": [0.1]}) == "grouped"
    assert choose_layout({}) == "grouped"


def test_time_layouts_alternates_the_layouts_and_writes_no_gradient():
    """A fake clock that advances 2 s per grouped step and 1 s per per-seed step: per-seed is chosen, each
    layout timed ``steps`` times after one warm-up each, in the order g, p | g, p, p, g, g, p."""
    from welavae.nn.conv import time_layouts

    ens = EnsembleVAE(conv_config(1, size=16).model, [0, 1])
    ens.deconv.set_layout("per-seed")  # restored afterwards, whatever it was
    seen, now = [], [0.0]

    def clock():
        if len(seen) % 2 == 0:  # a step starts
            seen.append(ens.conv.layout)
        else:
            seen.append(None)
            now[0] += 2.0 if ens.conv.layout == "grouped" else 1.0
        return now[0]

    x = torch.rand(4, 16 * 16)
    layout, seconds = time_layouts([ens.conv, ens.deconv], x, steps=3, clock=clock)
    assert layout == "per-seed"
    assert seconds == {"grouped": [2.0, 2.0, 2.0], "per-seed": [1.0, 1.0, 1.0]}
    assert seen[::2] == ["grouped", "per-seed", "grouped", "per-seed", "per-seed", "grouped", "grouped", "per-seed"]
    assert (ens.conv.layout, ens.deconv.layout) == ("grouped", "per-seed")
    assert all(p.grad is None for p in ens.parameters())
    # One seed has one layout: nothing to time.
    one = EnsembleVAE(conv_config(1, size=16).model, [3])
    assert time_layouts([one.conv, one.deconv], x) == ("grouped", {})
    # The real clock: two measured times each, a valid choice.
    layout, seconds = time_layouts([ens.conv, ens.deconv], x, steps=2)
    assert layout in ("grouped", "per-seed") and [len(v) for v in seconds.values()] == [2, 2]
