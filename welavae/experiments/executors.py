"""Where sweep jobs run: in this process (``local``) or as Ray tasks (``ray``).

A job trains some unfinished seeds of one model (all of them, or a chunk of
``--seeds-per-task``) into its own chunk directory
(``runs/<model>/chunks/seeds_a-b``), with checkpoints; the driver evaluates
and records it.  The Ray backend therefore assumes the output directory lies
on a filesystem every worker can reach (one machine, or a shared mount on a
cluster), as Ray's own ``storage_path`` does.  Results flow back through the
driver, the only writer of the database.

A job that raises — an error in training, a data set that cannot be read, a
Ray worker that died — does not stop the others: the executor yields it as
``{"job": job, "error": text}`` and goes on.
"""
from __future__ import annotations

import traceback
from typing import Callable, Iterator

__all__ = ["run_job", "LocalExecutor", "RayExecutor", "make_executor", "error_text"]


def run_job(job: dict, on_epoch: Callable | None = None, data=None) -> dict:
    """Train one job (resuming from its checkpoint) and write its chunk directory.

    job: ``{"spec": RunSpec.to_dict(), "seeds": [...], "chunk_dir": str,
    "device": str, "data_dir": str | None}``.
    """
    from ..train.rundir import train_run
    from .plan import RunSpec

    spec = RunSpec.from_dict(job["spec"])
    result = train_run(spec.config, job["seeds"], job["chunk_dir"], data_dir=job.get("data_dir"),
                       device=job.get("device", "cpu"), progress=False, on_epoch=on_epoch, data=data)
    return {"job": job, "seconds": result.seconds}


def error_text(e: BaseException) -> str:
    """'Type: message' on the first line, then the traceback (a Ray task error: its cause's)."""
    cause = getattr(e, "cause", None)  # ray.exceptions.RayTaskError wraps the worker's exception
    shown = cause if isinstance(cause, BaseException) else e
    first = f"{type(shown).__name__}: {shown}".splitlines()[0].strip()
    return first + "\n\n" + "".join(traceback.format_exception(type(e), e, e.__traceback__)).strip()


class LocalExecutor:
    """Jobs one after another in this process, each job's seeds vectorised."""

    name = "local"

    def __init__(self, data_loader: Callable | None = None):
        self.data_loader = data_loader

    def run(self, jobs: list[dict], on_epoch_for: Callable[[dict], Callable] | None = None) -> Iterator[dict]:
        for job in jobs:
            try:
                data = self.data_loader(job) if self.data_loader else None
                result = run_job(job, on_epoch=on_epoch_for(job) if on_epoch_for else None, data=data)
            except Exception as e:  # one job's failure is recorded; KeyboardInterrupt still stops the sweep
                result = {"job": job, "error": error_text(e)}
            yield result


class RayExecutor:
    """Each job is one Ray task (requesting a GPU when the device is CUDA); results as they finish.

    A task whose worker dies is retried by Ray (``max_retries``); an exception
    raised by the job itself is not, since it would raise again.
    """

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
                job = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as e:  # RayTaskError (the job raised), WorkerCrashedError, …
                    result = {"job": job, "error": error_text(e)}
                yield result


def make_executor(backend: str, *, address: str | None = None, data_loader=None):
    if backend == "local":
        if address:
            raise ValueError("--address only applies to --backend ray")
        return LocalExecutor(data_loader)
    if backend == "ray":
        return RayExecutor(address)
    raise ValueError(f"unknown backend {backend!r}; choose 'local' or 'ray'")
