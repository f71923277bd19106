"""welavae.nn.labelside: the peers' label parameters, their initial values and each method's own predictor.

Known answers: the initial values written out by hand from the module docstring (disentanglement_lib's
b = 1 and Glorot-uniform bound √(3/p); the CCVAE release's prior means ±2, scale softplus(1), classifier
Bernoulli(sigmoid(z)) for p = 2); the scores' argmax equals :func:`welavae.objectives.s2.s2_predict` and
:func:`welavae.objectives.ccvae.ccvae_predict` (the predictors the objective tests pin by hand).
"""
import math

import pytest
import torch

from welavae.config import make_run_config
from welavae.nn import EnsembleVAE, seed_parameters
from welavae.nn.labelside import EMBED_SIGMA, LabelSide
from welavae.objectives.ccvae import ccvae_predict
from welavae.objectives.s2 import s2_predict
from welavae.seeding import init_generators

DIMS = (3, 2)


def side(kind, seeds=(0, 1)):
    return LabelSide(kind, DIMS, init_generators(seeds))


def test_s2_parameters_and_their_initial_values():
    assert dict(side("s2-xent").named_parameters()) == {} and dict(side("s2-cov").named_parameters()) == {}
    l2 = side("s2-l2")
    assert torch.equal(l2.scale, torch.ones(2)) and l2.seed_dims == {"scale": 0}
    embed = side("s2-embed")
    e0, e1 = embed.embedding.detach().split(DIMS, dim=1)
    assert embed.embedding.shape == (2, 5) and (e0.abs() <= math.sqrt(3 / 3)).all() and (e1.abs() <= math.sqrt(3 / 2)).all()
    assert not torch.equal(embed.embedding[0], embed.embedding[1])  # each seed draws its own
    assert torch.equal(side("s2-embed", seeds=(1,)).embedding[0], embed.embedding[1])  # …from its own generator
    inputs = embed.objective_inputs()
    assert [e.shape for e in inputs["embeddings"]] == [(2, 3), (2, 2)] and inputs["sigma"] == EMBED_SIGMA == 1.0
    assert side("s2-xent").objective_inputs() == {"label_sizes": [3, 2]}


def test_ccvae_parameters_start_as_the_release_for_two_classes():
    c = side("ccvae")
    assert set(c.seed_dims) == {"weight", "bias", "prior_mu", "prior_logvar"}
    w, b, mu, lv = (c.objective_inputs()[k] for k in ("weight", "bias", "prior_mu", "prior_logvar"))
    # p = 2: class 0 (0, 0), class 1 (1, 0): softmax = Bernoulli(sigmoid(z)), the release's Diagonal(w=1, b=0)
    assert w[1].tolist() == [[0.0, 1.0]] * 2 and b[1].tolist() == [[0.0, 0.0]] * 2
    assert mu[1].tolist() == [[-2.0, 2.0]] * 2
    assert lv[1][0, 0].item() == pytest.approx(2 * math.log(math.log1p(math.e)))  # log softplus(1)² ≈ 0.545
    # p = 3: means −2, 0, 2; boundaries at −1 and 1 (midway): logits (0, z + 1, 2z) tie exactly there
    assert mu[0][0].tolist() == [-2.0, 0.0, 2.0] and w[0][0].tolist() == [0.0, 1.0, 2.0] and b[0][0].tolist() == [0, 1, 0]
    z = torch.tensor([-1.0, 1.0, -3.0, 0.0, 3.0])
    logits = z[:, None] * w[0][0] + b[0][0]
    assert logits[0, 0] == logits[0, 1] and logits[1, 1] == logits[1, 2]
    assert logits[2:].argmax(-1).tolist() == [0, 1, 2]


@pytest.mark.parametrize("kind", ["s2-xent", "s2-l2", "s2-embed"])
def test_s2_scores_argmax_is_s2_predict(kind):
    s = side(kind)
    with torch.no_grad():
        if kind == "s2-l2":
            s.scale.copy_(torch.tensor([0.5, 2.0]))
    z = torch.randn(2, 50, 4, generator=torch.Generator().manual_seed(0)) * 2
    got = torch.stack([sc.argmax(-1) for sc in s.scores(z)], -1)
    params = s.objective_inputs()
    want = s2_predict(kind[3:], z, label_sizes=DIMS, scale=params.get("scale"), embeddings=params.get("embeddings"))
    assert torch.equal(got, want)
    assert side("s2-cov").scores(z) is None


def test_ccvae_scores_argmax_is_ccvae_predict():
    c = side("ccvae")
    z = torch.randn(2, 50, 4, generator=torch.Generator().manual_seed(1)) * 2
    got = torch.stack([sc.argmax(-1) for sc in c.scores(z)], -1)
    p = c.objective_inputs()
    assert torch.equal(got, ccvae_predict(z, p["weight"], p["bias"]))


def test_the_network_of_a_peer_decodes_no_label_and_predicts_with_its_own():
    cfg = make_run_config("ccvae", label_dims=(3, 2), latent_dim=3, hidden=(8,), image_shape=(4, 4))
    model = EnsembleVAE(cfg.model, [0, 1], label_side=cfg.objective.label_side)
    plain = EnsembleVAE(make_run_config("tcvae", latent_dim=3, hidden=(8,), image_shape=(4, 4)).model, [0, 1])
    # the same encoder and decoder as a label-free model (same draws), plus the label side
    own = dict(model.named_parameters())
    assert all(torch.equal(own[k], v) for k, v in plain.named_parameters())
    assert sorted(set(own) - set(dict(plain.named_parameters()))) == [
        "label_side.bias", "label_side.prior_logvar", "label_side.prior_mu", "label_side.weight"]
    z = torch.randn(2, 5, 3)
    logits, labels = model.decode(z)
    assert labels is None and model.decode_nll(z, torch.rand(5, 16))[1] is None
    assert [t.shape for t in model.label_logits(z)] == [(2, 5, 3), (2, 5, 2)]
    one = model.subset([1])  # a seed taken out keeps its label side
    assert torch.equal(one.label_side.prior_mu[0], model.label_side.prior_mu[1])
    assert seed_parameters(model, 1)["label_side.weight"].tolist() == [0.0, 1.0, 2.0, 0.0, 1.0]


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown label side 'probe'"):
        LabelSide("probe", DIMS, init_generators([0]))
