"""A same-run A/B: the current code against a reference version, in alternating processes on the same commands.

The machine's speed drifts by more than the effects worth settling (a few per
cent; docs/performance.md), so two versions timed minutes apart cannot be
compared.  Here each row (a ``welavae`` command line, run as ``python -m
welavae.cli ARGV``) runs once per version as a warm-up (data caches, bytecode,
the first import), then ``pairs`` times per version, the two versions
alternating in the order R C | C R | R C … (:func:`alternation`): each pair's
two runs are seconds apart, and a drift favours neither side over the pairs.
A pair's ratio is the current run's time over the reference's
(:func:`ratio_stats`; above 1: the current code is slower); the row reports
every ratio, their median and spread.  The time is the process's wall time,
or, for a row with ``seconds_from`` (``"{out}/status.json:seconds"``; a
dotted key such as ``rows.1.seconds`` reaches into lists), a number the run
wrote itself: a training run's own clock leaves out the interpreter's start,
the data's loading and the evaluation after training.

A version is an :class:`Installation`: an interpreter and, optionally, a
source tree put first on ``PYTHONPATH``.  :func:`resolve_baseline` turns
``--baseline REF`` into one: a path (a Python interpreter, a virtual
environment, or a source tree holding ``welavae/``), or a git commit of the
repository, whose tree is extracted once into
``~/.cache/welavae/ab/<commit>/src`` and run by this interpreter, so both
versions import the same torch and differ only in welavae's code.

Every run starts in a fresh temporary directory (``{out}`` in a command
stands for a directory in it), so a run never resumes another's checkpoint.
Both versions get the same argv: a row whose command fails on either is
refused with one sentence, and the other rows still run.

``welavae bench --baseline REF`` (:func:`run_baseline`) runs :data:`TRAIN_ROWS`:
``welavae train`` commands that 0.2.0 already knows (the MLP rows) and one
that needs ``--arch conv`` (refused by a reference without it).  How to read
the result: docs/performance.md, "The same-run A/B".
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["TRAIN_ROWS", "Installation", "alternation", "current_installation", "ratio_stats", "resolve_baseline",
           "run_ab", "run_baseline", "table"]

REFERENCE, CURRENT = "reference", "current"

_TRAIN = ["train", "--model", "tcvae", "--variants", "1", "--shape", "disk", "--seeds", "0-7", "--out", "{out}"]
#: The rows of ``welavae bench --baseline``: 8 seeds of β-TCVAE on disk Blobs (N = 4,096), each timed by the
#: run's own clock (status.json's ``seconds``).  The quick MLP is the command of the question "has it lost
#: speed since 0.2.0?"; the paper MLP is GEMM-bound; the conv row needs ``--arch conv``, which 0.2.0 lacks.
TRAIN_ROWS = tuple(dict(row, seconds_from="{out}/status.json:seconds") for row in (
    {"name": "quick MLP S=8, 10 epochs",
     "argv": [*_TRAIN, "--hidden", "64,32", "--epochs", "10", "--batch-size", "64", "--lr", "1e-3"]},
    {"name": "paper MLP S=8, 1 epoch",
     "argv": [*_TRAIN, "--hidden", "1200,1200", "--epochs", "1", "--batch-size", "256", "--lr", "1e-4"]},
    {"name": "conv gray S=8, 1 epoch",
     "argv": [*_TRAIN, "--arch", "conv", "--epochs", "1", "--batch-size", "64", "--lr", "1e-3"]},
))


@dataclasses.dataclass(frozen=True)
class Installation:
    """One version of welavae: ``python`` runs it, with ``path`` first on ``PYTHONPATH`` (None: as installed)."""

    python: str
    path: str | None
    label: str


# --------------------------------------------------------------------------- pure parts


def alternation(pairs: int, warmup: int = 1) -> list[tuple[str, int | None]]:
    """The runs of one row in order, as (side, pair index; None for a warm-up).

    ``warmup`` runs of each side first (reference, current, …), then pair k
    runs the reference first when k is even and the current code first when
    k is odd (R C | C R | R C …).
    """
    if pairs < 1 or warmup < 0:
        raise ValueError(f"an A/B needs at least one pair and no negative warm-up, got pairs={pairs}, warmup={warmup}")
    runs = [(side, None) for _ in range(warmup) for side in (REFERENCE, CURRENT)]
    for k in range(pairs):
        order = (REFERENCE, CURRENT) if k % 2 == 0 else (CURRENT, REFERENCE)
        runs += [(side, k) for side in order]
    return runs


def ratio_stats(current, reference) -> dict:
    """Per-pair ratios current / reference (wall seconds, index-aligned) and their spread.

    Returns ``ratios`` (in pair order), ``median``, ``min``, ``max``, ``q1``,
    ``q3`` and ``iqr`` (quartiles by linear interpolation, numpy's default),
    and ``verdict``: ``"slower"`` when even the lower quartile is above 1,
    ``"faster"`` when even the upper one is below 1, else ``"within the spread"``.
    """
    current, reference = np.asarray(current, dtype=float), np.asarray(reference, dtype=float)
    if current.shape != reference.shape or current.ndim != 1 or len(current) == 0:
        raise ValueError(f"ratio_stats needs two equally long non-empty lists, got {current.shape} and "
                         f"{reference.shape}")
    ratios = current / reference
    q1, median, q3 = (float(q) for q in np.percentile(ratios, [25, 50, 75]))
    verdict = "slower" if q1 > 1 else "faster" if q3 < 1 else "within the spread"
    return {"ratios": [float(r) for r in ratios], "median": median, "min": float(ratios.min()),
            "max": float(ratios.max()), "q1": q1, "q3": q3, "iqr": q3 - q1, "verdict": verdict}


# --------------------------------------------------------------------------- the versions


def current_installation() -> Installation:
    """This interpreter, with the directory this process's ``welavae`` was imported from first on the path."""
    root = Path(__file__).resolve().parents[2]  # welavae/perf/ab.py → the directory holding welavae/
    return Installation(sys.executable, str(root), f"current ({root})")


def default_cache() -> Path:
    """$XDG_CACHE_HOME/welavae/ab, else ~/.cache/welavae/ab."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "welavae" / "ab"


def resolve_baseline(ref: str, *, repo=None, cache=None) -> Installation:
    """The reference version named by ``ref``: a path (see the module docstring) or a commit of ``repo``.

    repo: a git repository (default: the one holding the current code);
    cache: where extracted commits are kept (default :func:`default_cache`).
    A commit is extracted once (``git archive``) and compiled to bytecode; later calls reuse it.
    """
    path = Path(ref).expanduser()
    if path.exists():
        if path.is_file():
            return Installation(str(path.resolve()), None, f"{ref} (interpreter)")
        if (path / "bin" / "python").exists():
            return Installation(str(path.resolve() / "bin" / "python"), None, f"{ref} (environment)")
        if (path / "welavae" / "__init__.py").exists():
            return Installation(sys.executable, str(path.resolve()), f"{ref} (source tree)")
        raise ValueError(f"baseline {ref}: a directory that is neither a virtual environment (bin/python) "
                         "nor a source tree (welavae/__init__.py)")
    repo = Path(repo) if repo is not None else Path(current_installation().path)
    found = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                           capture_output=True, text=True)
    if found.returncode != 0:
        raise ValueError(f"baseline {ref!r} is neither an existing path nor a commit of the git repository at {repo}")
    sha = found.stdout.strip()
    home = Path(cache) if cache is not None else default_cache()
    src = home / sha / "src"
    if not (home / sha / "ready").exists():
        _extract(repo, sha, home / sha)
    return Installation(sys.executable, str(src), f"{ref} ({sha[:12]})")


def _extract(repo: Path, sha: str, target: Path) -> None:
    """``git archive`` of ``sha`` into ``target/src``, bytecode compiled, then a ``ready`` mark.

    Built in a sibling directory and renamed into place, so a process that
    stops half-way leaves no half-extracted tree that looks ready.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{sha[:12]}.", dir=target.parent))
    try:
        tar = work / "src.tar"
        subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", "-o", str(tar), sha], check=True)
        with tarfile.open(tar) as t:
            t.extractall(work / "src", filter="data")
        tar.unlink()
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(work / "src" / "welavae")], check=True)
        (work / "ready").write_text(sha + "\n")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- running


def _run_once(inst: Installation, argv, *, seconds_from: str | None = None, timeout: float | None = None) -> dict:
    """Run ``python -m welavae.cli argv`` of ``inst`` in a fresh directory.

    Returns its wall seconds, CPU seconds (user + system) and peak RSS, the
    exit code (None: killed at ``timeout``) with the last line of stderr, and
    ``seconds``: the wall time, or the number ``seconds_from`` names.
    """
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if inst.path is not None:
        env["PYTHONPATH"] = inst.path
    with tempfile.TemporaryDirectory(prefix="welavae-ab-") as tmp:
        def fill(text: str) -> str:
            return text.replace("{out}", os.path.join(tmp, "out"))

        cmd = [inst.python, "-m", "welavae.cli", *map(fill, argv)]
        with open(os.path.join(tmp, "stdout"), "wb") as out, open(os.path.join(tmp, "stderr"), "wb") as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
            status, usage = _wait(proc, timeout)
            wall = time.perf_counter() - t0
        code = os.waitstatus_to_exitcode(status) if status is not None else None
        tail = Path(tmp, "stderr").read_text(errors="replace").strip().splitlines()
        error = None if code == 0 else (tail[-1] if tail else f"exit status {code}")
        seconds = wall
        if code == 0 and seconds_from is not None:
            seconds, error = _read_seconds(fill(seconds_from))
    return {"seconds": seconds, "wall_seconds": wall, "cpu_seconds": usage.ru_utime + usage.ru_stime if usage else None,
            "peak_rss_mb": usage.ru_maxrss / 1024 if usage else None, "returncode": code, "error": error}


def _read_seconds(spec: str) -> tuple[float | None, str | None]:
    """``FILE:KEY`` → (the number at KEY of the JSON file, None) or (None, why not).

    KEY is dotted, an integer indexing a list: ``seconds``, ``rows.1.seconds``.
    """
    path, _, key = spec.rpartition(":")
    try:
        value = json.loads(Path(path).read_text())
        for part in key.split("."):
            value = value[int(part)] if isinstance(value, list) else value[part]
        return float(value), None
    except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
        return None, f"no number {key!r} in {path} ({type(e).__name__})"


def _wait(proc: subprocess.Popen, timeout: float | None):
    """(wait status, rusage) of ``proc``'s own process (``os.wait4``); (None, None) after killing it at ``timeout``."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG if deadline else 0)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
            return status, usage
        if time.monotonic() > deadline:
            proc.kill()
            os.wait4(proc.pid, 0)
            proc.returncode = -9
            return None, None
        time.sleep(0.01)


def _refusal(name: str, side: str, inst: Installation, run: dict) -> str:
    if run["returncode"] == 0:  # it ran, but wrote no time where the row said
        return f"row {name!r}: the {side} version {inst.label} ran but wrote no time: {run['error']}"
    why = "timed out" if run["returncode"] is None else f"exit {run['returncode']}: {run['error']}"
    return (f"row {name!r} fails on the {side} version {inst.label} ({why}); the A/B runs the same command on both, "
            "so give it only flags both versions know")


def run_ab(rows, reference: Installation, current: Installation | None = None, *, pairs: int = 5,
           warmup: int = 1, timeout: float | None = None, log=None) -> dict:
    """Time every row's command under both versions (module docstring); a dict ready for JSON.

    rows: ``[{"name": str, "argv": [str, …], "seconds_from": "FILE:KEY" (optional)}, …]``,
    argv after ``python -m welavae.cli``, ``{out}`` standing for a fresh directory.  current: default
    :func:`current_installation`.  log: called with one line per run.
    Returns ``{"reference", "current", "pairs", "warmup", "load_average_1min",
    "rows": [{"name", "argv", "seconds_from", "runs": […], "seconds": {side: [per pair]},
    "ratio": ratio_stats(…)} or {"name", "argv", "refused": sentence}]}``.
    """
    current = current or current_installation()
    versions = {REFERENCE: reference, CURRENT: current}
    out_rows = []
    for row in rows:
        name, argv = row["name"], [str(a) for a in row["argv"]]
        runs, seconds, refused = [], {REFERENCE: [None] * pairs, CURRENT: [None] * pairs}, None
        for side, k in alternation(pairs, warmup):
            run = _run_once(versions[side], argv, seconds_from=row.get("seconds_from"), timeout=timeout)
            runs.append({"side": side, "pair": k, **run})
            if log is not None:
                log(f"ab: {name} {side} {'warm-up' if k is None else f'pair {k}'}: {run['wall_seconds']:.2f} s wall"
                    + (f" (failed: {run['error']})" if run["error"] else f", {run['seconds']:.2f} s measured"))
            if run["error"] is not None:
                refused = _refusal(name, side, versions[side], run)
                break
            if k is not None:
                seconds[side][k] = run["seconds"]
        if refused:
            out_rows.append({"name": name, "argv": argv, "refused": refused, "runs": runs})
            continue
        out_rows.append({"name": name, "argv": argv, "seconds_from": row.get("seconds_from"), "runs": runs,
                         "seconds": seconds,
                         "ratio": ratio_stats(seconds[CURRENT], seconds[REFERENCE])})
    return {"reference": dataclasses.asdict(reference), "current": dataclasses.asdict(current),
            "pairs": pairs, "warmup": warmup,
            "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
            "rows": out_rows}


def table(result: dict) -> str:
    """One line per row: median ratio current/reference, its range and IQR, or the refusal."""
    lines = [f"reference {result['reference']['label']}, current {result['current']['label']}; "
             f"{result['pairs']} pairs; ratio = current / reference time (above 1: current slower)"]
    for r in result["rows"]:
        if "refused" in r:
            lines.append(f"  {r['name']}: refused — {r['refused']}")
            continue
        s = r["ratio"]
        lines.append(f"  {r['name']}: median {s['median']:.3f}  range {s['min']:.3f}–{s['max']:.3f}  "
                     f"IQR {s['q1']:.3f}–{s['q3']:.3f}  ({s['verdict']}); ratios "
                     + " ".join(f"{x:.3f}" for x in s["ratios"]))
    return "\n".join(lines)


def run_baseline(baseline: str, *, pairs: int = 5, rows=TRAIN_ROWS, device: str = "cpu", json_path=None,
                 print_table: bool = True, timeout: float | None = 3600) -> dict:
    """``welavae bench --baseline REF``: ``rows`` (default :data:`TRAIN_ROWS`) under the reference and this
    code, alternating (:func:`run_ab`); ``--device`` is added to every row's command unless ``cpu``.
    Writes the result as JSON to ``json_path``; prints a line per run to stderr and :func:`table` if
    ``print_table``."""
    reference = resolve_baseline(baseline)
    extra = [] if device == "cpu" else ["--device", device]
    timed = [dict(r, argv=[*r["argv"], *extra]) for r in rows]
    log = (lambda line: print(line, file=sys.stderr, flush=True)) if print_table else None
    result = run_ab(timed, reference, pairs=pairs, timeout=timeout, log=log)
    result["cpu_count"] = os.cpu_count()
    if json_path is not None:
        Path(json_path).write_text(json.dumps(result, indent=1) + "\n")
    if print_table:
        print(table(result))
    return result
