"""welavae.experiments.sweep: a plan run to the contract, kill -9 and resume, failures, chunks, Ray.

Outputs per the contract, resumable after kill -9, idempotent, failures
recorded and retried (a corrupt checkpoint named), seeds in chunks, Ray backend.
"""
import csv
import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from plans import tiny_tcvae_plan

from welavae.config import DataConfig, TrainConfig
from welavae.experiments import executors, sweep
from welavae.experiments.plan import blobs_spec
from welavae.experiments.sweep import SweepFailed, run_plan

CONTRACT = ("model,beta,gamma,label_dim,latent_dim,seeds,polar_lowest,polar_mean,polar_best10_mean,"
            "cartesian_lowest,cartesian_mean,cartesian_best10_mean,acc_angle,acc_distance")


def tiny_plan(epochs=2, seeds=2, models=("tcvae", "wela_p2"), data=None, batch_size=256):
    """N = 4,096 one-blob-per-position images, MLP 16-8; batch 256 = 16 steps an epoch."""
    data = data or DataConfig(variants=1)
    train = TrainConfig(epochs=epochs, batch_size=batch_size, lr=1e-3, checkpoint_every=1)
    return [blobs_spec(m, data=data, train=train, hidden=(16, 8), seeds=range(seeds)) for m in models]


def run(out, plan, cache, **kw):
    """run_plan() as the tests use it: silent, without the (slow) disentanglement_lib metrics."""
    return run_plan(plan, out=out, data_dir=cache, progress=False, standard="none", **kw)


REAL_RUN_JOB = executors.run_job


def trained_jobs(monkeypatch):
    """Record (model, seeds) of every job the local executor runs (and run it)."""
    calls = []

    def recording(job, **kw):
        calls.append((job["spec"]["model"], tuple(job["seeds"])))
        return REAL_RUN_JOB(job, **kw)

    monkeypatch.setattr(executors, "run_job", recording)
    return calls


def test_reproduce_writes_the_contract_and_reruns_in_seconds(tmp_path):
    out = tmp_path / "res"
    rows = run(out, tiny_plan(), tmp_path / "cache")
    assert [r["model"] for r in rows] == ["tcvae", "wela_p2"]
    header = (out / "table.csv").read_text().splitlines()[0]
    assert header.startswith(CONTRACT + ",")  # the contract columns first, the extra statistics after
    table = list(csv.DictReader((out / "table.csv").open()))
    assert table[0]["acc_angle"] == "" and float(table[1]["acc_angle"]) > 0.5
    assert table[1]["gamma"] == "2000" and table[0]["latent_dim"] == "5"
    with sqlite3.connect(out / "results.sqlite") as db:
        assert db.execute("select count(*) from results where status='done'").fetchone()[0] == 4
    assert np.load(out / "runs" / "tcvae" / "mu.npy").shape == (2, 4096, 5)
    assert np.load(out / "runs" / "wela_p2" / "mu.npy").dtype == np.float32
    assert np.load(out / "runs" / "wela_p2" / "factors.npy").shape == (4096, 2)
    figs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert "mse_distributions.png" in figs and any(f.startswith("tcvae_seed") for f in figs)
    before = {p: p.read_bytes() for p in [out / "table.csv", out / "table.md", out / "runs" / "tcvae" / "mu.npy"]}
    # A sweep stopped after recording a model and before drawing its figure: the rerun draws it.
    figure = next((out / "figures").glob("wela_p2_seed?.png"))
    figure.unlink()
    t = time.perf_counter()
    run(out, tiny_plan(), tmp_path / "cache")
    assert time.perf_counter() - t < 20  # nothing to train
    assert all(p.read_bytes() == b for p, b in before.items()) and figure.exists()
    # More seeds later: only the new ones train.
    rows = run(out, tiny_plan(seeds=3), tmp_path / "cache")
    assert rows[0]["seeds"] == 3 and np.load(out / "runs" / "tcvae" / "mu.npy").shape == (3, 4096, 5)


def test_changed_config_in_same_directory_is_refused(tmp_path):
    run(tmp_path, tiny_plan(epochs=1, seeds=1, models=("tcvae",)), tmp_path / "c")
    with pytest.raises(ValueError, match="another configuration"):
        run(tmp_path, tiny_plan(epochs=2, seeds=1, models=("tcvae",)), tmp_path / "c")


SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from test_experiments_sweep import tiny_plan
from welavae.experiments.sweep import run_plan
run_plan(tiny_plan(epochs=6, batch_size=64), out={out!r}, data_dir={cache!r}, progress=False, standard="none")
"""


def test_kill_minus_9_mid_sweep_then_resume_equals_uninterrupted(tmp_path):
    cache = str(tmp_path / "cache")
    reference = tmp_path / "ref"
    run(reference, tiny_plan(epochs=6, batch_size=64), cache)  # 64 steps an epoch: time to kill it
    out = tmp_path / "killed"
    code = SCRIPT.format(tests=str(Path(__file__).parent), out=str(out), cache=cache)
    proc = subprocess.Popen([sys.executable, "-c", code])
    ckpt = out / "runs" / "wela_p2" / "chunks" / "seeds_0-1" / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)  # mid-way through the second model
    proc.wait()
    with sqlite3.connect(out / "results.sqlite") as db:
        assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
        models = {m for (m,) in db.execute("select distinct model from results")}
    assert models == {"tcvae"}
    assert not (out / "table.csv").exists() or "wela" not in (out / "table.csv").read_text()
    run(out, tiny_plan(epochs=6, batch_size=64), cache)
    assert (out / "table.csv").read_bytes() == (reference / "table.csv").read_bytes()
    assert np.array_equal(np.load(out / "runs" / "wela_p2" / "mu.npy"), np.load(reference / "runs" / "wela_p2" / "mu.npy"))


def test_a_failing_job_is_recorded_the_others_finish_and_a_rerun_retries_only_it(tmp_path, monkeypatch):
    out, cache = tmp_path / "res", tmp_path / "cache"

    def broken_for_wela(job, **kw):  # the test breaks one model's training, not the product
        if job["spec"]["model"] == "wela_p2":
            raise RuntimeError("injected failure in wela_p2")
        return REAL_RUN_JOB(job, **kw)

    monkeypatch.setattr(executors, "run_job", broken_for_wela)
    with pytest.raises(SweepFailed, match="wela_p2") as err:
        run(out, tiny_plan(epochs=1), cache)
    assert list(err.value.failed) == ["wela_p2"] and "injected failure" in err.value.failed["wela_p2"]
    with sqlite3.connect(out / "results.sqlite") as db:
        rows = db.execute("select model, seed, status, error from results order by model, seed").fetchall()
    assert [r[:3] for r in rows] == [("tcvae", 0, "done"), ("tcvae", 1, "done"),
                                     ("wela_p2", 0, "failed"), ("wela_p2", 1, "failed")]
    assert rows[2][3].startswith("RuntimeError: injected failure in wela_p2")  # then the traceback
    table = {r["model"]: r for r in csv.DictReader((out / "table.csv").open())}
    assert table["tcvae"]["failed"] == "0" and table["tcvae"]["seeds"] == "2"
    assert table["wela_p2"]["failed"] == "2" and table["wela_p2"]["seeds"] == "0"
    assert "**wela_p2 failed** (2 seeds): RuntimeError: injected failure in wela_p2" in (out / "table.md").read_text()
    assert np.load(out / "runs" / "tcvae" / "mu.npy").shape == (2, 4096, 5)
    assert not (out / "runs" / "wela_p2" / "mu.npy").exists()
    # The same call again trains only the failed model, and succeeds.
    calls = trained_jobs(monkeypatch)
    rows = run(out, tiny_plan(epochs=1), cache)
    assert calls == [("wela_p2", (0, 1))]
    assert [(r["model"], r["seeds"], r["failed"]) for r in rows] == [("tcvae", 2, 0), ("wela_p2", 2, 0)]
    assert "failed" not in (out / "table.md").read_text().split("\n\n", 1)[1]


def test_a_model_whose_every_seed_diverged_is_reported_not_retrained(tmp_path, monkeypatch):
    class Diverged(sweep.Run):  # as if every seed's loss had turned non-finite in epoch 0
        @property
        def diverged_epoch(self):
            return [0] * len(self.seeds)

    monkeypatch.setattr(sweep, "Run", Diverged)
    plan = tiny_plan(epochs=1, seeds=2, models=("tcvae",))
    with pytest.raises(SweepFailed, match="tcvae.*all 2 finished seeds diverged"):
        run(tmp_path, plan, tmp_path / "cache")
    calls = trained_jobs(monkeypatch)
    with pytest.raises(SweepFailed, match="diverged") as err:
        run(tmp_path, plan, tmp_path / "cache")
    assert calls == [] and err.value.table[0]["diverged"] == 2  # recorded as diverged, not retried


def test_progress_is_one_bar_over_all_epochs_and_a_line_per_job(capsys):
    jobs = [{"spec": {"model": m, "config": {"train": {"epochs": 3}}}, "seeds": [0, 1], "chunk_dir": m}
            for m in ("tcvae", "wela_p2")]
    bar = sweep._Progress(jobs, True)
    assert bar.bar.total == 6  # epochs of every job
    tick = bar.on_epoch_for(jobs[0])
    tick(1, None)
    tick(2, None)
    bar.job_done(jobs[0], "2 seeds in 1s")
    bar.job_done(jobs[1], "FAILED: RuntimeError: boom")  # a resumed or remote job counts whole when it ends
    assert bar.bar.n == 6
    bar.close()
    err = capsys.readouterr().err
    assert "tcvae seeds_0-1 epoch 2/3" in err and "6/6" in err
    assert "[1/2] tcvae seeds_0-1: 2 seeds in 1s" in err and "[2/2] wela_p2 seeds_0-1: FAILED" in err
    # Not a terminal and not asked: no bar, still a line per job; progress=False: silent.
    quiet = sweep._Progress(jobs, None)
    quiet.job_done(jobs[0], "done")
    quiet.close()
    assert capsys.readouterr().err == "[1/2] tcvae seeds_0-1: done\n"
    silent = sweep._Progress(jobs, False)
    silent.job_done(jobs[0], "done")
    silent.close()
    assert capsys.readouterr().err == ""


def test_chunked_seeds_give_the_unchunked_arrays(tmp_path, monkeypatch):
    # A seed's run does not depend on the seeds beside it (CONTRIBUTING.md, "Conventions": seeds): seeds 0-1 and 2 in two
    # jobs give the mu.npy of seeds 0-2 in one, up to float reduction order (~1e-6 at lr 1e-4).
    cache = tmp_path / "cache"
    plan = tiny_plan(epochs=1, seeds=3, models=("wela_p2",))
    calls = trained_jobs(monkeypatch)
    whole = run(tmp_path / "whole", plan, cache)
    chunked = run(tmp_path / "chunked", plan, cache, seeds_per_task=2)
    assert calls == [("wela_p2", (0, 1, 2)), ("wela_p2", (0, 1)), ("wela_p2", (2,))]
    chunks = tmp_path / "chunked" / "runs" / "wela_p2" / "chunks"
    assert sorted(p.name for p in chunks.iterdir()) == ["seeds_0-1", "seeds_2-2"]
    a, b = (np.load(tmp_path / d / "runs" / "wela_p2" / "mu.npy") for d in ("whole", "chunked"))
    assert a.shape == b.shape == (3, 4096, 2)
    np.testing.assert_allclose(b, a, atol=1e-4)
    assert json.loads((tmp_path / "chunked" / "runs" / "wela_p2" / "seeds.json").read_text()) == [0, 1, 2]
    assert chunked[0]["seeds"] == 3 and chunked[0]["polar_lowest"] == pytest.approx(whole[0]["polar_lowest"], rel=1e-3)
    with pytest.raises(ValueError, match="seeds-per-task"):
        run(tmp_path / "x", plan, cache, seeds_per_task=0)


@pytest.mark.ray
def test_ray_backend_on_a_local_instance(tmp_path):
    # Seeds in chunks of one, one model that fails inside its Ray worker (the run it starts from does not exist).
    ray = pytest.importorskip("ray")
    cache = tmp_path / "cache"
    bad = [dataclasses.replace(s, hyper=dict(s.hyper, train=dataclasses.replace(
        s.hyper["train"], init_from=str(tmp_path / "missing_run")))) for s in tiny_plan(epochs=1, models=("wela_p3",))]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with pytest.raises(SweepFailed) as err:
            run(tmp_path / "ray", tiny_plan(epochs=1) + bad, cache, backend="ray", seeds_per_task=1)
    finally:
        ray.shutdown()
    assert list(err.value.failed) == ["wela_p3"] and "missing_run" in err.value.failed["wela_p3"]
    rows = err.value.table
    local = run(tmp_path / "local", tiny_plan(epochs=1), cache)
    assert [r["model"] for r in rows] == ["tcvae", "wela_p2", "wela_p3"] and rows[2]["failed"] == 2
    for a, b in zip(rows, local):
        assert a["polar_lowest"] == pytest.approx(b["polar_lowest"], rel=1e-4)
    for model in ("tcvae", "wela_p2"):
        d = tmp_path / "ray" / "runs" / model
        assert sorted(p.name for p in (d / "chunks").iterdir()) == ["seeds_0-0", "seeds_1-1"]
        assert json.loads((d / "seeds.json").read_text()) == [0, 1]
        np.testing.assert_allclose(np.load(d / "mu.npy"), np.load(tmp_path / "local" / "runs" / model / "mu.npy"),
                                   atol=1e-4)
    with sqlite3.connect(tmp_path / "ray" / "results.sqlite") as db:
        assert db.execute("select count(*) from results where model='wela_p3' and status='failed'").fetchone()[0] == 2


def test_a_sweep_job_with_a_corrupt_checkpoint_says_which_file_to_delete(tmp_path):
    from welavae.experiments import sweep
    from welavae.experiments.store import ResultsStore
    from welavae.experiments.sweepdir import SweepDir

    out = tmp_path / "results"
    ckpt = SweepDir(out).chunk("tcvae", [0]) / "checkpoints" / "last.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(sweep.SweepFailed) as e:
        sweep.run_plan(tiny_tcvae_plan(), out=out, data_dir=tmp_path / "cache", progress=False, standard="none")
    assert f"delete {ckpt}" in str(e.value)
    with ResultsStore(out / "results.sqlite") as store:
        (row,) = store.rows("tcvae")
    assert row["status"] == "failed" and f"delete {ckpt} and run the same command again" in row["error"].splitlines()[0]
    ckpt.unlink()  # as the message says: the retry trains the chunk and succeeds
    sweep.run_plan(tiny_tcvae_plan(), out=out, data_dir=tmp_path / "cache", progress=False, standard="none")


def test_every_job_trains_with_the_sweeps_seed_layout_and_tf32(tmp_path, monkeypatch):
    # run_plan → plan_jobs → the job dict → run_job → train_run: the flags of `welavae reproduce` reach every run.
    seen = []
    real = executors.train_run

    def recording(*args, **kw):
        seen.append((kw["seed_layout"], kw["tf32"]))
        return real(*args, **kw)

    monkeypatch.setattr(executors, "train_run", recording)
    run(tmp_path / "out", tiny_plan(epochs=1, seeds=1, models=("tcvae",)), tmp_path / "cache",
        seed_layout="per-seed", tf32=True)
    assert seen == [("per-seed", True)]
    status = json.loads(next((tmp_path / "out" / "runs").rglob("status.json")).read_text())
    assert status["seed_layout"] is None  # an MLP: no layout to choose
    with pytest.raises(ValueError, match="seed layout must be one of auto, grouped, per-seed, got 'loop'"):
        run(tmp_path / "bad", tiny_plan(epochs=1, seeds=1, models=("tcvae",)), tmp_path / "cache", seed_layout="loop")
    assert not (tmp_path / "bad").exists()


# ------------------------------------------------------------------------ a sweep survives a lost Ray node

#: Ray's GCS health check of the nodes, tuned so a killed node is declared dead in about a second (defaults:
#: a check every 3 s, dead after 5 missed ones, first after 5 s: 15–20 s).
FAST_NODE_DEATH = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
                   "health_check_failure_threshold": 2}


@pytest.fixture
def two_nodes():
    """A Ray cluster on this machine: a head and one worker node, one CPU each; the driver connected to it.
    Yields (cluster, the worker node)."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "_system_config": FAST_NODE_DEATH})
    worker = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    try:
        yield cluster, worker
    finally:
        ray.shutdown()
        cluster.shutdown()


def _job_that_stops_on_the_worker(worker_node_id: str, flags: Path, after_epoch: int | None):
    """executors.run_job as a Ray task that, on the worker node only, stops and waits (for the node to be killed):
    after epoch ``after_epoch`` (its checkpoint written), or with ``after_epoch`` None once the job's chunk is
    written, before its result reaches the driver.  It announces each stop with a file in ``flags``."""
    def job(job, on_epoch=None, data=None):
        import time

        import ray

        from welavae.experiments.executors import run_job  # the worker's own, not the driver's stand-in

        here = ray.get_runtime_context().get_node_id() == worker_node_id
        name = f"{job['spec']['model']}_{'-'.join(map(str, job['seeds']))}"

        def stop():
            (flags / name).touch()
            time.sleep(120)  # until the node is killed

        def tick(epoch, means):
            if here and epoch == after_epoch:
                stop()

        result = run_job(job, on_epoch=tick, data=data)
        if here and after_epoch is None:
            stop()
        return result

    return job


def _lose_the_worker_when_it_stops(cluster, worker, flags: Path, timeout=60.0):
    """Kill the worker node (its raylet and workers) as soon as a job on it announces its stop; the job's name."""
    t = time.monotonic()
    while not list(flags.iterdir()):
        assert time.monotonic() - t < timeout, "no job stopped on the worker node"
        time.sleep(0.05)
    cluster.remove_node(worker, allow_graceful=False)
    return next(flags.iterdir()).name


def _every_pair_once(out, models, seeds):
    with sqlite3.connect(out / "results.sqlite") as db:
        rows = db.execute("select model, seed, status from results order by model, seed").fetchall()
    assert rows == [(m, s, "done") for m in sorted(models) for s in range(seeds)]


def _lost_node_sweep(tmp_path, monkeypatch, two_nodes, after_epoch):
    """A tiny Blobs sweep (two models, two seeds, one seed per job) on the two-node cluster, its worker node killed
    by :func:`_lose_the_worker_when_it_stops`; returns (the results folder, the job that was on the lost node)."""
    import threading

    import ray

    cluster, worker = two_nodes
    flags = tmp_path / "flags"
    flags.mkdir()
    monkeypatch.setattr(executors, "run_job", _job_that_stops_on_the_worker(worker.node_id, flags, after_epoch))
    lost = []
    killer = threading.Thread(target=lambda: lost.append(_lose_the_worker_when_it_stops(cluster, worker, flags)))
    killer.start()
    out = tmp_path / "res"
    plan = tiny_plan(epochs=3, seeds=2, data=DataConfig(variants=1, size=16), batch_size=32)
    rows = run(out, plan, tmp_path / "cache", backend="ray", address=ray.get_runtime_context().gcs_address,
               seeds_per_task=1)
    killer.join()
    assert [r["model"] for r in rows] == ["tcvae", "wela_p2"] and all(r["seeds"] == 2 for r in rows)
    assert (out / "table.md").exists() and (out / "table.csv").exists()
    _every_pair_once(out, ("tcvae", "wela_p2"), 2)
    return out, lost[0]


@pytest.mark.ray
def test_a_sweep_survives_a_node_lost_mid_training(tmp_path, monkeypatch, two_nodes):
    # The worker node dies after its job's first epoch (a checkpoint written): Ray runs the task again on the head
    # node, which resumes the chunk from that checkpoint; the sweep returns normally with every pair once.
    out, lost = _lost_node_sweep(tmp_path, monkeypatch, two_nodes, after_epoch=1)
    model, seed = lost.rsplit("_", 1)
    status = json.loads((out / "runs" / model / "chunks" / f"seeds_{seed}-{seed}" / "status.json").read_text())
    assert status["resumed_from"] == 1 and status["epochs"] == 3


@pytest.mark.ray
def test_a_sweep_survives_a_node_lost_while_its_result_is_returned(tmp_path, monkeypatch, two_nodes):
    # The worker node dies after its job wrote the whole chunk, before the result reached the driver: the task
    # runs again, finds the chunk finished (the same run: nothing retrained), and the pair is recorded once.
    out, lost = _lost_node_sweep(tmp_path, monkeypatch, two_nodes, after_epoch=None)
    model, seed = lost.rsplit("_", 1)
    status = json.loads((out / "runs" / model / "chunks" / f"seeds_{seed}-{seed}" / "status.json").read_text())
    assert status["resumed_from"] == 3
