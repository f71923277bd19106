"""Where sweep jobs run: in this process (``local``) or as Ray tasks (``ray``).

A job trains the unfinished seeds of one model into its own chunk directory
(``runs/<model>/chunks/<seeds>``), with checkpoints, and returns that path;
the driver evaluates and records it.  The Ray backend therefore assumes the
output directory lies on a filesystem every worker can reach (one machine,
or a shared mount on a cluster), as Ray's own ``storage_path`` does.
Results flow back through the driver, the only writer of the database.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

__all__ = ["Job", "run_job", "LocalExecutor", "RayExecutor", "make_executor"]


class Job(dict):
    """{"spec": RunSpec.to_dict(), "seeds": [...], "chunk_dir": str, "device": str, "data_dir": str | None}"""


def run_job(job: dict, on_epoch: Callable | None = None, data=None) -> dict:
    """Train one job (resuming from its checkpoint) and write its chunk directory."""
    from ..train.run import train_run
    from .plan import RunSpec

    spec = RunSpec.from_dict(job["spec"])
    result = train_run(spec.config, job["seeds"], job["chunk_dir"], data_dir=job.get("data_dir"),
                       device=job.get("device", "cpu"), progress=False, on_epoch=on_epoch, data=data)
    return {"model": spec.model, "chunk_dir": job["chunk_dir"], "seconds": result.seconds,
            "seeds": list(job["seeds"])}


class LocalExecutor:
    """Jobs one after another in this process, each model's seeds vectorised."""

    name = "local"

    def __init__(self, data_loader: Callable | None = None):
        self.data_loader = data_loader

    def run(self, jobs: list[dict], on_epoch_for: Callable[[dict], Callable] | None = None) -> Iterator[dict]:
        for job in jobs:
            data = self.data_loader(job) if self.data_loader else None
            yield run_job(job, on_epoch=on_epoch_for(job) if on_epoch_for else None, data=data)


class RayExecutor:
    """Each job is one Ray task (requesting a GPU when the device is CUDA); results as they finish."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        try:
            import ray
        except ImportError:
            raise ValueError("the ray backend needs Ray: pip install 'wela-vae[ray]'") from None
        self.ray = ray
        if not ray.is_initialized():
            kwargs = {"address": address} if address else {"num_cpus": num_cpus}
            ray.init(ignore_reinit_error=True, log_to_driver=False, include_dashboard=False, **kwargs)

    def run(self, jobs: list[dict], on_epoch_for=None) -> Iterator[dict]:
        ray = self.ray
        pending = {}
        for job in jobs:
            gpus = 1 if str(job.get("device", "cpu")).startswith("cuda") else 0
            task = ray.remote(num_gpus=gpus, num_cpus=1, max_retries=2)(run_job)
            pending[task.remote(job)] = job
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                pending.pop(ref)
                yield ray.get(ref)


def make_executor(backend: str, *, address: str | None = None, data_loader=None):
    if backend == "local":
        if address:
            raise ValueError("--address only applies to --backend ray")
        return LocalExecutor(data_loader)
    if backend == "ray":
        return RayExecutor(address)
    raise ValueError(f"unknown backend {backend!r}; choose 'local' or 'ray'")


def chunk_name(seeds) -> str:
    """A directory name for a seed list: '0-7' for a range, else a short list/hash."""
    seeds = list(seeds)
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"seeds_{seeds[0]}-{seeds[-1]}"
    import hashlib

    return "seeds_" + hashlib.sha1(",".join(map(str, seeds)).encode()).hexdigest()[:10]


def chunk_path(out: Path, model: str, seeds) -> Path:
    return Path(out) / "runs" / model / "chunks" / chunk_name(seeds)
