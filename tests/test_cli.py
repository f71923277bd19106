"""Command-line behaviour: --help on every verb, exit 2 with one line on bad input."""
import json
import subprocess
import sys

import numpy as np
import pytest

from welavae import __version__
from welavae.cli import main

VERBS = ["data", "train", "evaluate", "plot", "reproduce", "bench"]


def run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "welavae.cli", *args], capture_output=True, text=True, **kw)


def run_in(tmp_path, *args):
    return run(*args, cwd=tmp_path)


def test_version():
    r = run("--version")
    assert r.returncode == 0 and __version__ in r.stdout


@pytest.mark.parametrize("verb", VERBS)
def test_help(verb):
    r = run(verb, "--help")
    assert r.returncode == 0 and "usage: welavae " + verb in r.stdout


@pytest.mark.parametrize(
    "args,needle",
    [
        (["train", "--model", "wela", "--label-dim", "1", "--out", "x"], "--label-dim"),
        (["train", "--model", "nope", "--out", "x"], "invalid choice"),
        (["train", "--model", "tcvae", "--latent-dim", "0", "--out", "x"], "latent_dim"),
        (["train", "--model", "tcvae", "--batch-size", "1", "--out", "x"], "batch_size"),
        (["train", "--model", "tcvae", "--seeds", "3-1", "--out", "x"], "seeds"),
        (["data", "--variants", "0"], "integer >= 1"),
        (["data", "--label-dim", "1", "--variants", "1"], "--label-dim"),
        (["reproduce", "--models", "vae", "--out", "x"], "unknown model"),
        (["reproduce", "--address", "auto", "--out", "x"], "--address only applies"),
        (["evaluate", "/nonexistent/run"], "config.json is missing"),
        ([], "required"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, needle, tmp_path):
    if args and args[0] in ("data", "train", "reproduce"):
        args = [*args, "--data-dir", str(tmp_path / "cache")]
    r = run_in(tmp_path, *args)
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("welavae: error:") and needle in lines[-1], r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "x").exists()  # nothing half-written


def test_data_builds_cache_and_figures(tmp_path):
    out = tmp_path / "fig"
    assert main(["data", "--variants", "1", "--data-dir", str(tmp_path / "cache"), "--out", str(out), "--label-dim", "3"]) == 0
    assert (out / "samples.png").stat().st_size > 1000
    assert (out / "label_regions_p3.png").stat().st_size > 1000
    assert len(list((tmp_path / "cache").glob("blobs-*.npz"))) == 1


def test_train_writes_run_directory(tmp_path):
    out = tmp_path / "run"
    rc = main(["train", "--model", "wela", "--label-dim", "2", "--seeds", "0-1", "--epochs", "1", "--batch-size", "64",
               "--lr", "1e-3", "--hidden", "16,8", "--variants", "1", "--data-dir", str(tmp_path / "cache"), "--out", str(out)])
    assert rc == 0
    mu = np.load(out / "mu.npy")
    assert mu.shape == (2, 4096, 2) and mu.dtype == np.float32
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"]["label_dims"] == [2, 2] and cfg["objective"]["gamma"] == 2000.0
    assert (out / "checkpoints" / "last.pt").exists()
    lines = (out / "history.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,seed,loss") and len(lines) == 1 + 2
    # The same command again resumes from the finished checkpoint: nothing to train.
    assert main(["train", "--model", "wela", "--label-dim", "2", "--seeds", "0-1", "--epochs", "1", "--batch-size", "64",
                 "--lr", "1e-3", "--hidden", "16,8", "--variants", "1", "--data-dir", str(tmp_path / "cache"), "--out", str(out)]) == 0
    assert np.array_equal(np.load(out / "mu.npy"), mu)
