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
import uuid
from collections.abc import Callable, Iterator

from ..device import parse_device
from ..run import Run
from ..train.rundir import train_run
from .plan import RunSpec

__all__ = ["run_job", "LocalExecutor", "RayExecutor", "make_executor", "error_text"]


def run_job(job: dict, on_epoch: Callable | None = None, data=None) -> dict:
    """Train one job (resuming from its checkpoint) and write its chunk directory.

    job: ``{"spec": RunSpec.to_dict(), "seeds": [...], "chunk_dir": str,
    "device": str, "data_dir": str | None, "tf32": bool, "seed_layout": str}``, and ``"lock_owner"`` for a job
    that may run again elsewhere (a Ray task): the chunk's lock is held for
    it, so a retry takes over what a lost attempt left (:func:`welavae.lock.lock_dir`).
    """
    spec = RunSpec.from_dict(job["spec"])
    with Run(job["chunk_dir"]).locked(owner=job.get("lock_owner")):  # train_run re-enters it
        result = train_run(spec.config, job["seeds"], job["chunk_dir"], data_dir=job.get("data_dir"),
                           device=job.get("device", "cpu"), progress=False, on_epoch=on_epoch, data=data,
                           tf32=job.get("tf32", False), seed_layout=job.get("seed_layout", "auto"))
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
    """Each job is one Ray task; results as they finish.

    A CUDA job asks Ray for ``gpus_per_task`` GPUs (default 1; a fraction,
    e.g. 0.25, lets four small jobs share one GPU) and ``cpus_per_task``
    CPUs (default 1).  Ray then narrows the worker's ``CUDA_VISIBLE_DEVICES``
    to the GPU it assigned, which the worker sees as ``cuda`` (index 0): a
    ``cuda:N`` asked for here names no GPU there, so jobs run on ``cuda`` and
    Ray chooses the GPU.  A cluster with fewer GPUs than one task asks for
    is refused before anything is submitted (its tasks would wait forever).
    A task whose worker dies is retried by Ray (``max_retries``); an
    exception raised by the job itself is not, since it would raise again.
    A retry finds the chunk directory as the lost attempt left it: its last
    checkpoint (resumed), and the lock that attempt held, which the retry takes
    over because both carry the job's ``lock_owner``, drawn here once per
    submission (the lost worker's host may be gone, or not yet know it is lost).
    """
    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, *, device="cpu",
                 gpus_per_task: float | None = None, cpus_per_task: float | None = None):

        cuda = parse_device(device).type == "cuda"
        self.resources = _task_resources(cuda, gpus_per_task, cpus_per_task)
        try:
            import ray
        except ImportError:
            raise ValueError("the ray backend needs Ray: pip install 'wela-vae[ray]'") from None
        self.ray = ray
        if not ray.is_initialized():
            kwargs = {"address": address} if address else {"num_cpus": num_cpus}
            ray.init(ignore_reinit_error=True, log_to_driver=False, include_dashboard=False, **kwargs)
        self.device = "cuda" if cuda else "cpu"
        if cuda:
            have = float(ray.cluster_resources().get("GPU", 0))
            if have < self.resources["num_gpus"]:
                raise ValueError(f"--device {device} asks each Ray task for {self.resources['num_gpus']:g} GPU "
                                 f"but the Ray cluster has {have:g}; start Ray on GPU machines or use --device cpu")

    def run(self, jobs: list[dict], on_epoch_for=None) -> Iterator[dict]:
        ray = self.ray
        pending = {}
        task = ray.remote(max_retries=2, **self.resources)(run_job)
        for job in jobs:
            # The worker's device as the worker sees it (see the class docstring); the result keeps the job as given.
            pending[task.remote(dict(job, device=self.device, lock_owner=f"ray job {uuid.uuid4().hex}"))] = job
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                job = pending.pop(ref)
                try:
                    result = dict(ray.get(ref), job=job)
                except Exception as e:  # RayTaskError (the job raised), WorkerCrashedError, …
                    result = {"job": job, "error": error_text(e)}
                yield result


def _task_resources(cuda: bool, gpus: float | None, cpus: float | None) -> dict:
    """Ray's ``num_gpus`` / ``num_cpus`` of one task, validated (Ray takes a fraction of one GPU, or whole GPUs)."""
    if gpus is not None and not cuda:
        raise ValueError("--gpus-per-task applies to --device cuda only")
    gpus = (1.0 if gpus is None else float(gpus)) if cuda else 0.0
    cpus = 1.0 if cpus is None else float(cpus)
    if cuda and not (0 < gpus <= 1 or (gpus > 1 and gpus == int(gpus))):
        raise ValueError(f"--gpus-per-task must be a fraction in (0, 1] or a whole number of GPUs, got {gpus:g}")
    if not cpus > 0:
        raise ValueError(f"--cpus-per-task must be > 0, got {cpus:g}")
    return {"num_gpus": gpus, "num_cpus": cpus}


def make_executor(backend: str, *, address: str | None = None, data_loader=None, device="cpu",
                  gpus_per_task: float | None = None, cpus_per_task: float | None = None):
    if backend == "local":
        if address:
            raise ValueError("--address only applies to --backend ray")
        if gpus_per_task is not None or cpus_per_task is not None:
            raise ValueError("--gpus-per-task and --cpus-per-task apply to --backend ray only")
        return LocalExecutor(data_loader)
    if backend == "ray":
        return RayExecutor(address, device=device, gpus_per_task=gpus_per_task, cpus_per_task=cpus_per_task)
    raise ValueError(f"unknown backend {backend!r}; choose 'local' or 'ray'")
