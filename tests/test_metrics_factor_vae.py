"""Known-answer tests for the FactorVAE score (Kim & Mnih 2018; disentanglement_lib factor_vae.py)."""
import numpy as np
import pytest

from welavae.data import polar_factors
from welavae.metrics import factor_vae_score

# 8 × 8 grid of two discrete factors, each cell 16 times: (1024, 2).
G8 = np.repeat(np.stack(np.meshgrid(np.arange(8), np.arange(8), indexing="ij"), -1).reshape(-1, 2), 16, 0)
FAST = dict(num_train=1000, num_eval=2000, num_variance_estimate=2000)


def _lookup(mu):
    """encode for stored means: images are sample indices."""
    return lambda idx: mu[idx]


def test_perfect_code_scores_one():
    # Fixing c_k makes latent k constant within the batch (variance 0) while the
    # other latent keeps its spread: every vote is (k, k) → accuracy 1.
    mu = G8 + np.random.default_rng(0).uniform(-0.3, 0.3, size=G8.shape)
    res = factor_vae_score(_lookup(mu), np.arange(len(G8)), G8, **FAST)
    assert res.train_accuracy == 1.0 and res.eval_accuracy == 1.0
    assert res.num_active_dims == 2
    assert res.votes_train.sum() == 1000 and res.votes_eval.sum() == 2000
    assert np.all(res.votes_train == np.diag(np.diag(res.votes_train)))


def test_real_images_and_an_encoder():
    # One-hot 8 × 8 "images" with the pixel at (c1, c2); the encoder reads the position back.
    images = np.zeros((len(G8), 8, 8), dtype=np.float32)
    images[np.arange(len(G8)), G8[:, 0], G8[:, 1]] = 1.0

    def encode(x):  # (n, 8, 8) → (n, 2) position
        flat = x.reshape(len(x), -1).argmax(1)
        return np.stack([flat // 8, flat % 8], 1).astype(float)

    res = factor_vae_score(encode, images, G8, **FAST)
    assert res.eval_accuracy == 1.0


@pytest.mark.parametrize("num_factors", [2, 3])
def test_pure_noise_scores_one_over_the_number_of_factors(num_factors):
    # An encoder whose output ignores the image: the argmin latent of an evaluation
    # vote is independent of the chosen factor, so any classifier is right with
    # probability exactly 1/F (binomial sd over 2000 votes ≤ 0.012).  (Noise *stored*
    # per image on a small data set is not pure noise: the few images sharing a
    # value have a fixed variance pattern the classifier can learn.)
    axes = np.meshgrid(*[np.arange(4)] * num_factors, indexing="ij")
    factors = np.repeat(np.stack(axes, -1).reshape(-1, num_factors), 8, 0)
    rng = np.random.default_rng(1)
    res = factor_vae_score(lambda idx: rng.normal(size=(len(idx), 3)), np.arange(len(factors)), factors,
                           **FAST)
    assert res.eval_accuracy == pytest.approx(1 / num_factors, abs=0.04)


def test_every_batch_shares_the_fixed_factor_value_of_the_data_set():
    # The sampler draws images whose *data-set* factor equals the chosen value.
    seen = []

    def encode(idx):
        seen.append(np.array(idx))
        return np.random.default_rng(len(seen)).normal(size=(len(idx), 2))

    factor_vae_score(encode, np.arange(len(G8)), G8, batch_size=16, num_train=50, num_eval=10,
                     num_variance_estimate=100)
    batches = np.concatenate(seen[1:]).reshape(-1, 16)  # seen[0] is the variance estimate
    assert len(batches) == 60
    fixed = [(G8[b, 0] == G8[b[0], 0]).all() or (G8[b, 1] == G8[b[0], 1]).all() for b in batches]
    assert all(fixed)


def test_collapsed_latents_are_pruned():
    # disentanglement_lib prunes latents with std < 0.05 (prune_dims.threshold = 0.05).
    rng = np.random.default_rng(2)
    mu = np.concatenate([G8 + rng.uniform(-0.3, 0.3, size=G8.shape),
                         1e-3 * rng.normal(size=(len(G8), 1)), np.full((len(G8), 1), 4.0)], 1)
    res = factor_vae_score(_lookup(mu), np.arange(len(G8)), G8, **FAST)
    np.testing.assert_array_equal(res.active, [True, True, False, False])
    assert res.eval_accuracy == 1.0 and res.params()["num_active_dims"] == 2
    dead = factor_vae_score(_lookup(np.zeros((len(G8), 3))), np.arange(len(G8)), G8, **FAST)
    assert dead.train_accuracy == dead.eval_accuracy == 0.0 and dead.num_active_dims == 0


def test_seeded():
    noise = np.random.default_rng(3).normal(size=(len(G8), 3))
    a = factor_vae_score(_lookup(noise), np.arange(len(G8)), G8, seed=4, **FAST)
    b = factor_vae_score(_lookup(noise), np.arange(len(G8)), G8, seed=4, **FAST)
    c = factor_vae_score(_lookup(noise), np.arange(len(G8)), G8, seed=5, **FAST)
    np.testing.assert_array_equal(a.votes_eval, b.votes_eval)
    assert not np.array_equal(a.votes_eval, c.votes_eval)


def test_bad_input_gets_a_clear_error():
    mu = G8.astype(float)
    with pytest.raises(ValueError, match="continuous"):
        factor_vae_score(_lookup(mu), np.arange(len(G8)), polar_factors(G8.astype(float)))
    with pytest.raises(ValueError, match="must match"):
        factor_vae_score(_lookup(mu), np.arange(10), G8)
    with pytest.raises(ValueError, match=r"\(n, K\)"):
        factor_vae_score(lambda idx: mu[idx][:, 0], np.arange(len(G8)), G8)
    with pytest.raises(ValueError, match="batch_size"):
        factor_vae_score(_lookup(mu), np.arange(len(G8)), G8, batch_size=1)
