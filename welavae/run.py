"""The run directory: its layout, and :class:`Run`, which writes and reads it.

Everything that reads or writes a run directory goes through :class:`Run`
(training, ``evaluate``, ``plot``, ``encode``, ``select``, ``reproduce``):

``config.json``         resolved :class:`~welavae.config.RunConfig`
``checkpoints/last.pt`` weights, Adam state, history (weights-only torch file, :mod:`welavae.checkpoint`)
``model.safetensors``   every seed's weights in ``nn.Linear`` layout, config in the metadata
``mu.npy``              (S, N, K) float32 encoder means, seeds in the order of ``status.json``
``logvar.npy``          (S, N, K) float32 encoder log-variances
``label_pred.npy``      (S, N, m) int8 label predictions at z = μ (models with labels)
``labels.npy``          (N, m) int64 weak labels, −1 where unknown (models with labels)
``observed.npy``        (N, m) bool, the labels the model was trained with (the rest were hidden)
``factors.npy``         (N, F) true generative factors (when known)
``data.npz``            the arrays a run trained by :func:`welavae.fit` was given (:mod:`welavae.data.npz`)
``history.csv``         per-epoch loss terms per seed
``status.json``         seeds, diverged epochs, epochs, wall time
``tracking.csv``        polar and Cartesian MSE of every seed every E epochs (``--track-every``)
``metrics.json``        written by ``welavae evaluate``
``figures/``            written by ``welavae plot``
``.welavae.lock``       present while a command writes the directory (:mod:`welavae.lock`)

All files are written atomically (:mod:`welavae.io`); a command that writes
holds the directory's lock (:meth:`Run.locked`), so two never write one run.
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from .checkpoint import load_checkpoint, model_from_checkpoint
from .config import RunConfig
from .data.fingerprint import fingerprint
from .data.load import load
from .data.npz import save_npz
from .io import write_npy, write_text
from .lock import lock_dir

__all__ = ["Run"]

ARRAYS = ("mu", "logvar", "label_pred", "labels", "observed", "factors")


class Run:
    """A run directory (see the module docstring).  Arrays are read lazily and cached."""

    CONFIG, STATUS, METRICS, HISTORY = "config.json", "status.json", "metrics.json", "history.csv"
    CHECKPOINT, WEIGHTS, FIGURES = "checkpoints/last.pt", "model.safetensors", "figures"
    TRACKING, ARRAYS = "tracking.csv", "data.npz"
    #: tracking.csv's columns: epoch and seed, then the MSEs (empty for a diverged seed).
    TRACK_COLUMNS = ("epoch", "seed", "polar_mse", "cartesian_mse")

    def __init__(self, path):
        self.path = Path(path)
        self._cache: dict = {}

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    # ------------------------------------------------------------ writing ---

    def locked(self, command: str | None = None, *, create: bool = True, owner: str | None = None):
        """Context manager: hold the directory's exclusive lock (:func:`welavae.lock.lock_dir`) while writing it,
        or while reading it whole (``create=False``: a missing directory is not made, its reader says so);
        ``owner``: the work it is held for, whose retries may take it over (:func:`~welavae.lock.lock_dir`)."""
        return lock_dir(self.path, command=command, create=create, owner=owner)

    def is_run(self) -> bool:
        """Whether the directory holds a run (its config.json, and a checkpoint or status.json), finished or not."""
        return (self.path / self.CONFIG).is_file() and ((self.path / self.STATUS).exists() or self.checkpoint.exists())

    def start(self, config: RunConfig, seeds=None) -> None:
        """Claim the directory for ``config`` (and ``seeds``): refuse one that holds another run, or this run
        trained on other data, else write config.json.

        A run's seeds are never replaced: ``seeds`` other than those the
        directory already trained (``status.json``) or is training (its
        checkpoint) are refused, naming both, before anything is written.
        Nor are its data: a config whose data fingerprint differs from the
        one recorded (:meth:`~welavae.config.RunConfig.same_data`), or from
        the arrays kept in ``data.npz``, is refused in one sentence.
        """
        path = self.path / self.CONFIG
        held = None
        if path.exists():
            old = self.config
            if not old.same_config(config):
                raise ValueError(f"{self.path} holds a run with another configuration; use a new --out directory")
            held = old.data.fingerprint
            if seeds is not None:
                trained = self._held_seeds()
                if trained is not None and list(trained) != [int(s) for s in seeds]:
                    raise ValueError(f"{self.path} already holds seeds {_seed_text(trained)} of this configuration; "
                                     f"train seeds {_seed_text(seeds)} into a new --out directory "
                                     "(a run's seeds are never replaced)")
        if held is None and config.data.source == "arrays" and self.arrays_file.exists():
            held = fingerprint(config.data, load(config, arrays=self.arrays_file))  # a run from before fingerprints
        want = config.data.fingerprint
        if held is not None and want is not None and held != want:
            raise ValueError(self._other_data(config.data))
        write_text(path, config.to_json() + "\n")
        self._cache.clear()

    def _other_data(self, data) -> str:
        """The sentence refusing data that are not those this run was trained on."""
        if data.source == "arrays":
            return (f"{self.path} was trained on other data: the arrays given differ from those it was trained on, "
                    f"kept in {self.arrays_file} (never overwritten); fit them into a new out directory")
        what = {"npz": data.path, "benchmark": data.data_path,
                "images": data.path if not data.labels_path else f"{data.path} (or {data.labels_path})"}[data.source]
        return (f"{self.path} was trained on other data: {what} changed since the run read it; restore the file it "
                "was trained on, or train on this one into a new --out directory")

    def keep_arrays(self, data) -> None:
        """Keep the in-memory arrays a run trains on (:func:`welavae.fit`) as ``data.npz``, written once: an
        existing one is this run's (:meth:`start` compared it) and is never overwritten."""
        if not self.arrays_file.exists():
            save_npz(self.arrays_file, data)

    def _held_seeds(self) -> list[int] | None:
        """The seeds this directory trained (status.json) or is training (its checkpoint); None if neither."""
        if (self.path / self.STATUS).exists():
            return self.seeds
        if self.checkpoint.exists():
            return load_checkpoint(self.checkpoint)["seeds"].tolist()
        return None

    def write_arrays(self, **arrays) -> None:
        """Any of :data:`ARRAYS` as ``.npy``, with their dtypes fixed by the layout."""
        dtypes = {"mu": np.float32, "logvar": np.float32, "label_pred": np.int8, "labels": np.int64,
                  "observed": bool, "factors": np.float64}
        for name, value in arrays.items():
            if name not in dtypes:
                raise ValueError(f"unknown run array {name!r}")
            if value is not None:
                write_npy(self.path / f"{name}.npy", np.asarray(value).astype(dtypes[name]))
                self._cache.pop(name, None)

    def write_history(self, history: np.ndarray, seeds, terms, gamma: np.ndarray | None = None) -> None:
        """history (epochs, S, T) and γ (epochs, S) → ``history.csv``, the terms then ``gamma`` (empty cells after
        divergence, and γ's for a model without labels)."""
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["epoch", "seed", *terms, "gamma"])
        gamma = np.full(history.shape[:2], np.nan) if gamma is None else np.asarray(gamma, dtype=np.float64)
        for e, (rows, gammas) in enumerate(zip(history, gamma)):
            for s, row, g in zip(seeds, rows, gammas):
                w.writerow([e + 1, s, *("" if math.isnan(v) else f"{v:.6g}" for v in (*row, g))])
        write_text(self.path / self.HISTORY, buf.getvalue())

    def write_json(self, name: str, content: dict) -> None:
        write_text(self.path / name, json.dumps(content, indent=2, allow_nan=True) + "\n")
        self._cache.pop(name, None)

    # ------------------------------------------------------------ reading ---

    def _need(self, name: str) -> Path:
        p = self.path / name
        if not p.exists():
            raise ValueError(f"{self.path} is not a finished run directory: {name} is missing")
        return p

    def _json(self, name: str, what: str = "a JSON file") -> dict:
        """A JSON file of the run, or one sentence naming it when it is truncated or not JSON."""
        p = self._need(name)
        try:
            content = json.loads(p.read_bytes())
        except ValueError:  # JSONDecodeError, UnicodeDecodeError
            content = None
        if not isinstance(content, dict):
            raise ValueError(f"{p} is truncated or not {what}; restore it, or train the run again into a new "
                             "--out directory")
        return content

    @property
    def config(self) -> RunConfig:
        if "config" not in self._cache:
            content = self._json(self.CONFIG, "a welavae config.json")
            try:
                self._cache["config"] = RunConfig.from_dict(content)
            except (ValueError, TypeError, AttributeError) as e:
                raise ValueError(f"{self.path / self.CONFIG} is not a welavae config.json ({e})") from None
        return self._cache["config"]

    @property
    def status(self) -> dict:
        if "status" not in self._cache:
            self._cache["status"] = self._json(self.STATUS)
        return self._cache["status"]

    @property
    def seeds(self) -> list[int]:
        return list(self.status["seeds"])

    @property
    def diverged_epoch(self) -> list[int]:
        return list(self.status["diverged_epoch"])

    @property
    def gamma(self) -> list[float | None]:
        """The γ each seed ended with (``--gamma auto``: found in training); a fixed γ for every seed of a run
        written before γ was recorded; None for a model without labels."""
        if self.status.get("gamma") is not None:
            return list(self.status["gamma"])
        fixed = self.config.objective.gamma if self.config.model.has_labels else None
        return [fixed] * len(self.seeds)

    def array(self, name: str) -> np.ndarray | None:
        """One of :data:`ARRAYS`; None when the run has none (``mu`` must exist)."""
        if name not in ARRAYS:
            raise ValueError(f"unknown run array {name!r}")
        if name not in self._cache:
            p = self.path / f"{name}.npy"
            if name == "mu":
                self._need("mu.npy")
            self._cache[name] = _load_npy(p) if p.exists() else None
        return self._cache[name]

    @property
    def mu(self) -> np.ndarray:
        return self.array("mu")

    def metrics(self) -> dict:
        return self._json(self.METRICS)

    def history(self) -> list[dict]:
        with open(self._need(self.HISTORY), newline="") as f:
            return list(csv.DictReader(f))

    @property
    def checkpoint(self) -> Path:
        return self.path / self.CHECKPOINT

    @property
    def arrays_file(self) -> Path:
        """Where a run trained on in-memory arrays (:func:`welavae.fit`) keeps them."""
        return self.path / self.ARRAYS

    def load_model(self, device="cpu"):
        """The trained ensemble (all seeds), from the checkpoint, in eval mode."""
        # mmap: the weights are read, the Adam state beside them in the file is not.
        model, _ = model_from_checkpoint(load_checkpoint(self._need(self.CHECKPOINT), mmap=True), device)
        return model.eval()

    def data(self, *, data_dir=None, config: RunConfig | None = None):
        """The data set this run was trained on (:func:`welavae.data.load` of its config, or of ``config``, the
        one it is about to train); refused in one sentence when the files no longer hold what the config
        recorded (its data fingerprint, :mod:`welavae.data.fingerprint`)."""
        config = config or self.config
        ds = load(config, data_dir=data_dir, arrays=self.arrays_file)
        if config.data.fingerprint is not None and fingerprint(config.data, ds) != config.data.fingerprint:
            raise ValueError(self._other_data(config.data))
        return ds

    def tracking(self) -> list[dict]:
        """The rows of ``tracking.csv``: epoch and seed as ints, the MSEs as floats (NaN for a diverged
        seed's empty cell); [] when the run tracks nothing."""
        path = self.path / self.TRACKING
        if not path.exists():
            return []
        with open(path, newline="") as f:
            return [{"epoch": int(r["epoch"]), "seed": int(r["seed"]),
                     **{c: float(r[c]) if r[c] else math.nan for c in self.TRACK_COLUMNS[2:]}}
                    for r in csv.DictReader(f)]

    def write_tracking(self, rows: list[dict]) -> None:
        """``rows`` (:data:`TRACK_COLUMNS` keys; NaN → an empty cell) as ``tracking.csv``."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.TRACK_COLUMNS)
        for r in rows:
            w.writerow([r["epoch"], r["seed"], *("" if math.isnan(r[c]) else repr(float(r[c]))
                                                 for c in self.TRACK_COLUMNS[2:])])
        write_text(self.path / self.TRACKING, buf.getvalue())

    def finished(self) -> bool:
        return (self.path / self.STATUS).exists() and (self.path / "mu.npy").exists()

    def require_finished(self, allow_unfinished: bool = False) -> None:
        """Refuse a run whose training has not finished (killed halfway), unless ``allow_unfinished``."""
        self._need(self.CONFIG)
        if not allow_unfinished and not self.finished():
            raise ValueError(f"{self.path} is an unfinished run (no status.json / mu.npy: its training stopped "
                             "before the end); resume it with the same `welavae train` command, or pass "
                             "--allow-unfinished to use its last checkpoint")


def _load_npy(path: Path) -> np.ndarray:
    """An ``.npy`` of the run (no pickles), or one sentence naming it when it is truncated or not an ``.npy``."""
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, EOFError):  # numpy's own words (a reshape, its allow_pickle advice) name no file
        raise ValueError(f"{path} is truncated or not an .npy file; the same `welavae train` command rewrites "
                         "it from the run's checkpoint") from None


def _seed_text(seeds) -> str:
    seeds = [int(s) for s in seeds]
    return ",".join(map(str, seeds)) if len(seeds) <= 8 else f"{seeds[0]}..{seeds[-1]} ({len(seeds)} seeds)"
