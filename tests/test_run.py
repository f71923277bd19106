"""welavae/run.py: the run directory's layout, :class:`Run` claiming a folder for one
configuration, its arrays' fixed dtypes, and ``parse_seeds``.

Known answers: the layout of the module docstring (file names, dtypes), hand-written seed
lists, and a write interrupted mid-file leaving no ``config.json`` (welavae/io.py's rule).
"""
import json
import os

import numpy as np
import pytest

import welavae.io
from welavae.config import DataConfig, make_run_config
from welavae.run import Run
from welavae.train.preflight import parse_seeds


@pytest.mark.parametrize(
    "text,seeds",
    [("0-7", list(range(8))), ("0,1,5", [0, 1, 5]), ("3", [3]), ("0-2,5", [0, 1, 2, 5]), (" 4 , 2 ", [4, 2]),
     ("10-10", [10]), (7, [7])],
)
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(
    "text,why",
    [("3-1", "--seeds must look like"), ("a", "--seeds must look like"), ("", "--seeds must look like"),
     ("1.5", "--seeds must look like"), ("0-", "--seeds must look like"), ("-1", r"seeds \(--seeds\): seed -1 is outside"),
     ("0,0", r"seeds \(--seeds\) must be distinct"), ("0-2,1", r"seeds \(--seeds\) must be distinct"),
     ("0-100000", "--seeds '0-100000' names more than 100000 seeds")],
)
def test_parse_seeds_refuses_in_one_sentence(text, why):
    with pytest.raises(ValueError, match=why):
        parse_seeds(text)


def config(**kw):
    return make_run_config("wela", label_dim=2, hidden=(8,), data=DataConfig(variants=1), **kw)


def test_start_writes_config_json_that_reads_back(tmp_path):
    run = Run(tmp_path / "run")
    c = config()
    run.start(c)
    assert (tmp_path / "run" / "config.json").read_text() == c.to_json() + "\n"
    assert Run(tmp_path / "run").config == c
    run.start(c)  # the same configuration again (a resumed run): accepted, unchanged
    assert (tmp_path / "run" / "config.json").read_text() == c.to_json() + "\n"


def test_start_refuses_a_folder_holding_another_configuration(tmp_path):
    Run(tmp_path).start(config())
    before = (tmp_path / "config.json").read_bytes()
    with pytest.raises(ValueError, match="holds a run with another configuration; use a new --out directory"):
        Run(tmp_path).start(config(gamma=200))
    assert (tmp_path / "config.json").read_bytes() == before
    (tmp_path / "config.json").write_text("{not json")  # a corrupt file is not overwritten either
    with pytest.raises(ValueError, match="another configuration"):
        Run(tmp_path).start(config())
    assert (tmp_path / "config.json").read_text() == "{not json"


def test_start_interrupted_mid_write_leaves_no_config(tmp_path, monkeypatch):
    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(welavae.io.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        Run(tmp_path / "run").start(config())
    monkeypatch.undo()
    assert not (tmp_path / "run" / "config.json").exists()
    assert [p for p in os.listdir(tmp_path / "run") if p.endswith(".tmp")] == []


def test_arrays_are_written_with_the_layout_s_dtypes(tmp_path):
    run = Run(tmp_path)
    run.write_arrays(mu=np.zeros((2, 3, 2)), label_pred=np.ones((2, 3, 2)), labels=[[0, -1]] * 3,
                     observed=[[1, 0]] * 3, factors=None)
    dtypes = {n: np.load(tmp_path / f"{n}.npy").dtype for n in ("mu", "label_pred", "labels", "observed")}
    assert dtypes == {"mu": np.float32, "label_pred": np.int8, "labels": np.int64, "observed": np.bool_}
    assert not (tmp_path / "factors.npy").exists()  # None: nothing written
    assert run.array("factors") is None and run.mu.shape == (2, 3, 2)
    with pytest.raises(ValueError, match="unknown run array 'z'"):
        run.write_arrays(z=np.zeros(1))


def test_history_csv_has_an_empty_cell_after_divergence(tmp_path):
    history = np.array([[[1.5, 0.5], [2.0, 1.0]], [[1.25, 0.25], [np.nan, np.nan]]])  # (epochs, S, T)
    Run(tmp_path).write_history(history, seeds=[3, 7], terms=["loss", "kl"])
    assert (tmp_path / "history.csv").read_text().splitlines() == [
        "epoch,seed,loss,kl", "1,3,1.5,0.5", "1,7,2,1", "2,3,1.25,0.25", "2,7,,"]
    assert Run(tmp_path).history()[3] == {"epoch": "2", "seed": "7", "loss": "", "kl": ""}


def test_reading_an_unfinished_folder_names_the_missing_file(tmp_path):
    run = Run(tmp_path)
    assert not run.finished()
    with pytest.raises(ValueError, match="is not a finished run directory: config.json is missing"):
        run.config
    with pytest.raises(ValueError, match="mu.npy is missing"):
        run.mu
    run.write_json(Run.STATUS, {"seeds": [2, 5], "diverged_epoch": [-1, 3]})
    assert (run.seeds, run.diverged_epoch) == ([2, 5], [-1, 3])
    assert json.loads((tmp_path / "status.json").read_text())["seeds"] == [2, 5]
