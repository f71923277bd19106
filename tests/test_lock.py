"""welavae.lock: one command per directory; the holder named; stale locks of dead processes taken over."""
import json
import os
import socket
import subprocess
import sys

import pytest

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


def test_an_unreadable_lock_is_refused_naming_the_file(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    (d / LOCK_NAME).write_text("")
    with pytest.raises(Locked, match="delete .*" + LOCK_NAME):
        with lock_dir(d):
            pass


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


def test_run_offers_its_lock(tmp_path):
    run = Run(tmp_path / "run")
    with run.locked():
        assert holder(run.path)["pid"] == os.getpid()
    assert holder(run.path) is None
