"""``welavae reproduce``: Table 1 end to end (paper §4.3–4.4).

plan → jobs (the unfinished seeds of each model) → executor (local or Ray)
→ evaluation in the driver → SQLite store → tables, figures.

Resumable at every point: a (model, seed) pair is finished once its row is
in the database; a job's checkpoints live in its chunk directory, so a
killed sweep continues where the last checkpoint left it.  The database is
written in one transaction per job and the tables and arrays by atomic
renames, so an interruption never leaves a half-written file.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from ..data.blobs import weak_labels
from ..evaluate import evaluate_arrays, plot_run
from ..train.run import prepare_data, read_run, write_npy, write_text
from .executors import chunk_path, make_executor
from .plan import RunSpec, make_plan
from .report import summarise, write_distribution_plot, write_tables
from .store import ResultsStore

__all__ = ["reproduce", "SweepProgress"]


class SweepProgress:
    """Models done, the current model's epoch and an ETA — one line on a terminal, plain lines otherwise."""

    def __init__(self, total_epochs: int, enabled: bool | None = None, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if enabled is None else enabled
        self.total = max(total_epochs, 1)
        self.done = 0
        self.start = time.perf_counter()
        self.models_done = 0
        self.models_total = 0

    def epoch(self, model: str, epoch: int, epochs: int) -> None:
        self.done += 1
        if not self.tty:
            return
        rate = (time.perf_counter() - self.start) / self.done
        eta = rate * (self.total - self.done)
        self.stream.write(f"\r[{self.models_done}/{self.models_total} models] {model}: epoch {epoch}/{epochs}  "
                          f"ETA {int(eta // 60)}:{int(eta % 60):02d}   ")
        self.stream.flush()

    def model_done(self, model: str, message: str) -> None:
        self.models_done += 1
        prefix = "\r" if self.tty else ""
        self.stream.write(f"{prefix}[{self.models_done}/{self.models_total} models] {model}: {message}\n")
        self.stream.flush()


def _row(model: str, config_hash: str, r: dict, seconds: float, epochs: int) -> dict:
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
    }


def _merge_model_arrays(out: Path, model: str, store: ResultsStore) -> None:
    """runs/<model>/mu.npy (S, N, K) over all finished seeds (ascending), with seeds.json and factors.npy."""
    model_dir = out / "runs" / model
    finished = {}
    for status_path in sorted((model_dir / "chunks").glob("*/status.json")):
        chunk = status_path.parent
        seeds = json.loads(status_path.read_text())["seeds"]
        mu = np.load(chunk / "mu.npy", mmap_mode="r")
        for i, s in enumerate(seeds):
            finished[s] = (chunk, i, mu)
    recorded = {row["seed"] for row in store.rows(model)}
    seeds = sorted(s for s in finished if s in recorded)
    if not seeds:
        return
    mu = np.stack([np.asarray(finished[s][2][finished[s][1]]) for s in seeds]).astype(np.float32)
    write_npy(model_dir / "mu.npy", mu)
    write_text(model_dir / "seeds.json", json.dumps(seeds) + "\n")
    factors = finished[seeds[0]][0] / "factors.npy"
    if factors.exists():
        write_npy(model_dir / "factors.npy", np.load(factors))


def _best_seed_figure(out: Path, model: str, store: ResultsStore, images) -> None:
    rows = [r for r in store.rows(model) if r["status"] == "done" and r["polar_mse"] is not None]
    if not rows:
        return
    best = min(rows, key=lambda r: r["polar_mse"])
    for status_path in (out / "runs" / model / "chunks").glob("*/status.json"):
        if best["seed"] in json.loads(status_path.read_text())["seeds"]:
            chunk = status_path.parent
            plot_run(chunk, seed=best["seed"], out_dir=out / "figures", data=images)
            return


def reproduce(
    preset: str = "quick",
    *,
    out="results",
    seeds: int | None = None,
    epochs: int | None = None,
    models=None,
    backend: str = "local",
    address: str | None = None,
    device: str = "cpu",
    data_dir=None,
    progress: bool | None = None,
    plan: list[RunSpec] | None = None,
) -> list[dict]:
    """Run (or resume) the Table-1 sweep into ``out``; returns the table rows.

    Writes ``table.csv``, ``table.md``, ``results.sqlite``,
    ``runs/<model>/{mu.npy, factors.npy, seeds.json}``, ``figures/`` (best
    seed per model, and ``mse_distributions.png``).  Finished (model, seed)
    pairs are skipped, so the same command again finishes in seconds.
    ``plan``: an explicit list of :class:`RunSpec` instead of the preset's.
    """
    out = Path(out)
    if plan is None:
        plan = make_plan(preset, seeds=seeds, epochs=epochs, models=models)
    by_model = {s.model: s for s in plan}
    # Validate the backend (and connect to Ray) before anything is written.
    executor = make_executor(backend, address=address,
                             data_loader=lambda job: load(by_model[job["spec"]["model"]]))
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "plan.json", json.dumps({"preset": preset, "runs": [s.to_dict() for s in plan]}, indent=2) + "\n")
    data_cache: dict = {}

    def load(spec: RunSpec):
        """(images, labels, factors) for a spec; the data set is built once per data config."""
        key = json.dumps(spec.config.data.__dict__, sort_keys=True, default=str)
        if key not in data_cache:
            images, _, factors = prepare_data(spec.config, data_dir=data_dir)
            data_cache[key] = (images, factors)
        images, factors = data_cache[key]
        labels = weak_labels(factors, spec.config.model.label_dim, size=spec.config.data.size) \
            if spec.config.model.has_labels else None
        return images, labels, factors

    jobs = []
    with ResultsStore(out / "results.sqlite") as store:
        for spec in plan:
            cfg = spec.config
            store.register_model(
                spec.model, cfg.hash(), cfg.to_json(), beta=cfg.objective.beta,
                gamma=cfg.objective.gamma if cfg.model.has_labels else None,
                label_dim=cfg.model.label_dim or None, latent_dim=cfg.model.latent_dim,
                regulariser=cfg.objective.regulariser,
            )
            done = store.finished(spec.model, cfg.hash())
            todo = [s for s in spec.seeds if s not in done]
            if todo:
                jobs.append({"spec": spec.to_dict(), "seeds": todo, "chunk_dir": str(chunk_path(out, spec.model, todo)),
                             "device": device, "data_dir": None if data_dir is None else str(data_dir)})
        bar = SweepProgress(sum(by_model[j["spec"]["model"]].config.train.epochs for j in jobs), progress)
        bar.models_total = len(jobs)

        def on_epoch_for(job):
            model, epochs_ = job["spec"]["model"], job["spec"]["config"]["train"]["epochs"]
            return lambda epoch, _means: bar.epoch(model, epoch, epochs_)

        for result in executor.run(jobs, on_epoch_for=on_epoch_for):
            spec = by_model[result["model"]]
            run = read_run(result["chunk_dir"])
            factors = run["factors"] if run["factors"] is not None else load(spec)[2]
            status = run["status"]
            evals = evaluate_arrays(run["mu"], factors, label_pred=run["label_pred"], labels=run["labels"],
                                    seeds=status["seeds"], diverged_epoch=status["diverged_epoch"])
            rows = [_row(spec.model, spec.config.hash(), r, status["seconds"], status["epochs"]) for r in evals]
            store.record(rows)
            _merge_model_arrays(out, spec.model, store)
            _best_seed_figure(out, spec.model, store, load(spec)[0])
            polar = [r["polar_mse"] for r in rows if r["polar_mse"] is not None]
            best = f"best polar MSE {min(polar):.1f}" if polar else "all seeds diverged"
            bar.model_done(spec.model, f"{len(rows)} seeds in {status['seconds']:.0f}s, {best}")
        table = summarise(store)
        write_tables(table, out)
        if jobs or not (out / "figures" / "mse_distributions.png").exists():
            write_distribution_plot(store, out / "figures" / "mse_distributions.png")
    return table

