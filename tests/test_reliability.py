"""Reliability probes on tiny data (issue 20): two commands on one folder, refusals that write nothing,
OS errors and signals as one sentence, and inputs that used to be accepted wrongly.

Every probe here failed before the change it guards.  Known answers: the exit
status (0 done, 1 failed during work, 2 refused, 143 SIGTERM), the files on
disk before and after (byte for byte), and SQLite's own integrity check.
"""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from welavae.cli import main
LOCK_NAME = ".welavae.lock"  # welavae.lock.LOCK_NAME (a literal: these probes also ran on the code before it)
from welavae.run import Run

REPO = Path(__file__).resolve().parents[1]
TINY = ["--hidden", "16", "--latent-dim", "2", "--batch-size", "16", "--epochs", "1"]


def _env():
    return dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "welavae.cli", *map(str, args)], capture_output=True, text=True,
                          env=_env(), **kw)


def _tiny_npz(path, n=64, size=8, seed=0):
    """n random 8×8 images in [0, 1] with two weak labels of 3 and 2 classes."""
    rng = np.random.default_rng(seed)
    labels = np.stack([np.arange(n) % 3, np.arange(n) % 2], axis=1)
    np.savez(path, images=rng.random((n, size, size)).astype(np.float32), labels=labels)
    return path


def _error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines and "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("welavae: error:"), err
    return lines[0]


def _files(d: Path) -> dict:
    """Every file under d (but the lock) → its bytes."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file() and p.name != LOCK_NAME}


def _wait_for(path: Path, proc, timeout=300.0):
    t = time.monotonic()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t < timeout, f"{path} never appeared"
        time.sleep(0.02)


# ---------------------------------------------------------------- locks ---

# A training process that holds its run directory while blocked after epoch 1, until RELEASE exists.
_BLOCKED_TRAIN = """
import sys, time
from pathlib import Path
from welavae.config import DataConfig, TrainConfig, make_run_config
from welavae.data.npz import load_npz
from welavae.train.rundir import train_run
npz, out, release = sys.argv[1:]
ds = load_npz(npz)
cfg = make_run_config("wela", label_dims=ds.label_dims, image_shape=ds.image_shape, hidden=(16,), latent_dim=2,
                      label_names=ds.label_names, label_classes=ds.label_classes,  # as `welavae train` resolves it
                      data=DataConfig(source="npz", path=npz),
                      train=TrainConfig(epochs=2, batch_size=16, checkpoint_every=2))
def wait(epoch, means):
    while not Path(release).exists():
        time.sleep(0.02)
train_run(cfg, [0], out, data=ds, on_epoch=wait)
"""


def test_concurrent_train_into_one_folder_refuses_the_second_and_keeps_the_first(tmp_path, capsys):
    npz = _tiny_npz(tmp_path / "d.npz")
    out, release = tmp_path / "run", tmp_path / "release"
    first = subprocess.Popen([sys.executable, "-c", _BLOCKED_TRAIN, npz, out, release], env=_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(out / "config.json", first)
        # The same configuration, another seed, from this process while the first trains.
        code = main(["train", "--model", "wela", "--npz", str(npz), *TINY[:-2], "--epochs", "2",
                     "--checkpoint-every", "2", "--seeds", "1", "--out", str(out)])
        line = _error_line(capsys.readouterr().err)
        assert code == 2 and f"PID {first.pid}" in line, line
    finally:
        release.touch()
        _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    run = Run(out)
    assert run.seeds == [0] and run.mu.shape == (1, 64, 2)  # the first run's seeds, whole
    assert not (out / LOCK_NAME).exists()


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


def test_two_stores_opened_at_once_on_a_new_file_both_open(tmp_path):
    """The second open used to read the schema version before BEGIN IMMEDIATE, saw 0 while the first
    was creating the tables, then tried to create them again: 'not a readable results database'."""
    from welavae.experiments import store as store_mod

    path = tmp_path / "results.sqlite"
    first = sqlite3.connect(str(path), isolation_level=None)
    first.execute("PRAGMA journal_mode=WAL")
    first.execute("BEGIN IMMEDIATE")  # the first store, half way through creating its schema
    for statement in store_mod._SCHEMA.split(";"):
        if statement.strip():
            first.execute(statement)
    first.execute(f"PRAGMA user_version={store_mod.SCHEMA_VERSION}")
    outcome = {}

    def open_second():
        try:
            with store_mod.ResultsStore(path) as s:
                outcome["models"] = s.models()
        except Exception as e:  # noqa: BLE001 - reported below
            outcome["error"] = e

    t = threading.Thread(target=open_second)
    t.start()
    time.sleep(0.5)  # the second is waiting (busy timeout) or has already read the schema
    first.execute("COMMIT")
    first.close()
    t.join(60)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["models"] == []
    check = sqlite3.connect(str(path))
    assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    check.close()


# A sweep that holds its results folder while blocked before recording its first result, until RELEASE exists.
_BLOCKED_SWEEP = """
import sys, time
from pathlib import Path
from welavae.experiments import store, sweep
sys.path.insert(0, sys.argv[4])
from test_reliability import tiny_plan
out, data_dir, release = sys.argv[1:4]
record = store.ResultsStore.record
def blocked(self, rows):
    while not Path(release).exists():
        time.sleep(0.02)
    return record(self, rows)
store.ResultsStore.record = blocked
sweep.run_plan(tiny_plan(), out=out, data_dir=data_dir, progress=False, standard="none")
"""


def tiny_plan():
    """β-TCVAE, one seed, one epoch, on 16×16 Blobs (N = 256)."""
    from welavae.config import DataConfig, TrainConfig
    from welavae.experiments.plan import ModelSpec

    return [ModelSpec("tcvae", "tcvae", DataConfig(variants=1, size=16, shape="disk"), (0,),
                      hyper=dict(hidden=(16,), train=TrainConfig(epochs=1, batch_size=32, lr=1e-3, checkpoint_every=1)))]


def test_concurrent_reproduce_on_one_folder_refuses_the_second_and_loses_nothing(tmp_path):
    from welavae.experiments import sweep

    out, data_dir, release = tmp_path / "results", tmp_path / "cache", tmp_path / "release"
    first = subprocess.Popen([sys.executable, "-c", _BLOCKED_SWEEP, out, data_dir, release, Path(__file__).parent],
                             env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(out / "runs" / "tcvae" / "chunks", first)  # the first sweep is training or recording
        with pytest.raises(ValueError, match=f"in use by PID {first.pid}"):
            sweep.run_plan(tiny_plan(), out=out, data_dir=data_dir, progress=False, standard="none")
    finally:
        release.touch()
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    db = sqlite3.connect(str(out / "results.sqlite"))
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert db.execute("SELECT model, seed, status FROM results").fetchall() == [("tcvae", 0, "done")]
    db.close()
    assert (out / "table.csv").exists() and not (out / LOCK_NAME).exists()


def test_a_sweep_job_with_a_corrupt_checkpoint_says_which_file_to_delete(tmp_path):
    from welavae.experiments import sweep
    from welavae.experiments.sweepdir import SweepDir
    from welavae.experiments.store import ResultsStore

    out = tmp_path / "results"
    ckpt = SweepDir(out).chunk("tcvae", [0]) / "checkpoints" / "last.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(sweep.SweepFailed) as e:
        sweep.run_plan(tiny_plan(), out=out, data_dir=tmp_path / "cache", progress=False, standard="none")
    assert f"delete {ckpt}" in str(e.value)
    with ResultsStore(out / "results.sqlite") as store:
        (row,) = store.rows("tcvae")
    assert row["status"] == "failed" and f"delete {ckpt} and run the same command again" in row["error"].splitlines()[0]
    ckpt.unlink()  # as the message says: the retry trains the chunk and succeeds
    sweep.run_plan(tiny_plan(), out=out, data_dir=tmp_path / "cache", progress=False, standard="none")


# ------------------------------------------------- refusals write nothing ---

def test_refusals_leave_no_folder_and_the_corrected_command_runs(tmp_path, capsys):
    npz = _tiny_npz(tmp_path / "d.npz")
    out = tmp_path / "run"
    base = ["train", "--model", "wela", "--npz", str(npz), *TINY, "--out", str(out)]
    refused = [
        (["--batch-size", "128"], "--batch-size"),  # N = 64
        (["--label-fraction", "0.001"], "--label-fraction"),  # round(0.064) = 0 labels left
        (["--seeds", "99999999999999999999"], "--seeds"),  # > 2**64
        (["--device", "tpu9"], "--device"),
        (["--gamma", "nan"], "gamma"),
        (["--beta", "inf"], "beta"),
        (["--lr", "inf"], "lr"),
        (["--epochs", "0"], "epochs"),
        (["--latent-dim", "1"], "K >= m"),  # two weak labels, the dense head
        (["--npz", str(tmp_path / "missing.npz")], "missing.npz"),
    ]
    for extra, needle in refused:
        code = main(base + extra)
        line = _error_line(capsys.readouterr().err)
        assert code == 2 and needle in line, (extra, line)
        assert not out.exists(), (extra, sorted(p.name for p in out.iterdir()))
    assert main(base) == 0  # not blocked by anything a refusal left
    assert Run(out).finished()


def test_an_existing_file_as_out_is_one_sentence(tmp_path, capsys):
    npz = _tiny_npz(tmp_path / "d.npz")
    f = tmp_path / "taken"
    f.write_text("mine")
    code = main(["train", "--model", "wela", "--npz", str(npz), *TINY, "--out", str(f)])
    line = _error_line(capsys.readouterr().err)
    assert code == 2 and str(f) in line and f.read_text() == "mine"


@pytest.mark.parametrize("err", [
    PermissionError(13, "Permission denied", "/r/run/config.json"),
    OSError(30, "Read-only file system", "/r/run/config.json"),
    OSError(28, "No space left on device", "/r/run/config.json"),
    FileExistsError(17, "File exists", "/r/run/config.json"),
    IsADirectoryError(21, "Is a directory", "/r/run/config.json"),
    NotADirectoryError(20, "Not a directory", "/r/run/config.json"),
])
def test_os_errors_are_one_sentence_with_the_path_and_exit_2(err, monkeypatch, capsys):
    import welavae.cli as cli

    def fail(args):
        raise err

    monkeypatch.setattr(cli, "_cmd_select", fail)  # any verb: the boundary is main()'s
    code = main(["select", "somewhere"])
    line = _error_line(capsys.readouterr().err)
    assert code == 2 and "/r/run/config.json" in line


def _mount_tmpfs(d: Path, options: str):
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(d)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or 'not root'}): needs root and mount rights")


def test_a_read_only_file_system_is_one_sentence(tmp_path, capsys):
    npz = _tiny_npz(tmp_path / "d.npz")
    ro = tmp_path / "ro"
    _mount_tmpfs(ro, "size=1m,ro")
    try:
        code = main(["train", "--model", "wela", "--npz", str(npz), *TINY, "--out", str(ro / "run")])
        line = _error_line(capsys.readouterr().err)
        assert code == 2 and "read-only" in line and str(ro / "run") in line
    finally:
        subprocess.run(["umount", str(ro)])


def test_a_full_disk_is_one_sentence_and_the_run_resumes(tmp_path, capsys):
    npz = _tiny_npz(tmp_path / "d.npz")
    args = ["train", "--model", "wela", "--npz", str(npz), "--hidden", "256", "--latent-dim", "2",
            "--batch-size", "16", "--epochs", "2", "--checkpoint-every", "1"]
    assert main(args + ["--out", str(tmp_path / "ref")]) == 0
    ckpt = (tmp_path / "ref" / "checkpoints" / "last.pt").stat().st_size  # about 0.8 MB
    fs = tmp_path / "fs"
    _mount_tmpfs(fs, "size=4m")
    try:
        # Leave room for the first checkpoint and the small files, not for a second checkpoint beside it.
        st = os.statvfs(fs)
        (fs / "filler").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - int(1.5 * ckpt) - 64 * 1024))
        out = fs / "run"
        code = main(args + ["--out", str(out)])
        line = _error_line(capsys.readouterr().err)
        assert code == 1 and "no space left" in line and str(out / "checkpoints" / "last.pt") in line, line
        from welavae.checkpoint import load_checkpoint

        assert load_checkpoint(out / "checkpoints" / "last.pt")["epoch"] == 1  # the last checkpoint is whole
        assert not (out / LOCK_NAME).exists() and not [p for p in out.rglob("*.tmp")]
        (fs / "filler").unlink()
        assert main(args + ["--out", str(out)]) == 0  # the same command resumes
        assert json.loads((out / "status.json").read_text())["resumed_from"] == 1
    finally:
        subprocess.run(["umount", str(fs)])


# ------------------------------------------------------- SIGTERM, encode ---

def test_sigterm_is_a_message_a_valid_checkpoint_and_143_then_encode_refuses_the_unfinished_run(tmp_path, capsys):
    npz = _tiny_npz(tmp_path / "d.npz", n=1024)  # 64 steps an epoch: time to signal after the first
    out = tmp_path / "run"
    args = ["train", "--model", "wela", "--npz", str(npz), "--hidden", "32", "--latent-dim", "2",
            "--batch-size", "16", "--epochs", "5", "--checkpoint-every", "1", "--out", str(out)]
    p = subprocess.Popen([sys.executable, "-m", "welavae.cli", *args], env=_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(out / "checkpoints" / "last.pt", p)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143, err
    assert "SIGTERM" in _error_line(err.replace("welavae: interrupted", "welavae: error: interrupted"))
    from welavae.checkpoint import load_checkpoint

    assert 1 <= load_checkpoint(out / "checkpoints" / "last.pt")["epoch"] < 5
    assert not (out / LOCK_NAME).exists() and not Run(out).finished()

    enc = ["encode", str(out), "--npz", str(npz)]
    assert main(enc + ["--out", str(tmp_path / "z.npy")]) == 2
    assert "--allow-unfinished" in _error_line(capsys.readouterr().err)
    assert not (tmp_path / "z.npy").exists()
    assert main(enc + ["--out", str(tmp_path / "z.npy"), "--allow-unfinished"]) == 0
    assert np.load(tmp_path / "z.npy").shape == (1, 1024, 2)
    capsys.readouterr()
    assert main(enc + ["--out", str(tmp_path), "--allow-unfinished"]) == 2  # an existing directory
    assert "is a directory" in _error_line(capsys.readouterr().err)

    assert main(args) == 0  # the same command resumes
    assert json.loads((out / "status.json").read_text())["resumed_from"] >= 1


# --------------------------------------------- accepted but wrong, refused ---

def _folder(tmp_path, rows, header="file,a"):
    from PIL import Image

    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(4):
        Image.fromarray(np.full((4, 4), 60 * i, np.uint8)).save(d / f"{i}.png")
    (tmp_path / "labels.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    return d, tmp_path / "labels.csv"


@pytest.mark.parametrize("outside", ["../x.png", "ABS"])
def test_a_csv_row_naming_a_file_outside_the_folder_is_refused(tmp_path, outside):
    from PIL import Image

    from welavae.data.folder import load_image_folder

    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "x.png")
    name = str(tmp_path / "x.png") if outside == "ABS" else outside
    d, csv = _folder(tmp_path, [f"{i}.png,{i % 2}" for i in range(4)] + [f"{name},1"])
    with pytest.raises(ValueError, match=r"row 6: .* outside .*imgs"):
        load_image_folder(d, csv)


def test_a_label_column_named_twice_is_refused(tmp_path):
    from welavae.data.folder import load_image_folder

    d, csv = _folder(tmp_path, [f"{i}.png,{i % 2},{i % 2}" for i in range(4)], header="file,a,a")
    with pytest.raises(ValueError, match="'a' twice"):
        load_image_folder(d, csv)


def test_numerals_are_classes_by_value(tmp_path):
    from welavae.data.folder import load_image_folder

    d, csv = _folder(tmp_path, ["0.png,0", "1.png,1", "2.png,1.0", "3.png,01"])
    ds = load_image_folder(d, csv)
    assert ds.label_dims == (2,) and ds.labels[:, 0].tolist() == [0, 1, 1, 1]  # '1', '1.0', '01': class 1


def test_a_non_integer_number_in_a_label_column_is_refused(tmp_path):
    from welavae.data.folder import load_image_folder

    d, csv = _folder(tmp_path, ["0.png,0", "1.png,1", "2.png,1.5", "3.png,0"])
    with pytest.raises(ValueError, match="row 4: label 'a' = 1.5 is not a whole number"):
        load_image_folder(d, csv)
