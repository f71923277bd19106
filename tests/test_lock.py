"""welavae.lock: one command per directory; the holder named; stale locks of dead processes taken over.

Two real processes on one run directory or one results folder: the second is
refused (naming the holder's PID) and the first finishes whole.
"""
import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures import TINY, _env, _error_line, _tiny_npz, _wait_for
from plans import tiny_tcvae_plan as tiny_plan

from welavae.cli import main
from welavae.lock import LOCK_NAME, Locked, holder, lock_dir, locking
from welavae.run import Run


def _dead_pid() -> int:
    """The PID of a process that has exited (and been reaped): os.kill(pid, 0) fails for it."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _write_lock(path, **rec):
    path.mkdir(parents=True, exist_ok=True)
    base = {"pid": os.getpid(), "host": socket.gethostname(), "command": "welavae train --out x",
            "started": "2026-12-01T00:00:00+00:00", "token": "t0"}
    (path / LOCK_NAME).write_text(json.dumps({**base, **rec}))


def test_lock_file_names_the_owner_and_is_removed_on_exit(tmp_path):
    d = tmp_path / "run"
    with lock_dir(d, command="welavae train --out run") as lock:
        rec = json.loads(lock.read_text())
        assert rec["pid"] == os.getpid() and rec["host"] == socket.gethostname()
        assert rec["command"] == "welavae train --out run" and rec["started"]
        assert holder(d)["pid"] == os.getpid()
    assert not (d / LOCK_NAME).exists() and holder(d) is None
    assert not d.exists()  # the lock created the folder, nothing was written: removed again


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_lock_is_released_on_an_exception(tmp_path, exc):
    d = tmp_path / "run"
    d.mkdir()
    with pytest.raises(exc):
        with lock_dir(d):
            raise exc("boom")
    assert not (d / LOCK_NAME).exists() and d.is_dir()  # a folder that existed stays


def test_a_live_holder_is_refused_in_one_sentence_naming_it(tmp_path):
    d = tmp_path / "run"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        _write_lock(d, pid=sleeper.pid, command="welavae reproduce --out r")
        with pytest.raises(Locked) as e:
            with lock_dir(d):
                pass
        msg = str(e.value)
        assert f"PID {sleeper.pid}" in msg and socket.gethostname() in msg and "welavae reproduce --out r" in msg
        assert "\n" not in msg and isinstance(e.value, ValueError)
        assert holder(d)["pid"] == sleeper.pid  # the holder's lock is untouched
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_stale_lock_of_a_dead_process_on_this_host_is_taken_over(tmp_path):
    d = tmp_path / "run"
    _write_lock(d, pid=_dead_pid())
    with lock_dir(d) as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not (d / LOCK_NAME).exists()
    assert [p.name for p in d.iterdir()] == []  # no aside or temporary file left


def test_a_lock_held_on_another_host_is_never_judged_stale(tmp_path):
    d = tmp_path / "run"
    _write_lock(d, pid=_dead_pid(), host="another-host.example")
    with pytest.raises(Locked, match="another-host.example"):
        with lock_dir(d):
            pass


def test_a_retry_of_the_same_work_takes_over_the_lock_its_lost_attempt_left(tmp_path):
    # A Ray task lost with its node left its chunk's lock, held by a process that is on another host or has not
    # yet noticed it is lost: a retry of that task (the same owner) takes it over; anyone else is still refused.
    d = tmp_path / "chunk"
    _write_lock(d, pid=os.getpid(), host="lost-node.example", owner="ray job 1")
    for other in (None, "ray job 2"):
        with pytest.raises(Locked, match="lost-node.example"):
            with lock_dir(d, owner=other):
                pass
    with lock_dir(d, owner="ray job 1"):
        assert holder(d)["pid"] == os.getpid() and holder(d)["owner"] == "ray job 1"
    assert holder(d) is None


def test_a_refusal_crosses_a_process_boundary_whole():
    # A Ray task's Locked reached the driver as "UnserializableException: Failed to deserialize exception".
    import pickle

    e = pickle.loads(pickle.dumps(Locked("runs/a is in use by PID 1", {"pid": 1})))
    assert isinstance(e, Locked) and str(e) == "runs/a is in use by PID 1" and e.holder == {"pid": 1}


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n\xff\xfe", b"\xff" * 64])  # empty; binary, not UTF-8
def test_an_unreadable_lock_is_refused_naming_the_file(tmp_path, content):
    # A binary lock file used to escape as a UTF-8 decode error that named no file.
    d = tmp_path / "run"
    d.mkdir()
    (d / LOCK_NAME).write_bytes(content)
    with pytest.raises(Locked, match=f"its lock file {d / LOCK_NAME} is unreadable.*delete .*" + LOCK_NAME):
        with lock_dir(d):
            pass
    assert holder(d) == {}


def test_the_lock_is_reentrant_within_one_process(tmp_path):
    d = tmp_path / "run"
    with lock_dir(d):
        with lock_dir(d):  # fit → train_run, the sweep → plot_run
            assert (d / LOCK_NAME).exists()
        assert (d / LOCK_NAME).exists()  # the inner block does not release the outer's lock
    assert not (d / LOCK_NAME).exists()


def test_an_existing_file_is_refused(tmp_path):
    f = tmp_path / "out"
    f.write_text("x")
    with pytest.raises(ValueError, match="existing file"):
        with lock_dir(f):
            pass
    assert f.read_text() == "x"


def test_the_decorator_locks_the_named_argument_with_its_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    seen = []

    @locking("out")
    def work(x, *, out="results"):
        seen.append(holder(out)["pid"])
        (tmp_path / out / "f").write_text("1")

    work(1)
    assert seen == [os.getpid()] and not (tmp_path / "results" / LOCK_NAME).exists()


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


# A sweep that holds its results folder while blocked before recording its first result, until RELEASE exists.
_BLOCKED_SWEEP = """
import sys, time
from pathlib import Path
from welavae.experiments import store, sweep
sys.path.insert(0, sys.argv[4])
from plans import tiny_tcvae_plan as tiny_plan
out, data_dir, release = sys.argv[1:4]
record = store.ResultsStore.record
def blocked(self, rows):
    while not Path(release).exists():
        time.sleep(0.02)
    return record(self, rows)
store.ResultsStore.record = blocked
sweep.run_plan(tiny_plan(), out=out, data_dir=data_dir, progress=False, standard="none")
"""


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
