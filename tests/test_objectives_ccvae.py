"""The CCVAE terms against independent float64 transcriptions of the paper and of the authors' code.

Two references, neither calling ``welavae.objectives.ccvae``:

* ``ref_terms``: Joy et al. 2021 (ICLR), its supervised and unsupervised bounds, written with scalar torch ops in Python loops for
  categorical labels and partially missing ones (the module docstring's bound): per sample, with O the
  observed labels and U the missing ones,
      bound = w_O [log p(x|z) − KL(q(z_\\c|x) ‖ N(0, I)) − Σ_O (KL_j(y_j) + log q(y_j|z_j))
                   + Σ_U Σ_c q(c|z_j)(log p(c) − KL_j(c) − log q(c|z_j))] + Σ_O (log p(y_j) + log q̂(y_j|x)),
      w_O = Π_O q(y_j | sg z_j) / q̂(y_j|x),  q̂(y_j|x) = (1/R) Σ_r q(y_j | z_j^(r))  (a mean of probabilities);
* ``release_sup`` / ``release_unsup``: thwjoy/ccvae_pytorch ``models/ccvae.py`` ``CCVAE.sup`` / ``.unsup`` /
  ``.classifier_loss`` transcribed with torch.distributions (Bernoulli labels, its ``CondPrior``), for one
  binary label, where the categorical classifier with w_0 = b_0 = 0 must be the release's
  Bernoulli(logits = w z + b).  Their ``unsup`` samples y; its expectation over y is compared.
"""
import math

import pytest
import torch
import torch.distributions as dist

from welavae.objectives.ccvae import (
    ccvae_classifier_log_probs,
    ccvae_log_qy_x,
    ccvae_predict,
    ccvae_prior_kl,
    ccvae_terms,
)

F64 = torch.float64
S, B, K, R = 2, 4, 3, 5  # seeds, batch, latents (2 label latents + 1 free), classifier draws
SIZES = (3, 2)
Y = torch.tensor([[2, 1], [0, -1], [1, 0], [-1, -1]])  # one label missing, and one unlabelled sample
WEIGHTS = torch.tensor([[0.7, -1.1, 0.4, 1.9], [-1.3, 0.6, 2.1, -0.2]], dtype=F64)  # (S, B): a leak shows


def scalars(t):
    return [scalars(u) for u in t.unbind(0)] if t.dim() else t


# ------------------------------------------------------------------ the paper reference (scalars only)
def log_softmax_list(logits):
    top = max(float(v.detach()) for v in logits)
    lse = top + torch.log(sum(torch.exp(v - top) for v in logits))
    return [v - lse for v in logits]


def ref_log_q(z, w, b):
    """log q(c|z) for one label: softmax over the affine logits w_c z + b_c (lists of scalars)."""
    return log_softmax_list([w[c] * z + b[c] for c in range(len(w))])


def ref_kl(m, lv, pm, plv):
    """KL(N(m, e^lv) ‖ N(pm, e^plv)) = log(σ_p/σ_q) + (σ_q² + (m − pm)²)/(2σ_p²) − ½."""
    return 0.5 * (plv - lv) + (torch.exp(lv) + (m - pm) ** 2) / (2.0 * torch.exp(plv)) - 0.5


def ref_terms(case):
    """(S, B) loss and weight, looped over seeds, samples, labels and classes."""
    nll, mu, lv, z, zd = (scalars(case[k]) for k in ("image_nll", "mu", "logvar", "z", "z_draws"))
    w = [scalars(t) for t in case["weight"]]
    b = [scalars(t) for t in case["bias"]]
    pm = [scalars(t) for t in case["prior_mu"]]
    plv = [scalars(t) for t in case["prior_logvar"]]
    lpy = [scalars(t) for t in case["log_py"]]
    ys = case["y"].tolist()
    m = len(ys[0])
    loss, weight = [], []
    for s in range(len(mu)):
        row_loss, row_w = [], []
        for i in range(len(ys)):
            inner = -nll[s][i]
            for k in range(m, len(mu[s][i])):  # free latents: KL to N(0, 1)
                inner = inner - ref_kl(mu[s][i][k], lv[s][i][k], 0.0 * lv[s][i][k], 0.0 * lv[s][i][k])
            ratio, outer = 1.0, 0.0
            for j in range(m):
                p = len(w[j][s])
                log_q = ref_log_q(z[s][i][j], w[j][s], b[j][s])
                kls = [ref_kl(mu[s][i][j], lv[s][i][j], pm[j][s][c], plv[j][s][c]) for c in range(p)]
                c = ys[i][j]
                if c >= 0:
                    inner = inner - kls[c] - log_q[c]
                    q_hat = sum(torch.exp(ref_log_q(zd[s][r][i][j], w[j][s], b[j][s])[c]) for r in range(len(zd[s]))) / len(zd[s])
                    q_sg = torch.exp(ref_log_q(z[s][i][j].detach(), w[j][s], b[j][s])[c])
                    ratio = ratio * q_sg / q_hat
                    outer = outer + lpy[j][c] + torch.log(q_hat)
                else:
                    inner = inner + sum(torch.exp(log_q[c]) * (lpy[j][c] - kls[c] - log_q[c]) for c in range(p))
            row_loss.append(-(ratio * inner + outer))
            row_w.append(ratio * torch.ones((), dtype=F64))
        loss.append(torch.stack(row_loss))
        weight.append(torch.stack(row_w))
    return {"loss": torch.stack(loss), "weight": torch.stack(weight)}


# ------------------------------------------------------------------ the fixed case
def make_case(y=Y, seed=29):
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0, shift=0.0):
        return (torch.randn(*shape, generator=g, dtype=F64) * scale + shift).requires_grad_()

    mu, logvar = randn(S, B, K), randn(S, B, K, scale=0.4)
    eps = torch.randn(S, B, K, generator=g, dtype=F64)
    # the sample and the draws: reparameterised, then independent leaves so their gradients show apart
    z = (mu + torch.exp(0.5 * logvar) * eps).detach().requires_grad_()
    eps_r = torch.randn(S, R, B, 2, generator=g, dtype=F64)
    z_draws = (mu[:, None, :, :2] + torch.exp(0.5 * logvar[:, None, :, :2]) * eps_r).detach().requires_grad_()
    return dict(
        image_nll=randn(S, B, scale=3.0, shift=20.0),
        mu=mu, logvar=logvar, z=z, z_draws=z_draws, y=y,
        weight=[randn(S, p, scale=1.5) for p in SIZES],  # a different classifier per seed
        bias=[randn(S, p) for p in SIZES],
        prior_mu=[randn(S, p, scale=2.0) for p in SIZES],
        prior_logvar=[randn(S, p, scale=0.5) for p in SIZES],
        log_py=[torch.log(torch.tensor([0.5, 0.3, 0.2], dtype=F64)), torch.log(torch.tensor([0.4, 0.6], dtype=F64))],
    )


def leaves(case):
    return [case[k] for k in ("image_nll", "mu", "logvar", "z", "z_draws")] + [
        t for k in ("weight", "bias", "prior_mu", "prior_logvar") for t in case[k]]


def package(case):
    return ccvae_terms(**case)


def grads(loss, case):
    return torch.autograd.grad((WEIGHTS * loss).sum(), leaves(case), allow_unused=True, materialize_grads=True)


@pytest.mark.parametrize("labels", ["partial", "all-observed"])
def test_terms_equal_the_paper_reference_in_value_and_gradients(labels):
    # Known answer: ref_terms above, written from the paper's bounds (module docstring).
    case = make_case(Y if labels == "partial" else torch.tensor([[2, 1], [0, 0], [1, 0], [2, 1]]))
    got, ref = package(case), ref_terms(case)
    for name in ("loss", "weight"):
        assert got[name].shape == (S, B)
        torch.testing.assert_close(got[name], ref[name], rtol=1e-12, atol=0, msg=name)
    for a, b in zip(grads(got["loss"], case), grads(ref["loss"], case)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_gradients_by_gradcheck():
    # Every input but the sample z: the weight's numerator sees z through a stop-gradient (the release's),
    # so its autograd gradient is, by design, not the finite difference; the reference test covers it.
    case = make_case()
    names = ["image_nll", "mu", "logvar", "z_draws"]
    lists = ["weight", "bias", "prior_mu", "prior_logvar"]

    def f(*xs):
        args = dict(zip(names, xs[:4]))
        for n, k in enumerate(lists):
            args[k] = list(xs[4 + 2 * n: 6 + 2 * n])
        return ccvae_terms(**{**case, **args})["loss"]

    inputs = [case[n] for n in names] + [t for k in lists for t in case[k]]
    assert torch.autograd.gradcheck(f, inputs)
    assert torch.autograd.gradcheck(lambda m, lv, pm, plv: ccvae_prior_kl(m, lv, pm, plv),
                                    (case["mu"][..., 0], case["logvar"][..., 0], case["prior_mu"][0], case["prior_logvar"][0]))
    assert torch.autograd.gradcheck(lambda zd, w0, w1, b0, b1: ccvae_log_qy_x(zd, Y, [w0, w1], [b0, b1]),
                                    (case["z_draws"], *case["weight"], *case["bias"]))


def test_prior_kl_closed_form():
    # KL(N(m, s²) ‖ N(μ_c, σ_c²)) = ½ [log σ_c² − log s² + (s² + (m − μ_c)²)/σ_c² − 1], m = 0.5, s² = 1:
    #   class 0: μ = −1, σ² = 1: ½ [0 + (1 + 2.25)/1 − 1] = 1.125
    #   class 1: μ = 2,  σ² = 4: ½ [log 4 + (1 + 2.25)/4 − 1] = log 2 − 0.09375
    got = ccvae_prior_kl(torch.tensor([[0.5]], dtype=F64), torch.tensor([[0.0]], dtype=F64),
                         torch.tensor([[-1.0, 2.0]], dtype=F64), torch.tensor([[0.0, math.log(4.0)]], dtype=F64))
    torch.testing.assert_close(got, torch.tensor([[[1.125, math.log(2) - 0.09375]]], dtype=F64), rtol=1e-15, atol=0)


def test_classifier_closed_form():
    # One latent, p = 3, w = (0, 1, 2), b = (0, 0, −1), z = 1: logits (0, 1, 1),
    # q = (1, e, e)/(1 + 2e): log q(0) = −log(1 + 2e), log q(1) = log q(2) = 1 − log(1 + 2e).
    got = ccvae_classifier_log_probs(torch.tensor([[[1.0]]], dtype=F64), [torch.tensor([[0.0, 1.0, 2.0]], dtype=F64)],
                                     [torch.tensor([[0.0, 0.0, -1.0]], dtype=F64)])[0]
    lse = math.log(1 + 2 * math.e)
    torch.testing.assert_close(got, torch.tensor([[[-lse, 1 - lse, 1 - lse]]], dtype=F64), rtol=1e-15, atol=0)
    # p = 2 with w_0 = b_0 = 0 is the release's Bernoulli(sigmoid(w z + b)): w_1 = 2, b_1 = −1, z = 0.3
    # → q(1) = sigmoid(−0.4).
    got = ccvae_classifier_log_probs(torch.tensor([[[0.3]]], dtype=F64), [torch.tensor([[0.0, 2.0]], dtype=F64)],
                                     [torch.tensor([[0.0, -1.0]], dtype=F64)])[0]
    torch.testing.assert_close(got.exp()[0, 0, 1], torch.sigmoid(torch.tensor(-0.4, dtype=F64)), rtol=1e-15, atol=0)
    # q̂(y = 1 | x) from the draws z = 1 and z = −1 (w = (0, 2), b = (0, −1)): logits (0, 1) and (0, −3),
    # q̂ = ½ (e/(1 + e) + 1/(1 + e³)).
    got = ccvae_log_qy_x(torch.tensor([[[[1.0]], [[-1.0]]]], dtype=F64), torch.tensor([[1]]),
                         [torch.tensor([[0.0, 2.0]], dtype=F64)], [torch.tensor([[0.0, -1.0]], dtype=F64)])
    q_hat = 0.5 * (math.e / (1 + math.e) + 1 / (1 + math.e**3))
    torch.testing.assert_close(got, torch.tensor([[[math.log(q_hat)]]], dtype=F64), rtol=1e-15, atol=0)


def test_one_latent_bound_closed_form():
    # K = m = 1, p = 2, μ = 0.5, log s² = 0, sample z = 1, draws (1, −1), −log p(x|z) = 2, uniform p(y),
    # classifier w = (0, 2), b = (0, −1) → logits at z = 1: (0, 1); prior μ = (−1, 2), σ² = (1, 4).
    # From the closed forms above: q(1|z) = e/(1 + e), KL(0) = 1.125, KL(1) = log 2 − 0.09375,
    # q̂(1|x) = ½ (e/(1 + e) + 1/(1 + e³)).
    #   labelled y = 1:  w = q(1|z)/q̂,
    #     bound = w · (−2 − KL(1) − log q(1|z)) + log ½ + log q̂
    #   unlabelled:      bound = −2 + Σ_c q(c|z) (log ½ − KL(c) − log q(c|z)), q(0|z) = 1/(1 + e)
    q1 = math.e / (1 + math.e)
    q0 = 1 - q1
    kl0, kl1 = 1.125, math.log(2) - 0.09375
    q_hat = 0.5 * (q1 + 1 / (1 + math.e**3))
    w = q1 / q_hat
    labelled = w * (-2 - kl1 - math.log(q1)) + math.log(0.5) + math.log(q_hat)
    unlabelled = -2 + q0 * (math.log(0.5) - kl0 - math.log(q0)) + q1 * (math.log(0.5) - kl1 - math.log(q1))

    def one(v):
        return torch.tensor(v, dtype=F64)

    got = ccvae_terms(image_nll=one([[2.0, 2.0]]), mu=one([[[0.5], [0.5]]]), logvar=one([[[0.0], [0.0]]]),
                      z=one([[[1.0], [1.0]]]), z_draws=one([[[[1.0], [1.0]], [[-1.0], [-1.0]]]]),
                      y=torch.tensor([[1], [-1]]), weight=[one([[0.0, 2.0]])], bias=[one([[0.0, -1.0]])],
                      prior_mu=[one([[-1.0, 2.0]])], prior_logvar=[one([[0.0, math.log(4.0)]])])
    torch.testing.assert_close(got["loss"], one([[-labelled, -unlabelled]]), rtol=1e-14, atol=0)
    torch.testing.assert_close(got["weight"], one([[w, 1.0]]), rtol=1e-14, atol=0)
    torch.testing.assert_close(got["kl"], one([[kl1, q0 * kl0 + q1 * kl1]]), rtol=1e-14, atol=0)


# ------------------------------------------------------------------ against the authors' release, one binary label
def release_case(seed):
    g = torch.Generator().manual_seed(seed)
    s, b = 2, 5

    def randn(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=F64) * scale).requires_grad_()

    mu, logvar = randn(s, b, 2), randn(s, b, 2, scale=0.4)
    z = (mu + torch.exp(0.5 * logvar) * torch.randn(s, b, 2, generator=g, dtype=F64)).detach().requires_grad_()
    draws = (mu[:, None, :, :1] + torch.exp(0.5 * logvar[:, None, :, :1]) * torch.randn(s, 7, b, 1, generator=g, dtype=F64))
    draws = draws.detach().requires_grad_()
    diag_w, diag_b = randn(s), randn(s)  # the release's Classifier (Diagonal)
    loc_true, loc_false, scale_true, scale_false = randn(s, scale=2.0), randn(s, scale=2.0), randn(s), randn(s)
    return dict(image_nll=randn(s, b, scale=3.0), mu=mu, logvar=logvar, z=z, draws=draws, diag_w=diag_w, diag_b=diag_b,
                loc_true=loc_true, loc_false=loc_false, scale_true=scale_true, scale_false=scale_false,
                prior=torch.tensor(0.3, dtype=F64))


def release_bound(c, y, *, supervised):
    """Per seed, per sample −loss of CCVAE.sup (y given) or CCVAE.unsup (y: the sampled label), (S, B)."""
    out = []
    for s in range(c["mu"].shape[0]):
        x_ll = -c["image_nll"][s]  # img_log_likelihood(recon, x)
        zc = c["z"][s, :, :1]
        y_s = y.to(F64)[:, None]
        loc_p = y_s * c["loc_true"][s] + (1 - y_s) * c["loc_false"][s]  # CondPrior.forward
        scale_p = torch.nn.functional.softplus(y_s * c["scale_true"][s] + (1 - y_s) * c["scale_false"][s])
        post = dist.Normal(c["mu"][s], torch.exp(0.5 * c["logvar"][s]))
        prior = dist.Normal(torch.cat([loc_p, torch.zeros_like(loc_p)], 1), torch.cat([scale_p, torch.ones_like(scale_p)], 1))
        kl = dist.kl.kl_divergence(post, prior).sum(-1)
        log_py = dist.Bernoulli(c["prior"]).log_prob(y_s).sum(-1)
        log_qyzc = dist.Bernoulli(logits=zc * c["diag_w"][s] + c["diag_b"][s]).log_prob(y_s).sum(-1)
        if not supervised:
            out.append(x_ll + log_py - kl - log_qyzc)
            continue
        # classifier_loss: k draws, logsumexp over them − log k
        d = c["draws"][s]  # (k, B, 1)
        lqy_z = dist.Bernoulli(logits=d * c["diag_w"][s] + c["diag_b"][s]).log_prob(y_s.expand(d.shape[0], -1, -1)).sum(-1)
        log_qyx = torch.logsumexp(lqy_z, 0) - math.log(d.shape[0])
        log_qyzc_ = dist.Bernoulli(logits=zc.detach() * c["diag_w"][s] + c["diag_b"][s]).log_prob(y_s).sum(-1)
        w = torch.exp(log_qyzc_ - log_qyx)
        out.append(w * (x_ll - kl - log_qyzc) + log_py + log_qyx)
    return torch.stack(out)


def ours_from_release(c, y):
    zero = torch.zeros_like(c["diag_w"])
    scales = [torch.nn.functional.softplus(c["scale_false"]), torch.nn.functional.softplus(c["scale_true"])]
    return ccvae_terms(
        image_nll=c["image_nll"], mu=c["mu"], logvar=c["logvar"], z=c["z"], z_draws=c["draws"], y=y[:, None],
        weight=[torch.stack([zero, c["diag_w"]], -1)], bias=[torch.stack([zero, c["diag_b"]], -1)],
        prior_mu=[torch.stack([c["loc_false"], c["loc_true"]], -1)],
        prior_logvar=[2.0 * torch.log(torch.stack(scales, -1))],
        log_py=[torch.log(torch.stack([1 - c["prior"], c["prior"]]))],
    )["loss"]


def release_leaves(c):
    return [c[k] for k in ("image_nll", "mu", "logvar", "z", "draws", "diag_w", "diag_b",
                           "loc_true", "loc_false", "scale_true", "scale_false")]


def test_supervised_bound_equals_the_release_for_one_binary_label():
    # Known answer: CCVAE.sup of thwjoy/ccvae_pytorch, transcribed above; value and every gradient
    # (the stop-gradient in its weight's numerator included).
    c = release_case(3)
    y = torch.tensor([1, 0, 1, 1, 0])
    got, ref = ours_from_release(c, y), -release_bound(c, y, supervised=True)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=0)
    wts = torch.arange(1.0, 11.0, dtype=F64).view(2, 5)
    for a, b in zip(torch.autograd.grad((wts * got).sum(), release_leaves(c)),
                    torch.autograd.grad((wts * ref).sum(), release_leaves(c))):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_unsupervised_bound_is_the_release_expectation_over_its_sampled_label():
    # Known answer: CCVAE.unsup draws y ~ q(y|z_c); here the expectation Σ_y q(y|z_c) · unsup(y) is taken
    # in closed form (value, and the gradient of that expectation: the release's sample has no
    # score-function term, so only its expectation, not its gradient estimate, is the target).
    c = release_case(4)
    missing = torch.full((5,), -1)
    got = ours_from_release(c, missing)
    q1 = torch.sigmoid(c["z"][..., 0] * c["diag_w"][:, None] + c["diag_b"][:, None])  # (S, B)
    ones, zeros = torch.ones(5, dtype=torch.int64), torch.zeros(5, dtype=torch.int64)
    expected = -(q1 * release_bound(c, ones, supervised=False) + (1 - q1) * release_bound(c, zeros, supervised=False))
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)
    for a, b in zip(torch.autograd.grad(got.sum(), release_leaves(c)[:4]),
                    torch.autograd.grad(expected.sum(), release_leaves(c)[:4])):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ missing labels
def test_a_missing_label_reads_none_of_its_draws():
    # Known answer: q̂(y_j|x) is needed only for an observed label, so the draws of a missing label's latent
    # (sample 1, label 1; sample 3, both) change nothing bit for bit and get exactly zero gradient.
    case = make_case()
    missing = (Y < 0)  # (B, m)
    other = {**case, "z_draws": torch.where(missing[None, None], torch.full_like(case["z_draws"], 37.0),
                                            case["z_draws"].detach()).requires_grad_()}
    a, b = package(case), package(other)
    for name in a:
        assert torch.equal(a[name], b[name]), name
    g = torch.autograd.grad((WEIGHTS * a["loss"]).sum(), case["z_draws"])[0]
    assert (g[:, :, missing] == 0).all() and (g[:, :, ~missing] != 0).all()


def test_a_missing_label_uses_the_unlabelled_bound_for_that_label_only():
    # Known answer, composed by hand from the single-label pieces: sample 1 has label 0 = 0 observed and
    # label 1 missing, so w = q(0 | sg z_0)/q̂(0|x) (label 0 alone) and label 1 enters the bracket as
    # Σ_c q(c|z_1) (log p(c) − KL_1(c) − log q(c|z_1)).  Value and gradients.
    case = make_case()
    i = 1

    def by_hand(case):
        mu, lv, z = case["mu"][:, i], case["logvar"][:, i], case["z"][:, i]
        lq0 = ccvae_classifier_log_probs(z[:, None, :2], case["weight"], case["bias"])
        lq0_sg = ccvae_classifier_log_probs(z[:, None, :2].detach(), case["weight"], case["bias"])
        kl0 = ccvae_prior_kl(mu[:, None, 0], lv[:, None, 0], case["prior_mu"][0], case["prior_logvar"][0])[:, 0]
        kl1 = ccvae_prior_kl(mu[:, None, 1], lv[:, None, 1], case["prior_mu"][1], case["prior_logvar"][1])[:, 0]
        lqyx = ccvae_log_qy_x(case["z_draws"][:, :, i:i + 1], torch.tensor([[0, -1]]), case["weight"], case["bias"])
        lqyx0 = lqyx[:, 0, 0]
        w = torch.exp(lq0_sg[0][:, 0, 0] - lqyx0)
        free = 0.5 * (mu[:, 2] ** 2 + lv[:, 2].exp() - lv[:, 2] - 1)
        q1 = lq0[1][:, 0].exp()
        unsup1 = (q1 * (case["log_py"][1] - kl1 - lq0[1][:, 0])).sum(-1)
        inner = -case["image_nll"][:, i] - free - kl0[:, 0] - lq0[0][:, 0, 0] + unsup1
        return -(w * inner + case["log_py"][0][0] + lqyx0)

    got, ref = package(case)["loss"][:, i], by_hand(case)
    torch.testing.assert_close(got, ref, rtol=1e-13, atol=0)
    wts = WEIGHTS[:, i]
    for a, b in zip(torch.autograd.grad((wts * got).sum(), leaves(case), allow_unused=True, materialize_grads=True),
                    torch.autograd.grad((wts * ref).sum(), leaves(case), allow_unused=True, materialize_grads=True)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_predict_is_the_argmax_at_the_mean():
    # label 0: w = (0, 1, 2), b = (0, 0, −1): logits at μ = 2: (0, 2, 3) → class 2; at μ = −1: (0, −1, −3) → 0.
    # label 1: w = (0, −1), b = (0, 0.5): at μ = 0: (0, 0.5) → 1; at μ = 1: (0, −0.5) → 0.
    mu = torch.tensor([[[2.0, 0.0, 9.0], [-1.0, 1.0, 9.0]]], dtype=F64)
    w = [torch.tensor([[0.0, 1.0, 2.0]], dtype=F64), torch.tensor([[0.0, -1.0]], dtype=F64)]
    b = [torch.tensor([[0.0, 0.0, -1.0]], dtype=F64), torch.tensor([[0.0, 0.5]], dtype=F64)]
    assert ccvae_predict(mu, w, b).tolist() == [[[2, 1], [0, 0]]]
