"""welavae.run: the run directory's layout, Run claiming a folder for one configuration, its lock, 0.2.0 runs.

Known answers: the layout of the module docstring (file names, dtypes), a
write interrupted mid-file leaving no ``config.json`` (welavae/io.py's rule),
and a run directory written by welavae 0.2.0 (tests/data/run_0.2.0, made with
commit 4ca4b81's CLI and, for the interrupted run, its ``train_run``).
"""
import json
import os
import shutil

import numpy as np
import pytest
from fixtures import ROOT, TINY, V020, _cli, _error_line, _files, _tiny_npz

import welavae
import welavae.io
import welavae.resolve
from welavae.cli import main
from welavae.config import DataConfig, RunConfig, make_run_config
from welavae.data import load_npz
from welavae.lock import holder
from welavae.run import Run
from welavae.train.rundir import train_run


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
    (tmp_path / "config.json").write_text("{not json")  # a corrupt file is not overwritten either, and is named
    with pytest.raises(ValueError, match="config.json is truncated or not a welavae config.json"):
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
    gamma = np.array([[150.0, 120.5], [149.0, np.nan]])  # (epochs, S): γ of each epoch, none once diverged
    Run(tmp_path).write_history(history, seeds=[3, 7], terms=["loss", "kl"], gamma=gamma)
    assert (tmp_path / "history.csv").read_text().splitlines() == [
        "epoch,seed,loss,kl,gamma", "1,3,1.5,0.5,150", "1,7,2,1,120.5", "2,3,1.25,0.25,149", "2,7,,,"]
    assert Run(tmp_path).history()[3] == {"epoch": "2", "seed": "7", "loss": "", "kl": "", "gamma": ""}
    # Without γ (a model without labels) the column is there, empty.
    Run(tmp_path).write_history(history[:1], seeds=[3, 7], terms=["loss", "kl"])
    assert (tmp_path / "history.csv").read_text().splitlines()[1] == "1,3,1.5,0.5,"


def test_reading_an_unfinished_folder_names_the_missing_file(tmp_path):
    run = Run(tmp_path)
    assert not run.finished()
    with pytest.raises(ValueError, match="is not a finished run directory: config.json is missing"):
        _ = run.config
    with pytest.raises(ValueError, match="mu.npy is missing"):
        _ = run.mu
    run.write_json(Run.STATUS, {"seeds": [2, 5], "diverged_epoch": [-1, 3]})
    assert (run.seeds, run.diverged_epoch) == ([2, 5], [-1, 3])
    assert json.loads((tmp_path / "status.json").read_text())["seeds"] == [2, 5]


def test_other_seeds_into_a_finished_run_are_refused_and_touch_nothing(tmp_path):
    npz = _tiny_npz(tmp_path / "d.npz")
    out = tmp_path / "run"
    assert main(["train", "--model", "wela", "--npz", str(npz), *TINY, "--seeds", "0,1", "--out", str(out)]) == 0
    before = _files(out)
    r = _cli("train", "--model", "wela", "--npz", npz, *TINY, "--seeds", "2", "--out", out)
    line = _error_line(r.stderr)
    assert r.returncode == 2 and "already holds seeds 0,1" in line and "new --out" in line
    assert _files(out) == before
    # The same seeds again are the same run: resumed (finished), not refused.
    assert main(["train", "--model", "wela", "--npz", str(npz), *TINY, "--seeds", "0,1", "--out", str(out)]) == 0
    assert Run(out).seeds == [0, 1]


def test_a_0_2_0_run_encodes_and_resumes(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the runs name their data as tests/data/run_0.2.0/data.npz
    data = load_npz(V020 / "data.npz")
    model = welavae.load(V020 / "finished")
    mu = np.load(V020 / "finished" / "mu.npy")
    assert np.allclose(model.encode(data.images, data.labels), mu, atol=1e-6)
    assert model.decode(mu[0], seed=0).shape == (64, 16, 16)
    # The run 0.2.0 left after its first of two epochs, finished by this code, equals 0.2.0's uninterrupted run.
    run_dir = tmp_path / "interrupted"
    shutil.copytree(V020 / "interrupted", run_dir)
    cfg = RunConfig.from_json((run_dir / "config.json").read_text())
    result = train_run(cfg, [0, 1], run_dir, progress=False)
    assert result.resumed_from == 1
    # Bit for bit on the kind of CPU that wrote the pinned run (an AMD EPYC); another CPU's kernels round
    # differently (an Intel Xeon: 9e-8), so: to float rounding.
    np.testing.assert_allclose(np.load(run_dir / "mu.npy"), mu, rtol=0, atol=1e-6)


def test_run_offers_its_lock(tmp_path):
    run = Run(tmp_path / "run")
    with run.locked():
        assert holder(run.path)["pid"] == os.getpid()
    assert holder(run.path) is None


def _train(npz, out, *extra):
    return _cli("train", "--model", "wela", "--npz", npz, *TINY, *extra, "--out", out)


def test_a_finished_or_resumed_run_whose_data_changed_is_refused_and_touches_nothing(tmp_path):
    # Before: the same command on a changed d.npz exited 0, "wrote R", trained nothing and recomputed mu.npy
    # on the new images with the old weights.
    npz, out = tmp_path / "d.npz", tmp_path / "R"
    _tiny_npz(npz, seed=0)
    assert _train(npz, out).returncode == 0
    before = _files(out)
    _tiny_npz(npz, seed=1)  # other images under the same name
    r = _train(npz, out)
    assert r.returncode == 2 and _error_line(r.stderr) == (
        f"welavae: error: {out} was trained on other data: {npz} changed since the run read it; restore the "
        "file it was trained on, or train on this one into a new --out directory")
    assert _files(out) == before
    r = _cli("plot", out)  # its figures would show other images too
    assert r.returncode == 2 and "was trained on other data" in _error_line(r.stderr) and _files(out) == before
    # Resumed (killed before the end: a checkpoint, no status.json): refused alike.
    (out / "status.json").unlink()
    (out / "mu.npy").unlink()
    r = _train(npz, out)
    assert r.returncode == 2 and "was trained on other data" in _error_line(r.stderr)
    _tiny_npz(npz, seed=0)  # the file it was trained on, restored: the same command finishes the run
    assert _train(npz, out).returncode == 0 and Run(out).finished()


def test_a_run_configured_before_fingerprints_is_accepted_as_before(tmp_path, monkeypatch):
    npz, out = tmp_path / "d.npz", tmp_path / "R"
    _tiny_npz(npz, seed=0)
    argv = ["train", "--model", "wela", "--npz", str(npz), *TINY, "--out", str(out)]
    with monkeypatch.context() as m:  # as the code before fingerprints: none in config.json or the checkpoint
        m.setattr(welavae.resolve, "fingerprint", lambda data, ds: None)
        assert main(argv) == 0
    assert Run(out).config.data.fingerprint is None
    _tiny_npz(npz, seed=1)
    assert main(argv) == 0  # nothing to compare with: accepted as before, and the fingerprint is now recorded
    assert Run(out).config.data.fingerprint.startswith("npz:")


@pytest.mark.parametrize("name,content", [
    ("mu.npy", None), ("config.json", b'{"name": "wela", "da'), ("status.json", b""),
    ("config.json", b"\x89PNG\r\n\x1a\n\x00\x00"), ("mu.npy", b"\x80\x04K\x01."),  # binary; a pickle
])
def test_a_truncated_run_file_is_named_in_one_sentence(tmp_path, name, content):
    npz, out = tmp_path / "d.npz", tmp_path / "R"
    _tiny_npz(npz)
    assert _train(npz, out).returncode == 0
    path = out / name
    path.write_bytes(path.read_bytes()[:100] if content is None else content)  # mu.npy: the header and no rows
    r = _cli("evaluate", out)
    line = _error_line(r.stderr)
    assert r.returncode == 2 and f"{path} is truncated or not" in line and "allow_pickle" not in line
