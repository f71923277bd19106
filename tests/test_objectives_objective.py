"""welavae.objectives.objective: the per-batch objective against closed forms and a float64 reference (issue 14).

The reference below is written from the papers, not from ``welavae.objectives``:

* WeLa-VAE (Margonis et al., §3 eqs. 3–4, §4.3): per sample
  −log p(x|z) (factorised Bernoulli) + γ Σ_j −log p(y_j|z) (categorical)
  + KL(q(z|x,y) ‖ N(0, I)), plus β·TC of the aggregate posterior.
* β-TCVAE (Chen et al. 2018, "Isolating sources of disentanglement", §4.1 and
  App. C): log q(z_i) and log q(z_ik) estimated on the minibatch with
  minibatch weighted sampling (MWS), weight 1/(N·M) on every sample, or
  minibatch stratified sampling (MSS), weight 1/N on the sample itself,
  (N − M')/(N·M') on one stratified sample and 1/M' on the other M' − 1
  (M' = M − 1 other samples of the batch; each row sums to 1).  The paper
  leaves open *which* other sample is the stratified one; like
  ``welavae/objectives/tc.py`` the reference takes the next one, (i+1) mod M.
* β-VAE (Higgins et al. 2017): the KL weighted by β.
* DIP-VAE-II (Kumar et al. 2018, eqs. 6–7): Cov_q(z) = Cov_batch[μ] + E_batch[diag σ²],
  penalty λ_od Σ_{i≠j} C_ij² + λ_d Σ_i (C_ii − 1)²; Cov_batch with the 1/M
  (population) normalisation, as in disentanglement_lib.

Every term is a batch mean per seed (``welavae/objectives/objective.py``'s
documented convention); a missing label (−1) contributes nothing, and the
label mean is still over all M samples.

The reference uses Python loops over seeds, samples, latents and pixels with
scalar torch ops only (so autograd gives its gradients without any custom
backward), and is compared with the package in value (rtol 1e-10) and in the
gradients of a per-seed weighted loss with respect to every input.
"""
import math

import pytest
import torch

from welavae.config import ObjectiveConfig
from welavae.nn.heads import linear_bernoulli_nll
from welavae.objectives.ccvae import ccvae_terms
from welavae.objectives.likelihoods import bernoulli_nll
from welavae.objectives.objective import objective_terms
from welavae.objectives.tc import log_importance_weights

S, B, K, D, H = 3, 7, 3, 20, 4  # seeds, batch, latents, pixels, hidden units of the fused head
LABEL_DIMS = (2, 3)  # two weak labels with p = 2 and p = 3 classes
N = 50  # data set size: small, so that the MSS weights 1/N, 1/M', (N−M')/(N·M') all differ
LOG_2PI = math.log(2.0 * math.pi)
F64 = torch.float64
SEED_WEIGHTS = (0.7, -1.3, 2.1)  # distinct per-seed upstream gradients: a term leaking across seeds shows


# ------------------------------------------------------------------ the reference (scalars only)
def scalars(t):
    """Nested Python lists of 0-dim tensors that keep the autograd graph."""
    return [scalars(u) for u in t.unbind(0)] if t.dim() else t


def log_density(z, m, logvar):
    """log N(z; m, σ²), σ² = exp(logvar): −log σ − ½ log 2π − (z − m)² / (2σ²)."""
    return -0.5 * logvar - 0.5 * LOG_2PI - (z - m) ** 2 / (2.0 * torch.exp(logvar))


def log_sum_exp(terms):
    """log Σ exp(t); the shift is a plain float, so it carries no gradient (and needs none)."""
    top = max(float(t.detach()) for t in terms)
    return top + torch.log(sum(torch.exp(t - top) for t in terms))


def mss_weight(i, j, m, n):
    """Chen et al. App. C (MSS) weight of sample j in the estimate of q(z_i), batch m, data set n."""
    others = m - 1
    if j == i:
        return 1.0 / n
    if j == (i + 1) % m:
        return (n - others) / (n * others)
    return 1.0 / others


def total_correlation_sample(i, z, mu, logvar, n, estimator):
    """log q(z_i) − Σ_k log q(z_ik) for one sample i of one seed; z, mu, logvar: M lists of K scalars."""
    m, k = len(mu), len(mu[0])
    if estimator == "mws":  # Chen et al. §4.1: q(z) ≈ 1/(N·M) Σ_j q(z|n_j)
        log_w = [-math.log(n * m)] * m
    else:
        log_w = [math.log(mss_weight(i, j, m, n)) for j in range(m)]
    log_q = [[log_density(z[i][d], mu[j][d], logvar[j][d]) for d in range(k)] for j in range(m)]
    joint = log_sum_exp([log_w[j] + sum(log_q[j]) for j in range(m)])
    marginals = [log_sum_exp([log_w[j] + log_q[j][d] for j in range(m)]) for d in range(k)]
    return joint - sum(marginals)


def kl_to_standard_normal(mu, logvar):
    """KL(N(μ, σ²) ‖ N(0, 1)) summed over latents: Σ_k −log σ_k + (σ_k² + μ_k²)/2 − ½."""
    return sum(-0.5 * lv + 0.5 * (torch.exp(lv) + m * m) - 0.5 for m, lv in zip(mu, logvar))


def bernoulli_nll_sample(logits, x):
    """−Σ_d [x_d log p_d + (1 − x_d) log(1 − p_d)], p = 1/(1 + e^{−l}); the logits here are moderate."""
    total = 0.0
    for l, xd in zip(logits, x):
        p = 1.0 / (1.0 + torch.exp(-l))
        total = total - (xd * torch.log(p) + (1.0 - xd) * torch.log(1.0 - p))
    return total


def categorical_nll_sample(logits, y):
    """−log softmax(l)_y = log Σ_c e^{l_c} − l_y."""
    return log_sum_exp(logits) - logits[y]


def dip_ii_penalty(mu, logvar, lambda_od, lambda_d):
    """Kumar et al. 2018 DIP-VAE-II penalty of one seed; mu, logvar: M lists of K scalars."""
    m, k = len(mu), len(mu[0])
    mean = [sum(mu[i][a] for i in range(m)) / m for a in range(k)]
    cov = [[sum((mu[i][a] - mean[a]) * (mu[i][b] - mean[b]) for i in range(m)) / m for b in range(k)] for a in range(k)]
    for a in range(k):
        cov[a][a] = cov[a][a] + sum(torch.exp(logvar[i][a]) for i in range(m)) / m
    off = sum(cov[a][b] ** 2 for a in range(k) for b in range(k) if a != b)
    diag = sum((cov[a][a] - 1.0) ** 2 for a in range(k))
    return lambda_od * off + lambda_d * diag


def head_logits(h, weight, bias):
    """The fused head's logits l_{i,d} = b_d + Σ_h h_{i,h} W_{h,d} for one seed, as scalars."""
    return [[bias[0][d] + sum(hi[u] * weight[u][d] for u in range(len(hi))) for d in range(len(bias[0]))] for hi in h]


def reference_objective(cfg, *, x, logits, mu, logvar, z, y, label_logits, n):
    """Per-seed terms (each a stacked (S,) tensor), written from the papers; see the module docstring.

    logits: per seed, per sample, D scalar image logits; label_logits: m tensors (S, M, p_j) or None.
    """
    xs, mus, lvs, zs = x.tolist(), scalars(mu), scalars(logvar), scalars(z)
    labels = [scalars(t) for t in label_logits] if label_logits is not None else None
    ys = y.tolist() if y is not None else None
    out = {name: [] for name in ("image_nll", "kl", "label_nll", "tc", "reg", "loss")}
    for s in range(len(mus)):
        m = len(mus[s])
        image = sum(bernoulli_nll_sample(logits[s][i], xs[i]) for i in range(m)) / m
        kl = sum(kl_to_standard_normal(mus[s][i], lvs[s][i]) for i in range(m)) / m
        loss = image + kl
        if labels is not None:
            label = 0.0
            for i in range(m):
                for j, label_j in enumerate(labels):
                    if ys[i][j] >= 0:  # −1 = missing: no term at all
                        label = label + categorical_nll_sample(label_j[s][i], ys[i][j])
            label = label / m
            loss = loss + cfg.gamma * label
            out["label_nll"].append(label)
        if cfg.regulariser == "tc":
            tc = sum(total_correlation_sample(i, zs[s], mus[s], lvs[s], n, cfg.tc_estimator) for i in range(m)) / m
            out["tc"].append(tc)
            reg = cfg.beta * tc  # paper eq. 4: β multiplies the TC only
        elif cfg.regulariser == "kl":
            reg = (cfg.beta - 1.0) * kl  # β-VAE: the KL weight becomes β
        elif cfg.regulariser == "dip-ii":
            reg = dip_ii_penalty(mus[s], lvs[s], cfg.dip_lambda_od, cfg.dip_lambda_d)
        else:
            reg = 0.0 * kl
        out["image_nll"].append(image)
        out["kl"].append(kl)
        out["reg"].append(reg)
        out["loss"].append(loss + reg)
    return {name: torch.stack(v) for name, v in out.items() if v}


# ------------------------------------------------------------------ random small cases
def make_case(seed, *, labels, fused, tc=True):
    """Random float64 inputs; the leaves that get gradients are returned in ``leaves``.

    labels: None (no weak labels), "full" or "partial" (some entries −1 = missing).
    fused: the image NLL through the fused head ``linear_bernoulli_nll(h, W, b, x)``
    instead of ``bernoulli_nll`` of given image logits.  tc: whether z is used (only the TC reads it).
    """
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=F64) * scale).requires_grad_()

    x = torch.rand(B, D, generator=g, dtype=F64)
    x[:, :5] = (x[:, :5] > 0.5).to(F64)  # some exactly binary pixels, as in the Blobs data
    mu, logvar = randn(S, B, K), randn(S, B, K, scale=0.5)
    # z drawn by the reparameterisation, then an independent leaf: the TC's gradient through z is
    # compared on its own, apart from its gradient through the posteriors' μ, log σ².
    eps = torch.randn(S, B, K, generator=g, dtype=F64)
    z = (mu + torch.exp(0.5 * logvar) * eps).detach().requires_grad_()
    case = dict(x=x, mu=mu, logvar=logvar, z=z, y=None, label_logits=None)
    if fused:
        case.update(h=randn(S, B, H), weight=randn(S, H, D, scale=0.5), bias=randn(S, 1, D, scale=0.5))
    else:
        case["img_logits"] = randn(S, B, D, scale=2.0)
    if labels is not None:
        case["label_logits"] = [randn(S, B, p, scale=1.5) for p in LABEL_DIMS]
        y = torch.stack([torch.randint(0, p, (B,), generator=g) for p in LABEL_DIMS], dim=1)  # (B, m)
        if labels == "partial":
            y[1, 0] = y[4, 1] = -1
            y[5] = -1  # a sample with no label at all still counts in the batch mean
        case["y"] = y
    names = ["mu", "logvar", *(["z"] if tc else []), *(["h", "weight", "bias"] if fused else ["img_logits"])]
    leaves = [case[k] for k in names] + list(case["label_logits"] or [])
    return case, leaves


def package_terms(cfg, case, **extra):
    common = dict(mu=case["mu"], logvar=case["logvar"], z=case["z"], dataset_size=N,
                  y=case["y"], label_logits=case["label_logits"], **extra)
    if "h" in case:
        nll = linear_bernoulli_nll(case["h"], case["weight"], case["bias"], case["x"])
        return objective_terms(cfg, image_nll=nll, **common)
    return objective_terms(cfg, image_nll=bernoulli_nll(case["img_logits"], case["x"]), **common)


def reference_terms(cfg, case):
    if "h" in case:
        h, w, b = scalars(case["h"]), scalars(case["weight"]), scalars(case["bias"])
        logits = [head_logits(h[s], w[s], b[s]) for s in range(S)]
    else:
        logits = scalars(case["img_logits"])
    return reference_objective(cfg, x=case["x"], logits=logits, mu=case["mu"], logvar=case["logvar"],
                               z=case["z"], y=case["y"], label_logits=case["label_logits"], n=N)


def weighted_grads(terms, leaves):
    weights = torch.tensor(SEED_WEIGHTS, dtype=F64)
    return torch.autograd.grad((weights * terms["loss"]).sum(), leaves)


CASES = {
    # name: (config, labels)
    "wela-mss": (ObjectiveConfig(regulariser="tc", beta=4.0, gamma=5.0, tc_estimator="mss"), "full"),
    "wela-mws": (ObjectiveConfig(regulariser="tc", beta=4.0, gamma=5.0, tc_estimator="mws"), "full"),
    "wela-mss-partial": (ObjectiveConfig(regulariser="tc", beta=4.0, gamma=5.0, tc_estimator="mss"), "partial"),
    "wela-mws-partial": (ObjectiveConfig(regulariser="tc", beta=4.0, gamma=5.0, tc_estimator="mws"), "partial"),
    "tcvae-mss": (ObjectiveConfig(regulariser="tc", beta=3.0, tc_estimator="mss"), None),
    "tcvae-mws": (ObjectiveConfig(regulariser="tc", beta=3.0, tc_estimator="mws"), None),
    "beta-vae": (ObjectiveConfig(regulariser="kl", beta=4.0), None),
    "dip-ii": (ObjectiveConfig(regulariser="dip-ii", dip_lambda_od=3.0, dip_lambda_d=7.0), None),
    "wela-dip-ii-partial": (ObjectiveConfig(regulariser="dip-ii", gamma=5.0, dip_lambda_od=3.0, dip_lambda_d=7.0),
                            "partial"),
    "vae-labels": (ObjectiveConfig(regulariser="none", gamma=2.0), "full"),
}


@pytest.mark.parametrize("fused", [False, True], ids=["logits", "fused-head"])
@pytest.mark.parametrize("name", list(CASES))
def test_objective_equals_the_reference_in_value_and_gradients(name, fused):
    # Known answer: the reference objective above, written from the cited papers.
    cfg, labels = CASES[name]
    case, leaves = make_case(list(CASES).index(name), labels=labels, fused=fused, tc=cfg.regulariser == "tc")
    got = package_terms(cfg, case)
    ref = reference_terms(cfg, case)
    assert set(got) == set(ref), (sorted(got), sorted(ref))
    for term, value in ref.items():
        assert got[term].shape == (S,), term
        torch.testing.assert_close(got[term], value, rtol=1e-10, atol=0, msg=term)
    for leaf, g_got, g_ref in zip(leaves, weighted_grads(got, leaves), weighted_grads(ref, leaves)):
        assert g_got.shape == leaf.shape
        torch.testing.assert_close(g_got, g_ref, rtol=1e-10, atol=1e-12)


def test_precomputed_mss_log_weights_give_the_same_objective():
    # The trainer passes log_w = log_importance_weights(B, N) once per run; same reference answer.
    cfg, labels = CASES["wela-mss"]
    case, leaves = make_case(100, labels=labels, fused=False)
    got = package_terms(cfg, case, log_w=log_importance_weights(B, N, dtype=F64))
    ref = reference_terms(cfg, case)
    torch.testing.assert_close(got["loss"], ref["loss"], rtol=1e-10, atol=0)
    for g_got, g_ref in zip(weighted_grads(got, leaves), weighted_grads(ref, leaves)):
        torch.testing.assert_close(g_got, g_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fused", [False, True], ids=["logits", "fused-head"])
def test_a_missing_label_changes_neither_the_loss_nor_any_gradient(fused):
    # Known answer: a missing label (−1) is no term of the objective (objective.py's convention),
    # so its logits are irrelevant: replacing them by anything leaves every output bit-identical,
    # and their own gradient is exactly 0.
    cfg = ObjectiveConfig(regulariser="tc", beta=4.0, gamma=5.0, tc_estimator="mss")
    case, leaves = make_case(7, labels="partial", fused=fused)
    missing = [case["y"][:, j] < 0 for j in range(len(LABEL_DIMS))]  # (B,) per label
    g = torch.Generator().manual_seed(8)
    changed = []
    for logits_j, miss in zip(case["label_logits"], missing):
        noise = torch.randn(logits_j.shape, generator=g, dtype=F64) * 40.0 + 25.0
        changed.append(torch.where(miss[None, :, None], noise, logits_j.detach()).requires_grad_())
    assert all(not torch.equal(a, b) for a, b in zip(changed, case["label_logits"]))
    other = {**case, "label_logits": changed}
    other_leaves = leaves[: len(leaves) - len(changed)] + changed

    a, b = package_terms(cfg, case), package_terms(cfg, other)
    for term in a:
        assert torch.equal(a[term], b[term]), term
    grads_a, grads_b = weighted_grads(a, leaves), weighted_grads(b, other_leaves)
    for ga, gb in zip(grads_a, grads_b):
        assert torch.equal(ga, gb)
    for grad_j, miss in zip(grads_a[-len(changed):], missing):
        assert (grad_j[:, miss] == 0).all() and (grad_j[:, ~miss] != 0).any()
    # And both equal the reference, which has no term for a missing label at all.
    torch.testing.assert_close(b["loss"], reference_terms(cfg, other)["loss"], rtol=1e-10, atol=0)


def _closed_form_batch():
    # S = 2, M = 4, D = 6 pixels, K = 2, labels with p = 2 and 3 (two entries missing).
    # Zero image logits: −log p(x|z) = D·log 2 whatever x.  Zero label logits: −log p(y_j|z) = log p_j.
    # Every μ_k = ±1 with σ² = 1: KL = ½ Σ_k (1 + 1 − 0 − 1) = K/2 = 1 per sample.
    mu = torch.tensor([1.0, -1.0]).expand(2, 4, 2)
    return dict(
        image_nll=bernoulli_nll(torch.zeros(2, 4, 6), torch.rand(4, 6, generator=torch.Generator().manual_seed(0))),
        mu=mu,
        logvar=torch.zeros(2, 4, 2),
        z=torch.randn(2, 4, 2, generator=torch.Generator().manual_seed(1)),
        y=torch.tensor([[0, 2], [1, -1], [-1, 0], [1, 1]]),
        label_logits=[torch.zeros(2, 4, 2), torch.zeros(2, 4, 3)],
        dataset_size=100,
    )


@pytest.mark.usefixtures("float64")
def test_objective_closed_form_known_answers():
    # Per-sample label NLLs: log 2 + log 3, log 2, log 3, log 2 + log 3 → batch mean over all 4 samples
    # (labelled or not, objective.py's convention) = (3 log 2 + 3 log 3)/4 = ¾ log 6.
    inp = _closed_form_batch()
    image, label = 6 * math.log(2), 0.75 * math.log(6)
    t = objective_terms(ObjectiveConfig(regulariser="none", gamma=3.0), **inp)
    for name, value in [("image_nll", image), ("label_nll", label), ("kl", 1.0), ("reg", 0.0),
                        ("loss", image + 3 * label + 1)]:
        assert t[name].shape == (2,) and torch.allclose(t[name], torch.full((2,), value), rtol=1e-14), name
    # β-VAE (Higgins et al.): loss = NLL + γ·label + β·KL with β = 4.
    t = objective_terms(ObjectiveConfig(regulariser="kl", beta=4.0, gamma=3.0), **inp)
    assert torch.allclose(t["loss"], torch.full((2,), image + 3 * label + 4.0), rtol=1e-14)
    # WeLa-VAE (paper eq. 4) with identical posteriors: TC_MWS = (K − 1)·log N = log 100 exactly, TC_MSS = 0;
    # loss = NLL + γ·label + KL + β·TC.
    t = objective_terms(ObjectiveConfig(regulariser="tc", beta=4.0, gamma=3.0, tc_estimator="mws"), **inp)
    assert torch.allclose(t["tc"], torch.full((2,), math.log(100)), rtol=1e-14)
    assert torch.allclose(t["loss"], torch.full((2,), image + 3 * label + 1 + 4 * math.log(100)), rtol=1e-14)
    t = objective_terms(ObjectiveConfig(regulariser="tc", beta=4.0, gamma=3.0, tc_estimator="mss"), **inp)
    assert torch.allclose(t["loss"], torch.full((2,), image + 3 * label + 1), rtol=1e-14)
    # β-TCVAE: no labels, no label term.
    t = objective_terms(ObjectiveConfig(regulariser="tc", beta=4.0, tc_estimator="mws"),
                        **{**inp, "y": None, "label_logits": None})
    assert "label_nll" not in t
    assert torch.allclose(t["loss"], torch.full((2,), image + 1 + 4 * math.log(100)), rtol=1e-14)


@pytest.mark.usefixtures("float64")
def test_the_peers_compose_their_own_terms():
    # S2-β-TCVAE (Locatello et al. 2020): loss = NLL + KL + β·TC + γ_sup·R_s, R_s per sample and averaged over
    # all 4 samples.  xent on μ = (1, −1): BCE(l, t) = softplus(l) − l·t with targets c/p; the observed
    # entries (0|2), (1|−), (−|0), (1|1) give 3 softplus(1) + 3 softplus(−1) + (−0 + 2/3 − 1/2 − 1/2 + 1/3)
    # = 3 log(2 + e + 1/e) (softplus(1) + softplus(−1) = log((1 + e)(1 + 1/e))), mean ¾ log(2 + e + 1/e).
    inp = {**_closed_form_batch(), "label_logits": None}
    image, xent = 6 * math.log(2), 0.75 * math.log(2 + math.e + 1 / math.e)
    cfg = ObjectiveConfig(regulariser="tc", beta=4.0, tc_estimator="mss", supervised_loss="xent", gamma_sup=5.0)
    t = objective_terms(cfg, **inp, label_params={"label_sizes": (2, 3)})
    assert torch.allclose(t["label_nll"], torch.full((2,), xent), rtol=1e-14)
    assert torch.allclose(t["loss"], torch.full((2,), image + 1 + 5 * xent), rtol=1e-14)  # TC_MSS = 0 here
    # cov is a batch statistic: μ constant over the batch has no covariance with any label.
    t = objective_terms(ObjectiveConfig(regulariser="tc", beta=4.0, supervised_loss="cov", gamma_sup=5.0), **inp,
                        label_params={})
    assert t["label_nll"].shape == (2,) and (t["label_nll"] == 0).all()
    # CCVAE (Joy et al. 2021): the negative bound replaces NLL + KL (+ labels); its batch mean per seed.
    params = {"weight": [torch.tensor([[0.0, 1.0]] * 2), torch.tensor([[0.0, 1.0, 2.0]] * 2)],
              "bias": [torch.zeros(2, 2), torch.tensor([[0.0, 1.0, 0.0]] * 2)],
              "prior_mu": [torch.tensor([[-2.0, 2.0]] * 2), torch.tensor([[-2.0, 0.0, 2.0]] * 2)],
              "prior_logvar": [torch.zeros(2, 2), torch.zeros(2, 3)]}
    draws = torch.randn(2, 5, 4, 2, generator=torch.Generator().manual_seed(2))
    t = objective_terms(ObjectiveConfig(regulariser="ccvae", beta=0.0), **inp, label_params=params, z_draws=draws)
    ref = ccvae_terms(image_nll=inp["image_nll"], mu=inp["mu"], logvar=inp["logvar"], z=inp["z"], z_draws=draws,
                      y=inp["y"], **params)
    assert set(t) == {"image_nll", "kl", "label_nll", "reg", "loss"} and (t["reg"] == 0).all()
    for name, value in (("loss", ref["loss"]), ("kl", ref["kl"]), ("label_nll", ref["classifier_nll"])):
        assert torch.equal(t[name], value.mean(1)), name
    assert torch.allclose(t["image_nll"], torch.full((2,), image), rtol=1e-14)
