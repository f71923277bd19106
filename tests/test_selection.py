"""Seed selection without ground truth: UDR, weak-label alignment, training loss.

Known answers: UDR of seeds that learned one code up to permutation and sign
is its maximum (Spearman: 1; Lasso with α = 0.1 on standardised latents:
1 − α = 0.9, the soft-threshold of a unit correlation), and 0 for independent
noise codes (Lasso) or near it (Spearman); label alignment is higher for a
code whose latent j is a monotone function of label j's coordinate than for
a rotation of that code.
"""
import json

import numpy as np
import pytest

from welavae.cli import main
from welavae.data import Dataset, make_blobs, polar_factors, weak_labels
from welavae.selection import DEFAULT_CRITERION, label_mig, label_single, rank_seeds, udr


@pytest.fixture(scope="module")
def blobs():
    b = make_blobs(1)
    return b.factors, polar_factors(b.factors), weak_labels(b.factors, 3)


def permuted_copies(code, rng, s=4):
    """s seeds: the same code with latents permuted and signs flipped, plus one closed latent (logvar 0)."""
    n, k = code.shape
    mus, lvs = [], []
    for _ in range(s):
        perm, sign = rng.permutation(k), rng.choice([-1.0, 1.0], size=k)
        mu = np.concatenate([code[:, perm] * sign, np.zeros((n, 1))], axis=1)
        lv = np.concatenate([np.full((n, k), -4.0), np.zeros((n, 1))], axis=1)  # the last latent is the prior
        mus.append(mu)
        lvs.append(lv)
    return np.stack(mus), np.stack(lvs)


def test_udr_of_one_code_up_to_permutation_and_sign_is_its_maximum(blobs):
    # The Cartesian code on the whole grid: c1 and c2 are exactly uncorrelated (also in rank),
    # so the similarity matrices are exactly permutations (Spearman 1, Lasso soft-threshold 1 − α).
    cart, _, _ = blobs
    mu, lv = permuted_copies((cart - cart.mean(0)) / cart.std(0), np.random.default_rng(0))
    assert np.allclose(udr(mu, lv, correlation="spearman", num_points=len(cart)), 1.0, atol=1e-12)
    assert np.allclose(udr(mu, lv, correlation="lasso", num_points=len(cart)), 0.9, atol=1e-6)  # 1 − α


def test_udr_of_independent_noise_codes_is_near_zero():
    rng = np.random.default_rng(1)
    mu = rng.standard_normal((4, 2000, 3))
    lv = np.full_like(mu, -4.0)
    assert np.all(udr(mu, lv, correlation="lasso") == 0.0)  # every |ρ| < α: all coefficients 0
    assert np.all(udr(mu, lv, correlation="spearman") < 0.1)


def test_label_alignment_is_highest_for_the_code_of_the_labels_coordinates(blobs):
    cart, polar, labels = blobs
    z = (polar - polar.mean(0)) / polar.std(0)
    c, s = np.cos(np.pi / 4), np.sin(np.pi / 4)
    rotated = z @ np.array([[c, -s], [s, c]])
    monotone = np.stack([np.exp(z[:, 0]), z[:, 1] ** 3], axis=1)  # monotone in φ and in d: the same code
    assert label_mig(z, labels) > 0.8 and label_mig(monotone, labels) == label_mig(z, labels)  # rank bins
    assert label_mig(rotated, labels) < label_mig(z, labels) - 0.3
    assert label_mig(cart, labels) < label_mig(z, labels) - 0.3  # the Cartesian code, for polar labels
    assert label_single(z, labels) > 0.95 and label_single(rotated, labels) < label_single(z, labels) - 0.1
    missing = labels.copy()
    missing[::2] = -1  # only observed labels count; half of them still find the code
    assert label_mig(z, missing) > 0.8


def test_rank_seeds_and_the_select_command(tmp_path, capsys):
    from welavae.config import DataConfig, TrainConfig, make_run_config
    from welavae.train.rundir import train_run

    b = make_blobs(1)
    cfg = make_run_config("wela", label_dim=2, hidden=(16, 8), data=DataConfig(variants=1),
                          train=TrainConfig(epochs=1, batch_size=64, lr=1e-3))
    train_run(cfg, [0, 1, 2], tmp_path / "run", data=Dataset(b.images, weak_labels(b.factors, 2), factors=b.factors), progress=False)
    ranked = rank_seeds(tmp_path / "run", by="loss")
    loss = ranked["scores"]["loss"]
    assert sorted(ranked["ranking"]) == [0, 1, 2]
    assert [loss[s] for s in ranked["ranking"]] == sorted(loss.values(), reverse=True)  # lowest loss first
    assert set(ranked["scores"]) >= {"label_mig", "label_single", "udr_lasso", "udr_spearman", "loss", "tc"}
    import welavae

    model = welavae.load(tmp_path / "run")
    assert model.select(by="loss")["ranking"] == ranked["ranking"]
    assert model.select()["by"] == DEFAULT_CRITERION == "label_mig"  # the default is a criterion
    assert model.select()["ranking"] == rank_seeds(tmp_path / "run", by="label_mig")["ranking"]
    assert main(["select", str(tmp_path / "run"), "--by", "udr_spearman", "--json", str(tmp_path / "s.json")]) == 0
    out = json.loads((tmp_path / "s.json").read_text())
    assert out["by"] == "udr_spearman" and len(out["ranking"]) == 3
    assert "udr_spearman" in capsys.readouterr().out
    assert main(["select", str(tmp_path / "run"), "--by", "nonsense"]) == 2
