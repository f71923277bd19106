"""The results folder of ``welavae reproduce``: its layout, and :class:`SweepDir`, which writes and reads it
(as :class:`welavae.run.Run` owns a run directory).

``plan.json``                       the plan run: preset and run specs
``results.sqlite``                  one row per (model, seed) (:class:`~welavae.experiments.store.ResultsStore`)
``table.csv``, ``table.md``, …      the tables (:mod:`welavae.experiments.report`, ``analysis``)
``runs/<model>/chunks/seeds_a-b/``  one job's run directory (:class:`welavae.run.Run`), its checkpoint
                                    and ``status.json``: a chunk is finished once that file exists
``runs/<model>/mu.npy``             (S, N, K) float32 encoder means of the model's finished seeds, ascending
``runs/<model>/seeds.json``         those seeds
``runs/<model>/factors.npy``        (N, 2) true factors
``figures/``                        the best seed of each model, the MSE distributions

Every file is written atomically (:mod:`welavae.io`).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..io import write_npy, write_text
from ..run import Run
from .plan import RunSpec

__all__ = ["SweepDir", "chunk_name"]


def chunk_name(seeds) -> str:
    """A directory name for a seed list: 'seeds_0-7' for a range, else a short hash of the list."""
    seeds = list(seeds)
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"seeds_{seeds[0]}-{seeds[-1]}"
    return "seeds_" + hashlib.sha1(",".join(map(str, seeds)).encode()).hexdigest()[:10]


class SweepDir:
    """A results folder (see the module docstring)."""

    PLAN, DATABASE, FIGURES, RUNS, CHUNKS, SEEDS = "plan.json", "results.sqlite", "figures", "runs", "chunks", \
        "seeds.json"

    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"SweepDir({str(self.path)!r})"

    @property
    def database(self) -> Path:
        return self.path / self.DATABASE

    @property
    def figures(self) -> Path:
        return self.path / self.FIGURES

    def model_dir(self, model: str) -> Path:
        return self.path / self.RUNS / model

    def chunk(self, model: str, seeds) -> Path:
        """The run directory of one job: ``runs/<model>/chunks/<chunk_name(seeds)>``."""
        return self.model_dir(model) / self.CHUNKS / chunk_name(seeds)

    def write_plan(self, preset: str | None, plan: list[RunSpec]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_text(self.path / self.PLAN,
                   json.dumps({"preset": preset, "runs": [s.to_dict() for s in plan]}, indent=2) + "\n")

    def plan(self) -> list[RunSpec]:
        """The resolved plan the last sweep into this folder ran (``plan.json``)."""
        path = self.path / self.PLAN
        try:
            return [RunSpec.from_dict(r) for r in json.loads(path.read_text())["runs"]]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path} is not a readable plan ({type(e).__name__}: {e})") from None

    def chunks_by_seed(self, model: str) -> dict[int, tuple[Path, int]]:
        """seed → (chunk directory, index in its mu.npy) over the finished chunks of a model.

        A seed trained in two chunks (its first job failed after training, the
        retry was cut into other chunks) is taken from the chunk finished last.
        """
        chunks = []
        for status_path in (self.model_dir(model) / self.CHUNKS).glob(f"*/{Run.STATUS}"):
            chunks.append((status_path.stat().st_mtime_ns, status_path.parent.name, status_path))
        found = {}
        for _, _, status_path in sorted(chunks):
            for i, s in enumerate(json.loads(status_path.read_text())["seeds"]):
                found[int(s)] = (status_path.parent, i)
        return found

    def merged_seeds(self, model: str) -> list[int] | None:
        """The seeds of ``runs/<model>/mu.npy`` (seeds.json), or None when there is none or it is unreadable."""
        try:
            return json.loads((self.model_dir(model) / self.SEEDS).read_text())
        except (OSError, ValueError):
            return None

    def merge(self, model: str, seeds) -> None:
        """``runs/<model>/mu.npy`` (S, N, K) over ``seeds`` (those of them in finished chunks, ascending),
        with ``seeds.json`` and ``factors.npy``; nothing when none is."""
        found = self.chunks_by_seed(model)
        seeds = sorted(s for s in seeds if s in found)
        if not seeds:
            return
        mus = {chunk: np.load(chunk / "mu.npy", mmap_mode="r") for chunk in {found[s][0] for s in seeds}}
        mu = np.stack([np.asarray(mus[found[s][0]][found[s][1]]) for s in seeds]).astype(np.float32)
        model_dir = self.model_dir(model)
        write_npy(model_dir / "mu.npy", mu)
        write_text(model_dir / self.SEEDS, json.dumps(seeds) + "\n")
        factors = found[seeds[0]][0] / "factors.npy"
        if factors.exists():
            write_npy(model_dir / "factors.npy", np.load(factors))
