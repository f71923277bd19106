"""welavae.nn.ensemble: the output heads are one linear layer per seed; a diagonal label head reads one latent."""
import torch
import torch.nn.functional as F

from welavae.config import DataConfig, make_run_config
from welavae.nn import EnsembleVAE
from welavae.objectives import bernoulli_nll


def test_image_head_is_one_linear_layer():
    c = make_run_config("wela", label_dim=2, hidden=(16, 8), data=DataConfig(variants=1))
    model = EnsembleVAE(c.model, [0, 1])
    head = model.decoder[-1]
    z = torch.randn(2, 5, c.model.latent_dim)
    img, lab = model.decode(z)
    # welavae 0.1.0's layout: one (S, H, 4096 + 4) layer, split after the matmul.
    w = torch.cat([head.weight0, head.weight1], dim=2)
    b = torch.cat([head.bias0, head.bias1], dim=2)
    h = F.relu(model.decoder[1](F.relu(model.decoder[0](z))))
    full = torch.baddbmm(b, h, w)
    assert torch.allclose(img, full[..., :4096], atol=1e-6)
    assert [t.shape for t in lab] == [(2, 5, 2), (2, 5, 2)]  # one (S, B, p_j) tensor per label
    assert torch.allclose(torch.cat(lab, dim=-1), full[..., 4096:], atol=1e-6)
    # The same draws as one nn.Linear(8, 4100) per seed: seed 1 alone has seed 1's weights.
    alone = EnsembleVAE(c.model, [1]).decoder[-1]
    assert torch.equal(alone.weight0[0], head.weight0[1]) and torch.equal(alone.bias1[0], head.bias1[1])
    # decode_nll is bernoulli_nll of decode's image logits.
    x = torch.rand(5, 4096)
    nll, lab2 = model.decode_nll(z, x)
    assert torch.allclose(nll, bernoulli_nll(img, x), rtol=1e-6) and all(torch.equal(a, b) for a, b in zip(lab2, lab))


def test_diagonal_head_label_j_depends_on_latent_j_only():
    c = make_run_config("wela", label_dims=(3, 2), latent_dim=4, label_head="diagonal", hidden=(8,),
                        image_shape=(6, 5), data=DataConfig(source="arrays"))
    model = EnsembleVAE(c.model, [0, 1])
    z = torch.randn(2, 5, 4, requires_grad=True)
    for j, p in enumerate((3, 2)):
        for cls in range(p):
            (g,) = torch.autograd.grad(model.label_logits(z)[j][..., cls].sum(), z)
            others = [k for k in range(4) if k != j]
            assert torch.count_nonzero(g[..., others]) == 0  # exactly zero: no path from latent k ≠ j
            assert torch.count_nonzero(g[..., j]) == 10
    assert model.decode(z)[1][1].shape == (2, 5, 2)
