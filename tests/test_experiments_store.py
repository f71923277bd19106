"""welavae.experiments.store: round trip, atomic batches, resume keys, crash safety, bad and old files."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from welavae.experiments.store import RESULT_COLUMNS, SCHEMA_VERSION, ResultsStore


def register(store, model="wela_p2", config_hash="h1", *, label_dim=2):
    store.register_model(model, config_hash, json.dumps({"name": model}), beta=40.0,
                         gamma=2000.0 if label_dim else None, label_dim=label_dim,
                         latent_dim=2 if label_dim else 5, regulariser="tc")


def row(model="wela_p2", seed=0, status="done", config_hash="h1", **kw):
    return {"model": model, "seed": seed, "config_hash": config_hash, "status": status, **kw}


def test_round_trip(tmp_path):
    path = tmp_path / "results.sqlite"
    metrics = {"cartesian": {"mig": 0.5}, "polar": {"mig": 0.25}}
    with ResultsStore(path) as s:
        register(s, "tcvae", "ht", label_dim=0)
        register(s)
        s.record([
            row(seed=3, polar_mse=np.float64(12.5), polar_channels=(1, 0), polar_inverted=[False, True],
                cartesian_mse=300.0, acc_angle=0.99, acc_distance=1.0, metrics_json=metrics,
                epochs=np.int64(60), seconds=1.5),
            row(seed=1, status="diverged", diverged_epoch=7, polar_mse=float("nan")),
        ])
    with ResultsStore(path) as s:  # reopened: everything was committed
        models = s.models()
        assert [m["model"] for m in models] == ["tcvae", "wela_p2"]  # registration order
        assert models[0]["gamma"] is None and models[0]["label_dim"] is None  # label_dim 0 → NULL
        assert models[1]["gamma"] == 2000.0 and models[1]["label_dim"] == 2 and models[1]["latent_dim"] == 2
        rows = s.rows()
        assert [r["seed"] for r in rows] == [1, 3]  # by model order, then seed
        assert set(rows[0]) == set(RESULT_COLUMNS)
        r3 = s.rows("wela_p2")[1]
        assert r3["polar_mse"] == 12.5 and r3["cartesian_mse"] == 300.0 and r3["epochs"] == 60
        assert json.loads(r3["polar_channels"]) == [1, 0] and json.loads(r3["polar_inverted"]) == [False, True]
        assert json.loads(r3["metrics_json"]) == metrics
        assert r3["updated_at"]  # stamped by record()
        assert rows[0]["polar_mse"] is None and rows[0]["diverged_epoch"] == 7  # NaN is stored as NULL
        assert s.rows("tcvae") == []
        assert s.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_upserts_replace_rows_and_keep_model_order(tmp_path):
    with ResultsStore(tmp_path / "r.sqlite") as s:
        register(s, "tcvae", "ht", label_dim=0)
        register(s)
        register(s, "tcvae", "ht", label_dim=0)  # same hash again: no error, order kept
        s.record([row(seed=0, status="failed", error="boom")])
        s.record([row(seed=0, polar_mse=5.0)])  # the retry replaces the failed row
        assert [m["model"] for m in s.models()] == ["tcvae", "wela_p2"]
        (r,) = s.rows()
        assert r["status"] == "done" and r["polar_mse"] == 5.0 and r["error"] is None


def test_other_configuration_for_a_model_is_refused(tmp_path):
    with ResultsStore(tmp_path / "r.sqlite") as s:
        register(s, config_hash="h1")
        with pytest.raises(ValueError, match="another configuration for model 'wela_p2'"):
            register(s, config_hash="h2")
        assert s.models()[0]["config_hash"] == "h1"


def test_record_is_all_or_nothing(tmp_path):
    with ResultsStore(tmp_path / "r.sqlite") as s:
        register(s)
        s.record([row(seed=0, polar_mse=1.0)])
        batch = [row(seed=1, polar_mse=2.0), row(seed=2, status="exploded"), row(seed=3, polar_mse=3.0)]
        with pytest.raises(ValueError, match="row 1 .*seed=2.*nothing of this batch"):
            s.record(batch)  # seed 1 went in before the CHECK failed on seed 2: rolled back
        with pytest.raises(ValueError, match="nothing of this batch"):
            s.record([row(seed=4), row(model="unregistered", seed=5)])  # foreign key
        assert [r["seed"] for r in s.rows()] == [0]
        s.record([row(seed=6)])  # the store is still usable after a rejected batch
        assert [r["seed"] for r in s.rows()] == [0, 6]


def test_finished_respects_config_hash_and_retries_failed(tmp_path):
    with ResultsStore(tmp_path / "r.sqlite") as s:
        register(s)
        s.record([row(seed=0), row(seed=1, status="diverged"), row(seed=2, status="failed"),
                  row(seed=3, config_hash="old")])
        assert s.finished("wela_p2", "h1") == {0, 1}
        assert s.finished("wela_p2", "old") == {3}
        assert s.finished("tcvae", "h1") == set()


def test_killed_writer_keeps_committed_rows(tmp_path):
    """SIGKILL in the middle of a transaction whose pages already spilled into the WAL."""
    if not hasattr(signal, "SIGKILL"):
        pytest.skip("needs SIGKILL")
    path = tmp_path / "results.sqlite"
    child = textwrap.dedent(f"""
        import os, signal
        from welavae.experiments.store import ResultsStore
        s = ResultsStore({str(path)!r})
        s.register_model("tcvae", "h", "{{}}", beta=40.0, gamma=None, label_dim=None, latent_dim=5,
                         regulariser="tc")
        s.record([{{"model": "tcvae", "seed": i, "config_hash": "h", "status": "done", "polar_mse": float(i)}}
                  for i in range(5)])
        c = s.conn
        c.execute("PRAGMA cache_size=2")  # a tiny page cache: uncommitted pages spill to the WAL
        c.execute("BEGIN IMMEDIATE")
        for i in range(5, 400):
            c.execute("INSERT INTO results (model, seed, config_hash, status, error) VALUES (?, ?, ?, ?, ?)",
                      ("tcvae", i, "h", "done", "x" * 2000))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, timeout=60, cwd=repo, env=env)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    wal = path.with_name(path.name + "-wal")
    assert wal.exists() and wal.stat().st_size > 100_000  # the dead transaction's frames are on disk
    with ResultsStore(path) as s:
        assert s.finished("tcvae", "h") == {0, 1, 2, 3, 4}
        assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        s.record([{"model": "tcvae", "seed": 5, "config_hash": "h", "status": "done"}])  # writable again
        assert s.finished("tcvae", "h") == set(range(6))


@pytest.mark.parametrize("content", [b"", b"not a database at all\n" * 200])
def test_not_a_database_is_one_clear_error(tmp_path, content):
    path = tmp_path / "results.sqlite"
    if content:
        path.write_bytes(content)
        with pytest.raises(ValueError, match=r"results\.sqlite is not a readable welavae results database"):
            ResultsStore(path)
    else:  # an empty file is a new, empty database
        path.write_bytes(content)
        with ResultsStore(path) as s:
            assert s.models() == []


def test_truncated_database_is_one_clear_error(tmp_path):
    path = tmp_path / "results.sqlite"
    with ResultsStore(path) as s:
        register(s)
        s.record([row(seed=i, error="x" * 3000) for i in range(20)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="results.sqlite"):
        ResultsStore(path)


def test_foreign_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "results.sqlite"
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE other (x)")
    c.close()
    with pytest.raises(ValueError, match="not a welavae results store"):
        ResultsStore(path)
    with sqlite3.connect(path) as c:
        c.execute("DROP TABLE other")
        c.execute("PRAGMA user_version=99")
    c.close()
    with pytest.raises(ValueError, match="schema version 99"):
        ResultsStore(path)


def test_closed_store_says_so(tmp_path):
    s = ResultsStore(tmp_path / "r.sqlite")
    s.close()
    s.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        s.rows()


def test_results_store_gains_the_environment_column_on_an_old_file(tmp_path):
    import json
    import sqlite3

    from welavae.experiments.store import _SCHEMA, ResultsStore

    old = tmp_path / "results.sqlite"
    conn = sqlite3.connect(old)  # a file as welavae wrote it before the column existed
    for statement in _SCHEMA.replace("    environment TEXT,\n", "").split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    env = [{"device": "cuda", "device_name": "GPU X", "tf32": False, "torch": "2.13.0", "cuda": "12.8",
            "cudnn": 91000, "from_epoch": 0}]
    with ResultsStore(old) as store:
        store.register_model("tcvae", "h", "{}", beta=1.0, gamma=None, label_dim=None, latent_dim=5,
                             regulariser="tc")
        store.record([{"model": "tcvae", "seed": 0, "config_hash": "h", "status": "done", "environment": env},
                      {"model": "tcvae", "seed": 1, "config_hash": "h", "status": "done"}])
        rows = store.rows()
    assert json.loads(rows[0]["environment"]) == env and rows[1]["environment"] is None


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
