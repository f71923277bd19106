"""Table 1 from a results store (paper §4.4): hand-computed statistics, contract columns, determinism."""
import csv

import pytest

from welavae.experiments.report import (
    TABLE_COLUMNS,
    display_name,
    summarise,
    write_distribution_plot,
    write_tables,
)
from welavae.experiments.store import ResultsStore

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


def test_table_csv_contract_and_values(store, tmp_path):
    csv_path, _ = write_tables(summarise(store), tmp_path / "out")
    lines = csv_path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == CONTRACT
    assert lines[1:] == [
        "tcvae,40,,,5,21,105.00,152.50,107.50,1.00,10.50,1.50,,",
        "wela_p2,40,2000,2,2,6,40.00,62.00,40.00,100.00,300.00,100.00,0.910,0.990",
        "wela_p3,40,1500,3,2,2,,,,,,,,",
        "betavae,4,,,5,0,,,,,,,,",
    ]
    with open(csv_path, newline="", encoding="utf-8") as f:
        assert tuple(csv.DictReader(f).fieldnames) == TABLE_COLUMNS


def test_table_md_rows_and_caption(store, tmp_path):
    _, md_path = write_tables(summarise(store), tmp_path)
    text = md_path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0].startswith("Table 1") and "4 of 29 finished seeds diverged" in lines[0]
    assert lines[0].endswith("; 1 failed seed will be retried.")
    assert lines[2] == ("| Model | β | γ | Label dim. | Acc φ | Acc d | Polar MSE lowest | mean | best 10 % mean "
                        "| Cartesian MSE lowest | mean | best 10 % mean | seeds |")
    assert "| β-TCVAE | 40 | - | - | - | - | 105.00 | 152.50 | 107.50 | 1.00 | 10.50 | 1.50 | 21 (1 diverged) |" \
        in lines
    assert "| WeLa-VAE | 40 | 2000 | p=2 | 0.91 | 0.99 | 40.00 | 62.00 | 40.00 | 100.00 | 300.00 | 100.00 " \
           "| 6 (1 diverged) |" in lines
    assert "| WeLa-VAE | 40 | 1500 | p=3 | - | - | - | - | - | - | - | - | 2 (2 diverged) |" in lines
    assert "| β-VAE | 4 | - | - | - | - | - | - | - | - | - | - | 0 |" in lines


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
    assert display_name("tcvae") == "β-TCVAE"
    assert display_name("wela_p7") == "WeLa-VAE"
    assert display_name("betavae_p2") == "WeLa-β-VAE" and display_name("dipvae") == "DIP-VAE"
    assert display_name("custom") == "custom"


def test_distribution_plot(store, tmp_path):
    path = write_distribution_plot(store, tmp_path / "figures" / "mse_distributions.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with ResultsStore(tmp_path / "empty.sqlite") as empty:
        assert write_distribution_plot(empty, tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()
