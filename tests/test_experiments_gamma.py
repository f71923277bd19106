"""welavae.experiments.gamma: the plan as known values, and the preset end to end on tiny settings."""
import csv

import pytest
from plans import resolved

from welavae.experiments import gamma
from welavae.experiments.plan import blobs_plan
from welavae.experiments.store import ResultsStore


def test_the_plan_is_rule_tenth_and_auto_for_every_p_beside_tcvae():
    plan = {s.model: s.config for s in resolved(blobs_plan(gamma.SETTINGS))}
    assert len(plan) == 1 + 7 * 3 and next(iter(plan)) == "tcvae"
    assert plan["wela_p3-rule"].objective.gamma == 1500 and plan["wela_p3-rule"].objective.gamma_target is None
    assert plan["wela_p3-tenth"].objective.gamma == pytest.approx(150)
    assert plan["wela_p8-tenth"].objective.gamma == pytest.approx(50)
    auto = plan["wela_p5-auto"].objective
    assert auto.gamma_target is not None and auto.gamma == 800  # auto starts at the rule
    for c in plan.values():  # the table preset's data, network and optimiser
        assert (c.model.hidden, c.train.batch_size, c.train.epochs, c.train.lr, c.data.shape) == \
            ((64, 32), 256, 150, 1e-3, "disk")
    assert {len(s.seeds) for s in blobs_plan(gamma.SETTINGS)} == {16}


def test_the_preset_end_to_end_on_tiny_settings(tmp_path):
    out = tmp_path / "out"
    gamma.run(out, seeds=2, epochs=2, models=["wela_p2-tenth", "wela_p2-auto"], data_dir=tmp_path / "cache",
              progress=False, standard="none")
    rows = {r["model"]: r for r in csv.DictReader(open(out / "gamma.csv"))}
    assert set(rows) == {"wela_p2-tenth", "wela_p2-auto"}
    with ResultsStore(out / "results.sqlite") as store:
        auto = [r for r in store.rows("wela_p2-auto")]
        tenth = [r for r in store.rows("wela_p2-tenth")]
    assert float(rows["wela_p2-auto"]["polar_lowest"]) == pytest.approx(min(r["polar_mse"] for r in auto))
    assert [r["gamma"] for r in tenth] == [200.0, 200.0]  # a fixed γ is its value
    final = sorted(r["gamma"] for r in auto)
    assert float(rows["wela_p2-auto"]["gamma_final_min"]) == pytest.approx(final[0])
    curves = gamma.gamma_curves(out, "wela_p2-auto")
    assert sorted(curves) == [0, 1] and [c[-1] for c in curves.values()] == pytest.approx([r["gamma"] for r in auto])
    assert (out / "figures" / "gamma_by_epoch.png").stat().st_size > 0
    assert (out / "figures" / "polar_mse_by_gamma.png").stat().st_size > 0
    assert "wela_p2-auto" in (out / "gamma.md").read_text()
