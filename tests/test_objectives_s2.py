"""The S2 supervised regularisers against an independent float64 transcription of disentanglement_lib.

The reference below is written from ``disentanglement_lib/methods/semi_supervised/semi_supervised_vae.py``
(google-research/disentanglement_lib), not from ``welavae.objectives.s2``, with scalar torch ops in
Python loops (autograd gives its gradients):

* xent:  TF's ``sigmoid_cross_entropy_with_logits(x, t) = max(x, 0) − x t + log(1 + e^{−|x|})`` of
  latent j against ``normalize_labels``: t = c / p_j;
* l2:    ``2 · l2_loss(r·b − labels)`` = Σ (b r − c)² (``learn_scale=True``, their default);
* cov:   the (K, m) batch covariance of the representation with the raw labels, diagonal set to 0,
  ``2 · l2_loss`` = Σ of the squared entries; with a missing label, label j's column over the samples
  that have it (the reference takes that sub-batch explicitly);
* embed: logits ℓ_c = −((r_j − e_c)·σ)², ``softmax_cross_entropy`` of the one-hot label.

Their batch reductions (sum for xent/l2, mean for embed) are checked apart, on fully labelled batches,
including two known answers from their own ``semi_supervised_vae_test.py``.
"""
import math

import pytest
import torch

from welavae.objectives.s2 import S2_KINDS, s2_cov, s2_embed, s2_l2, s2_predict, s2_xent

F64 = torch.float64
S, B, K = 2, 4, 3
SIZES = (3, 2)  # m = 2 labels of 3 and 2 classes
# One label missing (sample 1, label 1); sample 3 has the rarest pattern so every class shows.
Y = torch.tensor([[2, 1], [0, -1], [1, 0], [0, 1]])
WEIGHTS = torch.tensor([[0.7, -1.1, 0.4, 1.9], [-1.3, 0.6, 2.1, -0.2]], dtype=F64)  # (S, B): a leak shows


def scalars(t):
    return [scalars(u) for u in t.unbind(0)] if t.dim() else t


# ------------------------------------------------------------------ the reference (scalars only)
def ref_xent_term(x, c, p):
    t = c / p
    return torch.clamp(x, min=0.0) - x * t + torch.log(1.0 + torch.exp(-torch.abs(x)))


def ref_l2_term(x, c, b):
    return (x * b - c) ** 2


def ref_embed_term(x, c, e, sigma):
    logits = [-(((x - e_k) * sigma) ** 2) for e_k in e]
    top = max(float(v.detach()) for v in logits)
    return top + torch.log(sum(torch.exp(v - top) for v in logits)) - logits[c]


def ref_per_sample(kind, mu, y, *, b=None, e=None, sigma=None):
    """(S, B) stacked: per seed s, per sample i, Σ over observed labels j of the term."""
    mus, ys = scalars(mu), y.tolist()
    out = []
    for s in range(len(mus)):
        row = []
        for i in range(len(ys)):
            total = 0.0 * mus[s][i][0]
            for j, c in enumerate(ys[i]):
                if c < 0:
                    continue  # −1 = missing: no term at all
                x = mus[s][i][j]
                if kind == "xent":
                    total = total + ref_xent_term(x, c, SIZES[j])
                elif kind == "l2":
                    total = total + ref_l2_term(x, c, b[s])
                else:
                    total = total + ref_embed_term(x, c, [v for v in e[j][s].unbind(0)], sigma[s][j])
            row.append(total)
        out.append(torch.stack(row))
    return torch.stack(out)


def ref_cov(mu, y):
    """(S,): Σ_{k≠j} C_kj², C over the samples where label j is observed (all of them in dlib's case)."""
    mus, ys = scalars(mu), y.tolist()
    out = []
    for s in range(len(mus)):
        total = 0.0 * mus[s][0][0]
        k_dim = len(mus[s][0])
        for j in range(len(ys[0])):
            rows = [i for i in range(len(ys)) if ys[i][j] >= 0]
            n = len(rows)
            c_bar = sum(ys[i][j] for i in rows) / n
            for k in range(k_dim):
                if k == j:
                    continue  # tf.linalg.set_diag(covariance, zeros)
                r_bar = sum(mus[s][i][k] for i in rows) / n
                cov = sum((mus[s][i][k] - r_bar) * (ys[i][j] - c_bar) for i in rows) / n
                total = total + cov**2
        out.append(total)
    return torch.stack(out)


# ------------------------------------------------------------------ the fixed case
def make_case():
    g = torch.Generator().manual_seed(29)
    mu = (torch.randn(S, B, K, generator=g, dtype=F64) * 1.5).requires_grad_()
    scale = torch.tensor([0.8, 1.7], dtype=F64, requires_grad=True)  # a different b per seed
    embeddings = [(torch.randn(S, p, generator=g, dtype=F64)).requires_grad_() for p in SIZES]
    sigma = torch.tensor([[0.9, 1.4], [0.5, 2.2]], dtype=F64, requires_grad=True)  # (S, m), learned
    return mu, scale, embeddings, sigma


def package(kind, mu, y, scale, embeddings, sigma):
    if kind == "xent":
        return s2_xent(mu, y, label_sizes=SIZES)
    if kind == "l2":
        return s2_l2(mu, y, scale=scale)
    if kind == "embed":
        return s2_embed(mu, y, embeddings=embeddings, sigma=sigma)
    return s2_cov(mu, y)


def reference(kind, mu, y, scale, embeddings, sigma):
    if kind == "cov":
        return ref_cov(mu, y)
    return ref_per_sample(kind, mu, y, b=scalars(scale), e=embeddings, sigma=scalars(sigma))


def weighted(values):
    return (values * (WEIGHTS if values.dim() == 2 else WEIGHTS[:, 0])).sum()


@pytest.mark.parametrize("y", [Y, Y.clamp(min=0)], ids=["one-missing", "all-observed"])
@pytest.mark.parametrize("kind", S2_KINDS)
def test_each_regulariser_equals_the_reference_in_value_and_gradients(kind, y):
    # Known answer: the loop transcription of disentanglement_lib above.
    mu, scale, embeddings, sigma = make_case()
    leaves = [mu, scale, *embeddings, sigma]
    got = package(kind, mu, y, scale, embeddings, sigma)
    ref = reference(kind, mu, y, scale, embeddings, sigma)
    assert got.shape == ((S,) if kind == "cov" else (S, B))
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=0)
    g_got = torch.autograd.grad(weighted(got), leaves, allow_unused=True, materialize_grads=True)
    g_ref = torch.autograd.grad(weighted(ref), leaves, allow_unused=True, materialize_grads=True)
    for a, b in zip(g_got, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", S2_KINDS)
def test_gradients_by_gradcheck(kind):
    mu, scale, embeddings, sigma = make_case()

    def f(mu, scale, e0, e1, sigma):
        return package(kind, mu, Y, scale, [e0, e1], sigma)

    assert torch.autograd.gradcheck(f, (mu, scale, *embeddings, sigma))


def test_xent_closed_form():
    # Hand values, sigmoid(log 2) = 2/3, sigmoid(log 3) = 3/4, sigmoid(0) = 1/2:
    # sample 0, label 0: c = 2 of p = 3 → t = 2/3, μ = log 2:
    #   −(2/3) log(2/3) − (1/3) log(1/3) = log 3 − (2/3) log 2
    # sample 0, label 1: c = 1 of p = 2 → t = 1/2, μ = log 3:
    #   −½ log(3/4) − ½ log(1/4) = 2 log 2 − ½ log 3
    # sample 1: label 0 c = 0, μ = 0 → log 2 (any target at μ = 0); label 1 missing → 0.
    # The third latent is free and read by no term.
    mu = torch.tensor([[[math.log(2), math.log(3), 5.0], [0.0, 7.0, -3.0]]], dtype=F64)
    y = torch.tensor([[2, 1], [0, -1]])
    expected = torch.tensor([[0.5 * math.log(3) + (4 / 3) * math.log(2), math.log(2)]], dtype=F64)
    torch.testing.assert_close(s2_xent(mu, y, label_sizes=SIZES), expected, rtol=1e-14, atol=0)


def test_l2_and_embed_closed_forms():
    # l2, b = 2, μ = (1.5, −0.5), labels (2, 1): (3 − 2)² + (−1 − 1)² = 1 + 4 = 5.
    mu = torch.tensor([[[1.5, -0.5, 9.0]]], dtype=F64)
    y = torch.tensor([[2, 1]])
    torch.testing.assert_close(s2_l2(mu, y, scale=torch.tensor([2.0], dtype=F64)),
                               torch.tensor([[5.0]], dtype=F64), rtol=1e-15, atol=0)
    # embed, μ_0 = 0, e = (−1, 0, 1), σ = 1: logits (−1, 0, −1), label 1: log(e^{−1} + 1 + e^{−1}) − 0;
    # label 1 missing here.
    mu = torch.tensor([[[0.0, 3.0, 0.0]]], dtype=F64)
    e = [torch.tensor([[-1.0, 0.0, 1.0]], dtype=F64), torch.tensor([[0.0, 1.0]], dtype=F64)]
    got = s2_embed(mu, torch.tensor([[1, -1]]), embeddings=e, sigma=1.0)
    torch.testing.assert_close(got, torch.tensor([[math.log(1.0 + 2.0 / math.e)]], dtype=F64), rtol=1e-15, atol=0)


def test_the_batch_reductions_of_disentanglement_lib():
    # Known answers from disentanglement_lib's semi_supervised_vae_test.py (their tolerance band):
    # test_xent: representation 0 (64, 10), labels 0 (64, 5), factor sizes 1 → [221.806, 221.808]
    # (= 320 log 2, a sum over the batch); ones (64, 10) vs labels 0 (64, 10) → [840.47, 840.49].
    # Here: the sum over the batch of the per-sample values.
    got = s2_xent(torch.zeros(1, 64, 10, dtype=F64), torch.zeros(64, 5, dtype=torch.int64), label_sizes=[1] * 5)
    assert 221.806 <= float(got.sum()) <= 221.808
    got = s2_xent(torch.ones(1, 64, 10, dtype=F64), torch.zeros(64, 10, dtype=torch.int64), label_sizes=[1] * 10)
    assert 840.47 <= float(got.sum()) <= 840.49
    # test_cov_det: representation [[1, 0], [0, 1]], labels [[0, 1], [1, 0]] → [0.125, 0.126]: centred ±½,
    # C = [[−¼, ¼], [¼, −¼]], off-diagonal ¼² + ¼² = 0.125.
    got = s2_cov(torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], dtype=F64), torch.tensor([[0, 1], [1, 0]]))
    torch.testing.assert_close(got, torch.tensor([0.125], dtype=F64), rtol=1e-15, atol=0)
    # embed: tf.losses.softmax_cross_entropy averages over the batch, so dlib's value on a fully labelled
    # batch is the batch mean of the per-sample values (here the reference's per-sample terms).
    mu, scale, embeddings, sigma = make_case()
    y = Y.clamp(min=0)
    per_sample = s2_embed(mu, y, embeddings=embeddings, sigma=sigma)
    mus = scalars(mu)
    dlib = [sum(sum(ref_embed_term(mus[s][i][j], int(y[i, j]), list(embeddings[j][s].unbind(0)), sigma[s, j])
                    for i in range(B)) / B for j in range(2)) for s in range(S)]
    torch.testing.assert_close(per_sample.mean(1), torch.stack(dlib), rtol=1e-12, atol=0)


@pytest.mark.parametrize("kind", ["xent", "l2", "embed"])
def test_a_missing_label_is_its_term_dropped_by_hand(kind):
    # Known answer: the all-observed values minus, by hand, the one term of (sample 1, label 1) — in value
    # and in every gradient; and the missing entry's latent gets exactly no gradient from that label.
    mu, scale, embeddings, sigma = make_case()
    leaves = [mu, scale, *embeddings, sigma]
    full_y = Y.clone()
    full_y[1, 1] = 0
    full = package(kind, mu, full_y, scale, embeddings, sigma)
    x = mu[:, 1, 1]
    if kind == "xent":
        term = ref_xent_term(x, 0, SIZES[1])
    elif kind == "l2":
        term = ref_l2_term(x, 0, scale)
    else:
        logits = -((x[:, None] - embeddings[1]) * sigma[:, 1, None]) ** 2
        term = torch.logsumexp(logits, -1) - logits[:, 0]
    by_hand = full - torch.zeros(S, B, dtype=F64).index_put((torch.arange(S), torch.tensor([1, 1])), term)
    got = package(kind, mu, Y, scale, embeddings, sigma)
    torch.testing.assert_close(got, by_hand, rtol=1e-14, atol=1e-15)
    g_got = torch.autograd.grad(weighted(got), leaves, allow_unused=True, materialize_grads=True)
    g_hand = torch.autograd.grad(weighted(by_hand), leaves, allow_unused=True, materialize_grads=True)
    for a, b in zip(g_got, g_hand):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert (g_got[0][:, 1, 1] == 0).all()  # μ_{1,1}: only label 1 of sample 1 reads it


def test_cov_a_missing_label_uses_the_samples_that_have_it():
    # Known answer: label 1's column computed on the sub-batch without sample 1, label 0's on the whole
    # batch, each by the fully-observed formula (dlib's); value and gradients.
    mu, *_ = make_case()
    sub = [0, 2, 3]
    y0 = Y[:, :1]
    y1 = Y[sub, 1:]

    def by_hand(mu):
        # label 0 on all rows: latents 1, 2 (k ≠ 0); label 1 on rows `sub`: latents 0, 2 (k ≠ 1).
        def cov(a, c):
            c = c.to(F64)
            return ((a - a.mean(1, keepdim=True)) * (c - c.mean())).mean(1)
        return (sum(cov(mu[:, :, k], y0[:, 0]) ** 2 for k in (1, 2))
                + sum(cov(mu[:, sub, k], y1[:, 0]) ** 2 for k in (0, 2)))

    got, ref = s2_cov(mu, Y), by_hand(mu)
    torch.testing.assert_close(got, ref, rtol=1e-13, atol=0)
    torch.testing.assert_close(torch.autograd.grad(weighted(got), mu)[0], torch.autograd.grad(weighted(ref), mu)[0],
                               rtol=1e-12, atol=1e-14)


def test_predict_hand_values():
    # xent: sigmoid(log 3) = 3/4 → nearest of (0, 1/3, 2/3) is 2/3 (class 2), of (0, 1/2) is 1/2 (class 1);
    #       sigmoid(−3) ≈ 0.047 → class 0 for both.
    mu = torch.tensor([[[math.log(3), math.log(3), 0.0], [-3.0, -3.0, 0.0]]], dtype=F64)
    assert s2_predict("xent", mu, label_sizes=SIZES).tolist() == [[[2, 1], [0, 0]]]
    # l2, b = 2: 2·0.6 = 1.2 → class 1; 2·5 = 10 → the largest class (2, resp. 1); 2·(−0.2) → class 0.
    mu = torch.tensor([[[0.6, 5.0, 0.0], [5.0, -0.2, 0.0]]], dtype=F64)
    assert s2_predict("l2", mu, label_sizes=SIZES, scale=torch.tensor([2.0], dtype=F64)).tolist() == [[[1, 1], [2, 0]]]
    # embed: e_0 = (−1, 0, 1), e_1 = (0.5, −0.5): μ = (0.7, −0.4) → classes (2, 1).
    e = [torch.tensor([[-1.0, 0.0, 1.0]], dtype=F64), torch.tensor([[0.5, -0.5]], dtype=F64)]
    mu = torch.tensor([[[0.7, -0.4, 0.0]]], dtype=F64)
    assert s2_predict("embed", mu, label_sizes=SIZES, embeddings=e).tolist() == [[[2, 1]]]
    with pytest.raises(ValueError, match="no label predictor"):
        s2_predict("cov", mu, label_sizes=SIZES)
    with pytest.raises(ValueError, match="expected one of"):
        s2_predict("mse", mu, label_sizes=SIZES)
