"""welavae.experiments.presets: the presets' plans are the paper's (§4.3, Table 1); the quick one's finding.

Known answers: the paper's settings written as literals (β = 40, lr 1e-4,
batch 256, 150 epochs, 1200-1200 units, 25 variants, 50 seeds, MWS) and
Table 1's γ = 2000, 1500, 1000, 800, 750, 600, 500 for p = 2…8.
"""
import pytest
from plans import resolved

from welavae.experiments.plan import PAPER_MODELS, blobs_plan
from welavae.experiments.presets import PRESETS, reproduce


def make_plan(name, **kw):
    """A Blobs preset's plan, resolved (RunSpecs with their configs)."""
    return resolved(blobs_plan(PRESETS[name].settings, **kw))


def test_presets_match_the_paper():
    plan = make_plan("paper")
    assert [s.model for s in plan] == ["tcvae"] + [f"wela_p{p}" for p in range(2, 9)]
    gammas = [s.config.objective.gamma for s in plan[1:]]
    assert gammas == [2000, 1500, 1000, 800, 750, 600, 500]  # Table 1
    for s in plan:
        c = s.config
        assert c.objective.beta == 40 and c.train.lr == 1e-4 and c.train.batch_size == 256 and c.train.epochs == 150
        assert c.model.hidden == (1200, 1200) and c.data.variants == 25 and len(s.seeds) == 50
        assert c.model.latent_dim == (5 if s.model == "tcvae" else 2)
    quick = make_plan("quick", seeds=3, epochs=4, models=["wela_p3"])
    assert quick[0].seeds == (0, 1, 2) and quick[0].config.train.epochs == 4 and quick[0].config.model.label_dim == 3
    with pytest.raises(ValueError, match="unknown model"):
        make_plan("quick", models=["vae"])
    assert [s.model for s in make_plan("quick")] == ["tcvae", "wela_p2"]
    # The paper estimates TC with "the biased Monte-Carlo estimator proposed in β-TCVAE" (MWS, §4.3).
    assert {s.config.objective.tc_estimator for s in plan} == {"mws"}
    assert make_plan("quick")[0].config.objective.tc_estimator == "mss"
    assert make_plan("quick", tc_estimator="mws")[1].config.objective.tc_estimator == "mws"
    # table: all eight models of Table 1 on the quick preset's data and network.
    table = make_plan("table")
    assert tuple(s.model for s in table) == PAPER_MODELS == ("tcvae",) + tuple(f"wela_p{p}" for p in range(2, 9))
    assert [s.config.kind for s in table] == ["tcvae"] + ["wela"] * 7
    assert [s.config.model.label_dim for s in table] == [None, 2, 3, 4, 5, 6, 7, 8]
    q = make_plan("quick")[0].config
    for s in table:
        c = s.config
        assert (c.data, c.model.hidden, c.train.lr) == (q.data, q.model.hidden, 1e-3)
        # the paper's batch (β-TCVAE's Cartesian code needs it on this set; README)
        assert c.train.batch_size == 256 and c.train.epochs == 150
        assert c.objective.tc_estimator == "mss" and len(s.seeds) == 16


@pytest.mark.slow
def test_quick_preset_shows_the_paper_finding(tmp_path):
    # The README's main job (≈ 6 min on 2 cores): WeLa-VAE p=2 learns a polar code, β-TCVAE does not.
    rows = {r["model"]: r for r in reproduce("quick", out=tmp_path, data_dir=tmp_path / "cache", progress=False)}
    tc, wela = rows["tcvae"], rows["wela_p2"]
    assert wela["polar_lowest"] < tc["polar_lowest"] / 2
    assert tc["cartesian_lowest"] < tc["polar_lowest"]
    assert wela["acc_angle"] >= 0.99 and wela["acc_distance"] >= 0.99
