"""welavae.experiments.analysis: seed selection tables of a sweep against hand-computed values."""
import math

import pytest

from welavae.experiments.analysis import selection_rows, selection_summary
from welavae.selection import CRITERIA


def rows(model, polar, **scores):
    out = []
    for i, p in enumerate(polar):
        r = {"model": model, "seed": 10 + i, "polar_mse": p, "cartesian_mse": 1000.0 - p}
        r.update({f"score_{c}": (scores[c][i] if c in scores else None) for c in CRITERIA})
        out.append(r)
    return out


def test_selection_rows_and_summary_known_values():
    by_model = {
        "a": rows("a", [10.0, 50.0, 30.0], loss=[1, 3, 2], kl=[3, 1, 2]),
        "b": rows("b", [100.0, 200.0, 400.0, 300.0], loss=[4, 3, 2, 1], kl=[1, 2, 3, 4]),
        "tcvae": rows("tcvae", [5.0, 900.0, 7.0], loss=[1, 2, 3]),  # no labels: not in the summary
    }
    sel = [s for m in by_model for s in selection_rows(by_model[m])]
    assert [(s["model"], s["criterion"]) for s in sel] == [("a", "loss"), ("a", "kl"), ("b", "loss"), ("b", "kl"),
                                                          ("tcvae", "loss")]
    a_loss, a_kl, b_loss, b_kl = sel[:4]
    assert (a_loss["seed"], a_loss["polar_mse"], a_loss["regret"]) == (11, 50.0, 40.0)
    assert a_loss["spearman_polar"] == pytest.approx(1.0) and a_loss["spearman_cartesian"] == pytest.approx(-1.0)
    assert (a_kl["seed"], a_kl["regret"], a_kl["spearman_polar"]) == (10, 0.0, pytest.approx(-1.0))
    # b: ranks of the score (4, 3, 2, 1) against the polar MSE (1, 2, 4, 3): Σd² = 18, ρ = 1 − 6·18/(4·15) = −0.8
    assert (b_loss["regret"], b_loss["spearman_polar"]) == (0.0, pytest.approx(-0.8))
    assert (b_kl["seed"], b_kl["regret"], b_kl["spearman_polar"]) == (13, 200.0, pytest.approx(0.8))

    summary = {r["criterion"]: r for r in selection_summary(sel, by_model, ["a", "b"])}
    assert list(summary) == ["random", "loss", "kl"]
    # a random seed's expected regret: a 30 − 10 = 20, b 250 − 100 = 150
    assert (summary["random"]["median_regret"], summary["random"]["mean_regret"]) == (85.0, 85.0)
    assert math.isnan(summary["random"]["mean_spearman"])
    loss, kl = summary["loss"], summary["kl"]
    assert (loss["models"], loss["picks_lowest"], loss["median_regret"], loss["mean_regret"]) == (2, 1, 20.0, 20.0)
    assert loss["mean_spearman"] == pytest.approx(0.1) and kl["mean_spearman"] == pytest.approx(-0.1)
    assert (kl["picks_lowest"], kl["median_regret"], kl["mean_regret"]) == (1, 100.0, 100.0)
