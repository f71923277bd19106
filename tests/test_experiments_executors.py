"""welavae.experiments.executors: Ray task options for GPU jobs, against a fake Ray cluster."""
import pytest


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
