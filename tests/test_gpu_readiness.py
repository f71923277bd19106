"""The GPU path without a GPU (issue 24): no host wait in a training step, proved on the ``meta`` device.

A ``meta`` tensor has a shape and no values: ``.item()``, ``bool()``,
``.tolist()`` or a copy to the CPU raise on it.  A step that runs to the end
on ``meta`` therefore reads nothing back from the device, which on a GPU is
what keeps the step from waiting for the host.
"""
import numpy as np
import pytest
import torch

from welavae.config import DataConfig, TrainConfig, make_run_config
from welavae.nn import EnsembleVAE
from welavae.objectives.tc import log_importance_weights
from welavae.train import trainer


class _MetaAdam(torch.optim.Optimizer):
    """Adam's two moments and update in tensor ops (fused Adam has no ``meta`` kernel; on CUDA it reads no host value)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                state = self.state[p]
                if not state:
                    state["exp_avg"], state["exp_avg_sq"] = torch.zeros_like(p), torch.zeros_like(p)
                state["exp_avg"].lerp_(p.grad, 1 - b1)
                state["exp_avg_sq"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                p.sub_(group["lr"] * state["exp_avg"] / (state["exp_avg_sq"].sqrt() + group["eps"]))


def test_meta_tensors_refuse_host_reads():
    # The premise of the tests below: were the step to read a value, it would raise.
    t = torch.ones(3, device="meta")
    for read in (lambda: bool(t.all()), lambda: t.sum().item(), lambda: t.cpu().numpy()):
        with pytest.raises((RuntimeError, NotImplementedError)):
            read()


OPTIONS = [
    dict(model="tcvae"),
    dict(model="tcvae", tc_estimator="mws"),
    dict(model="betavae"),
    dict(model="dipvae"),
    dict(model="wela", label_dim=2),
    dict(model="wela", label_dim=2, tc_estimator="mws"),
    dict(model="wela", label_dim=3, label_head="diagonal"),
    dict(model="wela", label_dim=2, encoder_input="image"),
    dict(model="wela", label_dim=2, encoder="conv"),
    dict(model="dipvae", label_dim=2, label_head="diagonal", encoder_input="image"),
]


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(f"{v}" for v in o.values()))
def test_a_training_step_reads_nothing_from_the_device(opts):
    opts = dict(opts)
    kind = opts.pop("model")
    c = make_run_config(kind, hidden=(8,), data=DataConfig(variants=1), train=TrainConfig(batch_size=4), **opts)
    model = EnsembleVAE(c.model, [0, 1]).to("meta")
    optimizer = _MetaAdam(model.parameters())
    guard = trainer._Divergence(model, optimizer, np.array([-1, 3]), "meta")  # seed 1 diverged before
    x = torch.empty(4, c.model.image_dim, device="meta")
    # Partial labels: on meta the values are unknown, so the −1 paths run as for any label.
    y = torch.empty(4, c.model.num_labels, dtype=torch.int64, device="meta") if c.model.has_labels else None
    noise = torch.empty(2, 4, c.model.latent_dim, device="meta")
    log_w = log_importance_weights(4, 64, device="meta") if c.objective.tc_estimator == "mss" else None
    for _ in range(2):  # the second step also holds the dead seed's Adam momentum
        terms = trainer._step(model, optimizer, guard, c, x, y, noise, epoch=5, n=64, log_w=log_w, compiled=False)
    assert terms["loss"].shape == (2,) and terms["loss"].device.type == "meta"
    assert guard.alive.device.type == "meta" and guard.diverged_at.shape == (2,)


# --------------------------------------------------------------------------- Ray with GPUs (a fake ray module)

class _FakeRay:
    """The part of Ray the executor uses: a cluster with ``gpus`` GPUs; tasks run inline, their options kept."""

    def __init__(self, gpus):
        self.gpus, self.options, self.sent = gpus, [], []

    def is_initialized(self):
        return True

    def cluster_resources(self):
        return {"CPU": 8.0, **({"GPU": float(self.gpus)} if self.gpus else {})}

    def remote(self, **options):
        self.options.append(options)
        ray = self

        class Task:
            @staticmethod
            def remote(job):
                ray.sent.append(job)
                return _Ref({"job": job, "seconds": 1.0})
        return lambda fn: Task

    def wait(self, refs, num_returns):
        return refs[:1], refs[1:]

    def get(self, ref):
        return ref.value


class _Ref:  # an object reference: hashable, holding the task's return value
    def __init__(self, value):
        self.value = value


def test_ray_cuda_jobs_run_on_the_workers_cuda_with_fractional_gpus(monkeypatch):
    import sys

    from welavae.experiments.executors import make_executor

    ray = _FakeRay(gpus=1)
    monkeypatch.setitem(sys.modules, "ray", ray)
    ex = make_executor("ray", device="cuda:1", gpus_per_task=0.25, cpus_per_task=2)
    jobs = [{"spec": {}, "seeds": [0], "device": "cuda:1"}, {"spec": {}, "seeds": [1], "device": "cuda:1"}]
    results = list(ex.run(jobs))
    assert ray.options == [{"max_retries": 2, "num_gpus": 0.25, "num_cpus": 2.0}]
    # Ray narrows CUDA_VISIBLE_DEVICES to the GPU it assigned: the worker's device is "cuda" (index 0).
    assert [j["device"] for j in ray.sent] == ["cuda", "cuda"]
    assert [r["job"] for r in results] == jobs  # results name the jobs as the driver gave them


@pytest.mark.parametrize("gpus,kw,match", [
    (0, {}, r"asks each Ray task for 1 GPU but the Ray cluster has 0"),
    (1, dict(gpus_per_task=2), r"for 2 GPU but the Ray cluster has 1"),
    (4, dict(gpus_per_task=1.5), "a fraction in \\(0, 1\\] or a whole number"),
])
def test_ray_refuses_what_the_cluster_cannot_run_before_submitting(monkeypatch, gpus, kw, match):
    import sys

    from welavae.experiments.executors import make_executor

    ray = _FakeRay(gpus=gpus)
    monkeypatch.setitem(sys.modules, "ray", ray)
    with pytest.raises(ValueError, match=match):
        make_executor("ray", device="cuda", **kw)
    assert ray.options == [] and ray.sent == []


def test_gpu_task_options_need_ray_and_cuda(monkeypatch):
    import sys

    from welavae.experiments.executors import make_executor

    monkeypatch.setitem(sys.modules, "ray", _FakeRay(gpus=1))
    with pytest.raises(ValueError, match="--gpus-per-task applies to --device cuda only"):
        make_executor("ray", device="cpu", gpus_per_task=0.5)
    with pytest.raises(ValueError, match="apply to --backend ray only"):
        make_executor("local", cpus_per_task=2)
    assert make_executor("ray", device="cpu", cpus_per_task=3).resources == {"num_gpus": 0.0, "num_cpus": 3.0}


# --------------------------------------------------------------------------- records and flags

def test_results_store_gains_the_environment_column_on_an_old_file(tmp_path):
    import json
    import sqlite3

    from welavae.experiments.store import ResultsStore, _SCHEMA

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


@pytest.mark.parametrize("verb", [["train", "--model", "tcvae", "--out", "x"], ["reproduce"], ["bench"]])
def test_tf32_flag_defaults_off(verb):
    from welavae.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(verb).tf32 is False
    assert parser.parse_args(verb + ["--tf32"]).tf32 is True
    assert parser.parse_args(verb + ["--no-tf32"]).tf32 is False


# --------------------------------------------------------------------------- bench: no CUDA context in the parent

def test_bench_on_cuda_does_all_device_work_in_children(monkeypatch):
    # A GPU in exclusive-process mode admits one context: the parent must create none (issue 24, item 5).
    # CUDA is faked (one device); any CUDA call in this process would raise; children are replaced by a recorder.
    from welavae.perf import throughput as bench

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)

    def no_cuda(*a, **k):
        raise AssertionError("the parent touched CUDA")
    for name in ("init", "_lazy_init", "get_device_name", "synchronize", "max_memory_allocated", "set_device"):
        monkeypatch.setattr(torch.cuda, name, no_cuda)
    calls = []

    def child(fn, *args, **kwargs):
        calls.append(fn.__name__)
        if fn is bench._machine:
            return {"device": "cuda", "device_name": "GPU X"}
        if fn is bench.matmul_peak_gflops:
            return 1000.0
        return {"seconds": 1.0, "steps": 4, "steps_per_epoch": 4, "compiled_nll": False, "peak_rss_mb": 500.0,
                "peak_device_mb": 123.0}
    monkeypatch.setattr(bench, "_in_own_process", child)
    result = bench.run_benchmark(device="cuda", archs=("quick",), seeds=(2,), fast=True, print_table=False)
    assert calls == ["_machine", "matmul_peak_gflops", "_measure_row", "_measure_row", "_measure_row",
                     "matmul_peak_gflops"]  # naive, welavae S=2, naive again
    assert [r["peak_device_mb"] for r in result["rows"]] == [123.0, 123.0]
    assert bench.main_table(result).splitlines()[3].split()[-1] == "123"


# --------------------------------------------------------------------------- loading a trained run

def test_load_builds_on_meta_reads_the_weights_and_caches_one_seed_networks(tmp_path, monkeypatch):
    import welavae
    from welavae.nn import ensemble
    from welavae.checkpoint import load_checkpoint

    rng = np.random.default_rng(0)
    images = rng.random((128, 16, 16), dtype=np.float32)
    labels = rng.integers(0, 3, size=(128, 2))
    trained = welavae.fit(images, labels, seeds=(0, 4), out=tmp_path / "run", hidden=(8,), epochs=1,
                          batch_size=32, progress=False, encoder="conv")
    drawn = []
    real = ensemble.init_uniform
    monkeypatch.setattr(ensemble, "init_uniform", lambda *a, **k: drawn.append(real(*a, **k).device.type) or real(*a, **k))
    model = welavae.load(tmp_path / "run")
    assert drawn and set(drawn) == {"meta"}  # no initial weight drawn on the CPU to be thrown away
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["model"]
    for k, v in model.ensemble.state_dict().items():
        assert v.device.type == "cpu" and torch.equal(v, state[k]), k
    z = rng.standard_normal((5, trained.config.model.latent_dim)).astype(np.float32)
    first = model.decode(z, seed=4)
    net = model._one_seed[4]
    assert np.array_equal(model.decode(z, seed=4), first) and model._one_seed[4] is net  # built once
    assert np.allclose(first, model.decode(z)[1], atol=1e-6)  # seed 4 of the ensemble (S=1 vs S=2 GEMMs round apart)
    model.to("cpu")
    assert model._one_seed == {}


# --------------------------------------------------------------------------- the smoke script's plumbing

@pytest.mark.slow
def test_gpu_smoke_script_runs_on_the_cpu_and_writes_its_files(tmp_path):
    # The CPU-quick variant of scripts/gpu_smoke.py (minutes on a shared CPU): every section's file and the summary.
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sections = "gradcheck,precision,bit_identity,resume,host_waits"
    p = subprocess.run([sys.executable, str(root / "scripts" / "gpu_smoke.py"), "--device", "cpu", "--quick",
                        "--out", str(tmp_path), "--only", sections], capture_output=True, text=True, timeout=1500)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert p.returncode == 0, p.stdout + p.stderr
    assert {k: v["status"] for k, v in summary["sections"].items()} == {s: "ok" for s in sections.split(",")}
    identity = json.loads((tmp_path / "bit_identity.json").read_text())["result"]
    assert identity["mlp"] == {"weights_identical": True, "history_identical": True}
    assert json.loads((tmp_path / "resume.json").read_text())["result"]["weights_identical"] is True
    assert (tmp_path / "summary.md").read_text().startswith("# welavae GPU smoke test on cpu")
