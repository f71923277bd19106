"""Table 1 from a results store (paper §4.4): hand-computed statistics, contract columns, determinism."""
import csv

import pytest

from welavae.config import make_run_config
from welavae.experiments.report import (
    CSV_COLUMNS,
    STAT_COLUMNS,
    TABLE_COLUMNS,
    display_name,
    summarise,
    write_distribution_plot,
    write_tables,
)
from welavae.experiments.store import ResultsStore
from welavae.metrics.stats import bootstrap_mean_ci

CONTRACT = ("model,beta,gamma,label_dim,latent_dim,seeds,polar_lowest,polar_mean,polar_best10_mean,"
            "cartesian_lowest,cartesian_mean,cartesian_best10_mean,acc_angle,acc_distance")


def _row(model, seed, status="done", config_hash=None, **kw):
    return {"model": model, "seed": seed, "config_hash": config_hash or f"h-{model}", "status": status, **kw}


@pytest.fixture
def store(tmp_path):
    """Three models with hand-chosen per-seed scores (the expected statistics are worked out in each test)."""
    with ResultsStore(tmp_path / "results.sqlite") as s:
        s.register_model("tcvae", "h-tcvae", "{}", beta=40.0, gamma=None, label_dim=None, latent_dim=5,
                         regulariser="tc")
        s.register_model("wela_p2", "h-wela_p2", "{}", beta=40.0, gamma=2000.0, label_dim=2, latent_dim=2,
                         regulariser="tc")
        s.register_model("wela_p3", "h-wela_p3", "{}", beta=40.0, gamma=1500.0, label_dim=3, latent_dim=2,
                         regulariser="tc")
        s.register_model("betavae", "h-betavae", "{}", beta=4.0, gamma=None, label_dim=None, latent_dim=5,
                         regulariser="none")  # registered, nothing trained yet
        # tcvae: 20 done seeds, polar 200, 195, …, 105 and Cartesian 1, 2, …, 20; one diverged, one failed.
        s.record([_row("tcvae", i, polar_mse=200.0 - 5 * i, cartesian_mse=1.0 + i) for i in range(20)]
                 + [_row("tcvae", 20, "diverged", diverged_epoch=3),
                    _row("tcvae", 21, "failed", error="CUDA out of memory")])
        # wela_p2: 5 done seeds; seed 1 has the lowest polar MSE (40) with accuracies (0.91, 0.99).
        polar, cart = [50.0, 40.0, 90.0, 60.0, 70.0], [300.0, 200.0, 100.0, 400.0, 500.0]
        s.record([_row("wela_p2", i, polar_mse=polar[i], cartesian_mse=cart[i],
                       acc_angle=0.9 + i / 100, acc_distance=1.0 - i / 100) for i in range(5)]
                 + [_row("wela_p2", 5, "diverged", acc_angle=1.0, acc_distance=1.0),
                    # a leftover row of an older configuration must not leak into the table
                    _row("wela_p2", 6, config_hash="old", polar_mse=1.0, cartesian_mse=1.0)])
        # wela_p3: every seed diverged.
        s.record([_row("wela_p3", i, "diverged", diverged_epoch=1) for i in range(2)])
        yield s


def test_summarise_known_answers(store):
    t = summarise(store)
    assert [r["model"] for r in t] == ["tcvae", "wela_p2", "wela_p3", "betavae"]  # registration order
    assert all(tuple(r)[: len(TABLE_COLUMNS)] == TABLE_COLUMNS for r in t)  # contract keys first, in order
    tc, p2, p3, bv = t
    # tcvae: seeds = 20 done + 1 diverged (failed not counted); mean of 200…105 = (200 + 105)/2;
    # best 10 % of 20 = ceil(2.0) = 2 seeds: (105 + 110)/2; Cartesian 1…20: mean 10.5, best two (1 + 2)/2.
    assert tc["seeds"] == 21 and tc["diverged"] == 1 and tc["failed"] == 1 and tc["best_k"] == 2
    assert tc["polar_lowest"] == 105.0 and tc["polar_mean"] == pytest.approx(152.5)
    assert tc["polar_best10_mean"] == pytest.approx(107.5)
    assert tc["cartesian_lowest"] == 1.0 and tc["cartesian_mean"] == pytest.approx(10.5)
    assert tc["cartesian_best10_mean"] == pytest.approx(1.5)
    assert tc["best_seed"] == 19 and tc["acc_angle"] is None and tc["acc_distance"] is None  # no labels
    assert tc["gamma"] is None and tc["label_dim"] is None and tc["beta"] == 40.0 and tc["latent_dim"] == 5
    # wela_p2: polar 50, 40, 90, 60, 70 → lowest 40 (seed 1), mean 310/5 = 62, best ceil(0.5) = 1 seed → 40;
    # Cartesian 300, 200, 100, 400, 500 → 100, 300, 100.  Accuracies of seed 1, not of the diverged seed 5.
    assert p2["seeds"] == 6 and p2["diverged"] == 1 and p2["best_seed"] == 1
    assert (p2["polar_lowest"], p2["polar_mean"], p2["polar_best10_mean"]) == pytest.approx((40, 62, 40))
    assert (p2["cartesian_lowest"], p2["cartesian_mean"], p2["cartesian_best10_mean"]) == \
        pytest.approx((100, 300, 100))
    assert p2["acc_angle"] == pytest.approx(0.91) and p2["acc_distance"] == pytest.approx(0.99)
    # wela_p3: all diverged → counted, every statistic empty.
    assert p3["seeds"] == 2 and p3["diverged"] == 2 and p3["best_seed"] is None
    assert all(p3[c] is None for c in TABLE_COLUMNS[6:])
    assert bv["seeds"] == 0 and bv["polar_lowest"] is None
    # Beyond the paper.  tcvae: medians of 105…200 and 1…20 are (150 + 155)/2 and (10 + 11)/2; no seed's
    # polar MSE is below 100 (0/21, the diverged seed counts as a failure), every Cartesian one is (20/21).
    assert (tc["polar_median"], tc["cartesian_median"]) == (152.5, 10.5)
    assert tc["polar_success_rate"] == 0.0 and tc["cartesian_success_rate"] == pytest.approx(20 / 21)
    assert (tc["polar_mean_ci_low"], tc["polar_mean_ci_high"]) == \
        pytest.approx(bootstrap_mean_ci([200.0 - 5 * i for i in range(20)]))
    assert tc["polar_mean_ci_low"] < tc["polar_mean"] < tc["polar_mean_ci_high"]
    assert tc["error"] == "CUDA out of memory" and p2["error"] is None
    # wela_p2: median of 40…90 is 60; 5 of 6 finished seeds below 100 in polar, none in Cartesian (100 is not < 100).
    assert p2["polar_median"] == 60.0 and p2["polar_success_rate"] == pytest.approx(5 / 6)
    assert p2["cartesian_success_rate"] == 0.0
    # wela_p3: no finite MSE → no median or interval; 0 of 2 seeds succeeded.
    assert p3["polar_median"] is None and p3["polar_mean_ci_low"] is None and p3["polar_success_rate"] == 0.0
    assert bv["polar_success_rate"] is None and bv["failed"] == 0
    assert [r["name"] for r in t] == ["β-TCVAE", "WeLa-VAE", "WeLa-VAE", "β-VAE"]  # "{}" configs: from the keys


def test_table_csv_contract_and_values(store, tmp_path):
    csv_path, _ = write_tables(summarise(store), tmp_path / "out")
    lines = csv_path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == CONTRACT + "," + ",".join(STAT_COLUMNS)  # the contract first, in its order
    assert STAT_COLUMNS == (
        "polar_median", "polar_mean_ci_low", "polar_mean_ci_high", "polar_success_rate",
        "cartesian_median", "cartesian_mean_ci_low", "cartesian_mean_ci_high", "cartesian_success_rate",
        "diverged", "failed", "gamma_final_median", "gamma_final_min", "gamma_final_max")

    def ci(values):  # the interval's cells: the same seeded bootstrap over the done seeds
        return ",".join(f"{x:.2f}" for x in bootstrap_mean_ci(values))

    tc_polar, tc_cart = ci([200.0 - 5 * i for i in range(20)]), ci([1.0 + i for i in range(20)])
    p2_polar, p2_cart = ci([50.0, 40.0, 90.0, 60.0, 70.0]), ci([300.0, 200.0, 100.0, 400.0, 500.0])
    assert lines[1:] == [
        f"tcvae,40,,,5,21,105.00,152.50,107.50,1.00,10.50,1.50,,,152.50,{tc_polar},0.000,10.50,{tc_cart},0.952,1,1,,,",  # no γ recorded: empty final-γ cells
        f"wela_p2,40,2000,2,2,6,40.00,62.00,40.00,100.00,300.00,100.00,0.910,0.990,"
        f"60.00,{p2_polar},0.833,300.00,{p2_cart},0.000,1,0,,,",
        "wela_p3,40,1500,3,2,2,,,,,,,,,,,,0.000,,,,0.000,2,0,,,",
        "betavae,4,,,5,0,,,,,,,,,,,,,,,,,0,0,,,",
    ]
    with open(csv_path, newline="", encoding="utf-8") as f:
        assert tuple(csv.DictReader(f).fieldnames) == CSV_COLUMNS == TABLE_COLUMNS + STAT_COLUMNS


def test_table_md_rows_and_caption(store, tmp_path):
    _, md_path = write_tables(summarise(store), tmp_path)
    text = md_path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0].startswith("Table 1") and "4 of 29 finished seeds diverged" in lines[0]
    assert "; 1 failed seed will be retried." in lines[0] and "MSE < 100" in lines[0]
    assert lines[2] == ("| Model | β | γ | Label dim. | Acc φ | Acc d | Polar MSE lowest | mean | best 10 % mean "
                        "| Cartesian MSE lowest | mean | best 10 % mean | seeds "
                        "| Polar median | 95 % CI of mean | < 100 | Cartesian median | 95 % CI of mean | < 100 |")
    lo, hi = bootstrap_mean_ci([50.0, 40.0, 90.0, 60.0, 70.0])
    assert "| β-TCVAE | 40 | - | - | - | - | 105.00 | 152.50 | 107.50 | 1.00 | 10.50 | 1.50 " \
           "| 21 (1 diverged, 1 failed) | 152.50 |" in text
    assert f"| WeLa-VAE | 40 | 2000 | p=2 | 0.91 | 0.99 | 40.00 | 62.00 | 40.00 | 100.00 | 300.00 | 100.00 " \
           f"| 6 (1 diverged) | 60.00 | [{lo:.2f}, {hi:.2f}] | 5/6 | 300.00 |" in text
    assert "| WeLa-VAE | 40 | 1500 | p=3 | - | - | - | - | - | - | - | - | 2 (2 diverged) " \
           "| - | - | 0/2 | - | - | 0/2 |" in lines
    assert "| β-VAE | 4 | - | - | - | - | - | - | - | - | - | - | 0 | - | - | - | - | - | - |" in lines
    # The failed model is named under the table with its error.
    assert lines[-1] == "- **tcvae failed** (1 seed): CUDA out of memory; run the same command again to retry."


def test_writing_twice_gives_identical_bytes(store, tmp_path):
    rows = summarise(store)
    a, b = tmp_path / "a", tmp_path / "b"
    write_tables(rows, a)
    write_tables(summarise(store), b)
    write_tables(rows, a)  # overwrite in place
    for name in ("table.csv", "table.md"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert sorted(p.name for p in a.iterdir()) == ["table.csv", "table.md"]  # no temporary files left


def test_display_names():
    # From the key (welavae.models.parse_key) when no config is registered.
    assert display_name("tcvae") == "β-TCVAE"
    assert display_name("wela_p7") == "WeLa-VAE"
    assert display_name("betavae_p2") == "WeLa-β-VAE" and display_name("dipvae") == "DIP-VAE"
    assert display_name("custom") == "custom" and display_name("custom", "{}") == "custom"
    # From the registered config: its kind and whether it has labels, whatever the key.
    assert display_name("mine", make_run_config("betavae", label_dim=3).to_json()) == "WeLa-β-VAE"
    assert display_name("betavae_p2", make_run_config("betavae").to_json()) == "β-VAE"
    assert display_name("x", make_run_config("wela", label_dims=(3, 5)).to_json()) == "WeLa-VAE"


def test_summarise_names_rows_from_the_registered_config(tmp_path):
    with ResultsStore(tmp_path / "r.sqlite") as s:
        s.register_model("labelled_baseline", "h", make_run_config("dipvae", label_dim=2).to_json(), beta=0.0,
                         gamma=2000.0, label_dim=2, latent_dim=5, regulariser="dip-ii")
        assert summarise(s)[0]["name"] == "WeLa-DIP-VAE"


def test_distribution_plot(store, tmp_path):
    path = write_distribution_plot(store, tmp_path / "figures" / "mse_distributions.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with ResultsStore(tmp_path / "empty.sqlite") as empty:
        assert write_distribution_plot(empty, tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()
