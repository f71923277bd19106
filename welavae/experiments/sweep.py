"""The sweep engine of ``welavae reproduce``: a plan end to end (paper §4.3–4.4: Table 1).

:func:`run_plan` reads resolve → register → run → finish: the plan's models
are resolved (:func:`welavae.resolve.resolve`: each data set read once, first,
so bad data are refused before anything is written) and registered in the
SQLite store; the jobs (the unfinished seeds of each
model, optionally in chunks of ``seeds_per_task``) run on an executor (local
or Ray), each evaluated in the driver and recorded as it finishes; then the
tables and figures are written.  The results folder's layout is owned by
:class:`~welavae.experiments.sweepdir.SweepDir`.

Resumable at every point: a (model, seed) pair is finished once its row is
in the database; a job's checkpoints live in its chunk directory, so a
killed sweep continues where the last checkpoint left it.  The database is
written in one transaction per job and the tables and arrays by atomic
renames, so an interruption never leaves a half-written file.

A job that fails (it raises, its data cannot be read, its Ray worker dies)
is recorded as ``failed`` with its error text; the other jobs go on, the
tables are written, and :func:`reproduce` then raises :class:`SweepFailed`
naming the models.  The same call again retries only what failed or is
missing.  A model whose every seed diverged is reported the same way but not
retrained: a seed's run is deterministic, it would diverge again.
"""
from __future__ import annotations

import dataclasses
import json
import sys

from tqdm import tqdm

from ..checkpoint import load_checkpoint
from ..data.load import load
from ..device import check_device, parse_device
from ..evaluate import evaluate_arrays, figure_task, plot_run
from ..lock import locking
from ..resolve import resolve
from ..run import Run
from ..train.trainer import check_seed_layout
from ..truth import ground_truth
from .analysis import write_analysis
from .executors import error_text, make_executor
from .plan import ModelSpec, RunSpec
from .report import summarise, write_distribution_plot, write_tables
from .store import ResultsStore
from .sweepdir import SweepDir, chunk_name

__all__ = ["run_plan", "resolve_plan", "SweepFailed", "plan_jobs"]


class SweepFailed(RuntimeError):
    """Some models failed; the others finished and the tables are written.

    ``failed``: model → one line saying why; ``table``: the rows written
    (as :func:`reproduce` would have returned them).
    """

    def __init__(self, failed: dict[str, str], table: list[dict]):
        self.failed, self.table = dict(failed), table
        why = "; ".join(f"{m}: {reason}" for m, reason in self.failed.items())
        super().__init__(f"{len(self.failed)} model{'s' if len(self.failed) != 1 else ''} failed "
                         f"({', '.join(self.failed)}) — {why}")


class _Progress:
    """One bar over the epochs of every job, its postfix the job training now; a line per finished job.

    The bar shows on a terminal (or when ``enabled``); the per-job lines show
    unless ``enabled`` is False, so a log file still says what finished.
    """

    def __init__(self, jobs: list[dict], enabled: bool | None):
        self.stream = sys.stderr
        self.lines = enabled is not False
        show = self.stream.isatty() if enabled is None else bool(enabled)
        self.epochs = {j["chunk_dir"]: j["spec"]["config"]["train"]["epochs"] for j in jobs}
        self.ticked = dict.fromkeys(self.epochs, 0)
        self.jobs, self.finished = len(jobs), 0
        self.bar = tqdm(total=sum(self.epochs.values()), unit="epoch", desc="reproduce", file=self.stream,
                        disable=not (show and jobs), dynamic_ncols=True)

    def on_epoch_for(self, job: dict):
        key, label = job["chunk_dir"], f"{job['spec']['model']} {chunk_name(job['seeds'])}"

        def tick(epoch: int, _means) -> None:
            self.bar.set_postfix_str(f"{label} epoch {epoch}/{self.epochs[key]}", refresh=False)
            self.ticked[key] += 1
            self.bar.update(1)

        return tick

    def job_done(self, job: dict, message: str) -> None:
        # Epochs trained before a resume, or inside a Ray worker, count when the job ends.
        key = job["chunk_dir"]
        self.bar.update(max(self.epochs[key] - self.ticked[key], 0))
        self.ticked[key] = self.epochs[key]
        self.finished += 1
        if self.lines:
            self.bar.write(f"[{self.finished}/{self.jobs}] {job['spec']['model']} "
                           f"{chunk_name(job['seeds'])}: {message}", file=self.stream)

    def close(self) -> None:
        self.bar.close()


def plan_jobs(plan: list[RunSpec], store: ResultsStore, out, *, seeds_per_task: int | None = None,
              device: str = "cpu", data_dir=None, tf32: bool = False, seed_layout: str = "auto") -> list[dict]:
    """The jobs still to run: per model, its seeds in chunks of ``seeds_per_task`` (default: one chunk),
    each chunk's unfinished seeds one job training into ``runs/<model>/chunks/seeds_a-b``.

    Chunks are cut from the model's full seed list, so a rerun finds an
    interrupted chunk's directory (and checkpoint) under the same name.
    """
    if seeds_per_task is not None and int(seeds_per_task) < 1:
        raise ValueError(f"--seeds-per-task must be >= 1, got {seeds_per_task}")
    jobs = []
    for spec in plan:
        done = store.finished(spec.model, spec.config.hash())
        size = int(seeds_per_task) if seeds_per_task else max(len(spec.seeds), 1)
        for start in range(0, len(spec.seeds), size):
            todo = [s for s in spec.seeds[start:start + size] if s not in done]
            if todo:
                chunk = str(SweepDir(out).chunk(spec.model, todo))
                jobs.append({"spec": spec.to_dict(), "seeds": todo, "chunk_dir": chunk,
                             "device": device, "data_dir": None if data_dir is None else str(data_dir),
                             "tf32": bool(tf32), "seed_layout": seed_layout})
    return jobs


def _row(model: str, config_hash: str, r: dict, seconds: float, epochs: int, environment=None, gamma=None) -> dict:
    diverged = r["diverged_epoch"] >= 0
    acc = r["accuracy"]
    return {
        "model": model,
        "seed": r["seed"],
        "config_hash": config_hash,
        "status": "diverged" if diverged else "done",
        "diverged_epoch": r["diverged_epoch"] if diverged else None,
        "epochs": epochs,
        "seconds": seconds,
        "polar_mse": None if diverged else r["polar"]["mse"],
        "polar_channels": json.dumps(r["polar"]["channels"]),
        "polar_inverted": json.dumps(r["polar"]["inverted"]),
        "cartesian_mse": None if diverged else r["cartesian"]["mse"],
        "cartesian_channels": json.dumps(r["cartesian"]["channels"]),
        "cartesian_inverted": json.dumps(r["cartesian"]["inverted"]),
        "acc_angle": acc[0] if acc else None,
        "acc_distance": acc[1] if acc and len(acc) > 1 else None,
        "metrics_json": json.dumps(r.get("standard")),
        "environment": environment,
        "gamma": gamma,
    }


def _finished_seeds(store: ResultsStore, model: str) -> list[int]:
    return sorted(row["seed"] for row in store.rows(model) if row["status"] in ("done", "diverged"))


def _checkpoint_hint(error: str, job: dict) -> str:
    """A job whose checkpoint is unreadable fails alike on every retry: its error says which file to delete."""
    ckpt = Run(job["chunk_dir"]).checkpoint
    if not ckpt.exists():
        return error
    try:
        load_checkpoint(ckpt)
    except ValueError:
        first, nl, rest = error.partition("\n")
        return f"{first}; delete {ckpt} and run the same command again (that chunk retrains from epoch 0){nl}{rest}"
    return error


def _best_seed_figure(out: SweepDir, spec: RunSpec, store: ResultsStore, images, *, only_missing: bool = False) -> None:
    """The figure of the model's best seed on its task (:func:`welavae.evaluate.figure_task`).

    images: the data set's images, or a function returning them (called only to draw).
    ``only_missing``: draw it only when that seed's figure is not there (a sweep stopped after
    recording the model and before its figure resumes into it).
    """
    key = f"{figure_task(spec.config)}_mse"
    rows = [r for r in store.rows(spec.model) if r["status"] == "done" and r[key] is not None]
    if not rows:
        return
    best = min(rows, key=lambda r: r[key])
    if only_missing and (out.figures / f"{spec.config.name}_seed{best['seed']}.png").exists():
        return
    found = out.chunks_by_seed(spec.model)
    if best["seed"] in found:
        plot_run(found[best["seed"]][0], seed=best["seed"], out_dir=out.figures,
                 data=images() if callable(images) else images)


class _DataSets:
    """Each data set of a sweep read once (:func:`welavae.data.load`); the models on one data config share
    one images array (Blobs for p = 2 … 8: one set of pixels, seven label arrays).  Called as
    ``read(data_config, label_dim)`` by :func:`welavae.resolve.resolve`, and ``for_spec(spec)`` by the jobs."""

    def __init__(self, data_dir):
        self.data_dir, self.cache, self.by_model = data_dir, {}, {}

    def __call__(self, data, label_dim=None):
        key = json.dumps(data.__dict__, sort_keys=True, default=str)
        if (key, label_dim) not in self.cache:
            ds = load(data, data_dir=self.data_dir, label_dim=label_dim)
            shared = self.cache.setdefault(key, ds)
            self.cache[(key, label_dim)] = dataclasses.replace(ds, images=shared.images)
        return self.cache[(key, label_dim)]

    def for_spec(self, spec: RunSpec):
        return self.by_model[spec.model]


def resolve_plan(plan: list[ModelSpec], data: _DataSets) -> list[RunSpec]:
    """Each :class:`ModelSpec` resolved (:func:`welavae.resolve.resolve`) into a :class:`RunSpec`; its data set
    kept in ``data`` for the jobs."""
    specs = []
    for m in plan:
        config, ds = resolve(m.data, m.kind, label_dim=m.label_dim, data_dir=data.data_dir, read=data, **m.hyper)
        data.by_model[m.model] = ds
        specs.append(RunSpec(m.model, config, tuple(m.seeds)))
    if len({s.model for s in specs}) != len(specs):
        raise ValueError(f"models listed twice: {[s.model for s in specs]}")
    return specs


def _register(store: ResultsStore, plan: list[RunSpec]) -> None:
    for spec in plan:
        cfg = spec.config
        store.register_model(
            spec.model, cfg.hash(), cfg.to_json(), beta=cfg.objective.beta,
            gamma=cfg.label_weight,  # γ, or S2's γ_sup
            label_dim=cfg.model.label_dim or None, latent_dim=cfg.model.latent_dim,
            regulariser=cfg.objective.regulariser, gamma_target=cfg.objective.gamma_target,
        )


def _evaluate(job: dict, spec: RunSpec, data: _DataSets, standard: str) -> list[dict]:
    """The store's rows of a finished job, from its chunk directory."""
    run = Run(job["chunk_dir"])
    factors = run.array("factors")
    factors = ground_truth(spec.config, factors if factors is not None else data.for_spec(spec).factors)
    evals = evaluate_arrays(run.mu, factors, label_pred=run.array("label_pred"), labels=run.array("labels"),
                            observed=run.array("observed"), logvar=run.array("logvar"), seeds=run.seeds,
                            diverged_epoch=run.diverged_epoch, standard=standard)
    return [_row(spec.model, spec.config.hash(), r, run.status["seconds"], run.status["epochs"],
                 run.status.get("environment"), gamma) for r, gamma in zip(evals, run.gamma)]


def _run(jobs, executor, by_model: dict[str, RunSpec], store: ResultsStore, out: SweepDir, data: _DataSets,
         standard: str, progress) -> dict[str, str]:
    """Run the jobs, record each as it finishes, merge a model's arrays and draw its figure once its last
    job is in; returns model → why it failed."""
    failed: dict[str, str] = {}
    pending = {m: sum(j["spec"]["model"] == m for j in jobs) for m in by_model}
    trained: set[str] = set()
    bar = _Progress(jobs, progress)
    try:
        for result in executor.run(jobs, on_epoch_for=bar.on_epoch_for):
            job = result["job"]
            spec = by_model[job["spec"]["model"]]
            error = result.get("error")
            if error is None:
                try:
                    rows = _evaluate(job, spec, data, standard)
                except Exception as e:  # an unreadable chunk: as if the job had raised
                    error = error_text(e)
            if error is None:
                store.record(rows)
                trained.add(spec.model)
                polar = [r["polar_mse"] for r in rows if r["polar_mse"] is not None]
                best = f"best polar MSE {min(polar):.1f}" if polar else "all seeds diverged"
                seeds_ = f"{len(rows)} seed{'s' if len(rows) != 1 else ''}"
                bar.job_done(job, f"{seeds_} in {result['seconds']:.0f}s, {best}")
            else:
                error = _checkpoint_hint(error, job)
                store.record([{"model": spec.model, "seed": s, "config_hash": spec.config.hash(),
                               "status": "failed", "error": error} for s in job["seeds"]])
                failed[spec.model] = error.splitlines()[0]
                bar.job_done(job, f"FAILED: {failed[spec.model]}")
            pending[spec.model] -= 1
            if pending[spec.model] == 0 and spec.model in trained:
                out.merge(spec.model, _finished_seeds(store, spec.model))
                _best_seed_figure(out, spec, store, data.for_spec(spec).images)
    finally:
        bar.close()
    return failed


def _finish(out: SweepDir, plan: list[RunSpec], store: ResultsStore, failed: dict[str, str], trained: bool,
            data: _DataSets):
    """Merge what a killed sweep left unmerged, draw the best-seed figures it left undrawn, name the models
    whose every seed diverged, write the tables."""
    for spec in plan:
        finished = _finished_seeds(store, spec.model)
        if out.merged_seeds(spec.model) != finished:  # e.g. killed between recording and merging
            out.merge(spec.model, finished)
        if finished:
            _best_seed_figure(out, spec, store, lambda spec=spec: data.for_spec(spec).images, only_missing=True)
        rows = [r for r in store.rows(spec.model)
                if r["config_hash"] == spec.config.hash() and r["status"] in ("done", "diverged")]
        if spec.model not in failed and rows and all(r["status"] == "diverged" for r in rows):
            failed[spec.model] = (f"all {len(rows)} finished seeds diverged (non-finite loss); "
                                  "not retried, as a seed's run is deterministic")
    table = summarise(store)
    write_tables(table, out.path)
    write_analysis(out.path, plan, store)
    if trained or not (out.figures / "mse_distributions.png").exists():
        write_distribution_plot(store, out.figures / "mse_distributions.png")
    return table


@locking("out")  # one sweep at a time per results folder (welavae.lock)
def run_plan(
    plan: list[ModelSpec],
    *,
    out="results",
    preset: str | None = None,
    seeds_per_task: int | None = None,
    backend: str = "local",
    address: str | None = None,
    device: str = "cpu",
    data_dir=None,
    progress: bool | None = None,
    standard: str = "best",
    tf32: bool = False,
    gpus_per_task: float | None = None,
    cpus_per_task: float | None = None,
    seed_layout: str = "auto",
) -> list[dict]:
    """Run (or resume) a plan into ``out``; returns the table rows.

    Writes ``plan.json`` (``preset``: the name it records), ``table.csv``,
    ``table.md``, ``results.sqlite``, ``runs/<model>/{mu.npy, factors.npy,
    seeds.json}``, ``figures/`` (best seed per model, and
    ``mse_distributions.png``), ``seeds.csv``, ``selection.md`` and, for
    variant plans, ``questions.md`` (:mod:`welavae.experiments.analysis`).
    Finished (model, seed) pairs are skipped, so the same call again finishes
    in seconds.  ``seeds_per_task``: train a model's seeds in jobs of at most
    this many (default: all in one), e.g. to spread one model over a Ray
    cluster.  ``progress``: the bar (None: on a terminal only; False: silent).
    ``standard``: the disentanglement_lib metrics of each job's ``"best"``
    seed, of ``"all"`` seeds, or ``"none"``
    (:func:`welavae.evaluate.evaluate_arrays`).  ``tf32``: TF32 CUDA matmuls
    (default off: exact float32).  ``gpus_per_task`` / ``cpus_per_task``: Ray
    resources of a job (:class:`welavae.experiments.executors.RayExecutor`).  ``seed_layout``: how every
    job's convolutions run their seeds (:func:`welavae.train.train`).

    Raises :class:`SweepFailed` (after writing everything) when a model
    failed; its ``table`` holds the rows.
    """
    # A Ray cluster's GPUs are not this machine's: there, only the name is checked here.
    (check_device if backend == "local" else parse_device)(device)
    check_seed_layout(seed_layout)
    out = SweepDir(out)
    data = _DataSets(data_dir)
    specs = resolve_plan(plan, data)  # every data set read and checked before anything is written
    by_model = {s.model: s for s in specs}
    # Validate the backend (and connect to Ray) before anything is written.
    executor = make_executor(backend, address=address,
                             data_loader=lambda job: data.for_spec(by_model[job["spec"]["model"]]), device=device,
                             gpus_per_task=gpus_per_task, cpus_per_task=cpus_per_task)
    out.write_plan(preset, specs)
    with ResultsStore(out.database) as store:
        _register(store, specs)
        jobs = plan_jobs(specs, store, out.path, seeds_per_task=seeds_per_task, device=device, data_dir=data_dir,
                         tf32=tf32, seed_layout=seed_layout)
        failed = _run(jobs, executor, by_model, store, out, data, standard, progress)
        table = _finish(out, specs, store, failed, trained=bool(jobs), data=data)
    if failed:
        raise SweepFailed(failed, table)
    return table
