"""welavae.nn.vae: the stacked ensemble equals independent networks; a label-free encoder ignores labels."""
import pytest
import torch
import torch.nn.functional as F
from fixtures import blobs_cfg
from fixtures import small_cfg as cfg

from welavae.nn import EnsembleVAE, plain_networks
from welavae.objectives import bernoulli_nll, objective_terms


@pytest.mark.parametrize("model", ["wela", "tcvae"])
def test_stacked_equals_independent_sequentials(blobs, model):
    images, labels, _ = blobs
    c = blobs_cfg(model)
    torch.manual_seed(0)
    ens = EnsembleVAE(c.model, [3, 8, 11]).double()
    x = torch.from_numpy(images[:16].reshape(16, -1)).double()
    y = torch.from_numpy(labels[:16]) if model == "wela" else None
    eps = torch.randn(3, 16, c.model.latent_dim, dtype=torch.float64)
    mu, lv = ens.encode(x, y)
    z = mu + torch.exp(0.5 * lv) * eps
    img, lab = ens.decode(z)
    t = objective_terms(c.objective, image_nll=bernoulli_nll(img, x), mu=mu, logvar=lv, z=z, dataset_size=4096, y=y, label_logits=lab)
    t["loss"].sum().backward()
    for i in range(3):
        enc, dec = plain_networks(ens, i)
        enc, dec = enc.double(), dec.double()
        inp = x if y is None else torch.cat([x, F.one_hot(y, 2).double().reshape(16, -1)], 1)
        h = enc(inp)
        mu_i, lv_i = h.chunk(2, -1)
        z_i = mu_i + torch.exp(0.5 * lv_i) * eps[i]
        out = dec(z_i)
        img_i = out[:, :4096]
        lab_i = [lg[None] for lg in out[:, 4096:].split([2, 2], dim=-1)] if y is not None else None
        t_i = objective_terms(c.objective, image_nll=bernoulli_nll(img_i[None], x), mu=mu_i[None], logvar=lv_i[None], z=z_i[None],
                              dataset_size=4096, y=y, label_logits=lab_i)
        assert torch.allclose(mu_i, mu[i], atol=1e-12) and torch.allclose(img_i, img[i], atol=1e-10)
        assert torch.allclose(t_i["loss"][0], t["loss"][i], rtol=1e-12)
        t_i["loss"].sum().backward()
        plain_layers = [m for m in list(enc) + list(dec) if isinstance(m, torch.nn.Linear)]
        stacked_layers = list(ens.encoder) + list(ens.decoder)
        for pl, sl in zip(plain_layers, stacked_layers):
            gw, gb = sl.seed_weight(i, grad=True)
            assert torch.allclose(pl.weight.grad, gw, rtol=1e-9, atol=1e-12)
            assert torch.allclose(pl.bias.grad, gb, rtol=1e-9, atol=1e-12)


def test_label_free_encoder_ignores_labels_and_a_missing_label_is_a_zero_block(small):
    images, labels, _ = small
    x = torch.from_numpy(images[:8].reshape(8, -1))
    y = torch.from_numpy(labels[:8])
    free = EnsembleVAE(cfg(encoder_input="image").model, [0])
    assert torch.equal(free.encode(x, y)[0], free.encode(x, None)[0])
    paper = EnsembleVAE(cfg().model, [0])
    y_missing = y.clone()
    y_missing[0, 1] = -1
    onehot = paper.one_hot(y_missing, 8, x)
    assert onehot[0].tolist() == [float(y[0, 0] == 0), float(y[0, 0] == 1), 0.0, 0.0]
    assert torch.equal(onehot[1:], paper.one_hot(y, 8, x)[1:])
    with pytest.raises(ValueError, match="--encoder-input image"):
        paper.encode(x, None)
