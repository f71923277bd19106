"""Command line: flags in, one library call, results out.

Every verb has ``--help``.  One error boundary (:func:`main`) turns every
expected failure into one line ``welavae: error: …`` and an exit status:

* 0  done;
* 1  the work began and failed part way (a sweep job failed; an OS error such
  as a full disk while a locked run or results folder was being written):
  what was finished is kept, and the same command again resumes;
* 2  refused before anything was written: bad input, a locked or foreign
  directory, an OS error before the work began (an existing file as
  ``--out``, a read-only file system, no permission);
* 130 / 143  interrupted by SIGINT / SIGTERM: the last checkpoint is kept (it
  is written atomically), and the same command again resumes from it.

What becomes a sentence is decided by the kind of cause (:func:`one_sentence`):
bad input (``ValueError``, ``OSError``), the machine's memory (``MemoryError``,
torch's allocator), a missing optional extra, an integer too large, a file's
bytes (an exception raised inside a file-reading library).  Anything else is a
bug in welavae and keeps its traceback.  docs/reliability.md lists the
guarantees behind these, each with its test.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..config import (
    DataConfig,
    TrainConfig,
)
from ..data import load as load_data
from ..data import to_float
from ..data.sprites import sprite_grid, write_sprites_npz
from ..device import check_device
from ..evaluate import evaluate_run, plot_run, seed_lines
from ..experiments.presets import preset
from ..experiments.sweep import SweepFailed
from ..io import write_npy, write_text
from ..lock import during_work
from ..perf.ab import run_baseline
from ..perf.throughput import run_benchmark
from ..plots import label_regions, sample_grid, save_figure
from ..resolve import resolve
from ..run import Run
from ..selection import CRITERIA, rank_seeds, ranking_table
from ..train.preflight import parse_seeds
from ..train.rundir import train_run
from ..trained import load as load_model
from .boundary import Terminated, one_sentence, sigterm_interrupts
from .parser import build_parser

__all__ = ["main", "build_parser"]


def _data_source(args) -> dict | None:
    """The DataConfig fields of the data the flags name (--dataset, --npz, --images), or None for Blobs;
    a flag without the one it goes with is refused."""
    if getattr(args, "dataset", None) is not None:
        if args.npz or args.images:
            raise ValueError("give --dataset NAME --data-path FILE, or your own data with --npz / --images, not both")
        if args.subset_seed is not None and args.subset is None:  # it would be recorded, and draw nothing
            raise ValueError("--subset-seed goes with --subset N (without it every image is used)")
        return dict(source="benchmark", dataset=args.dataset, data_path=args.data_path, subset=args.subset,
                    subset_seed=args.subset_seed or 0, weak_labels=args.weak_labels,
                    grid=tuple(args.grid) if args.grid else None)
    given = [f"--{n.replace('_', '-')}" for n in ("data_path", "subset", "subset_seed", "weak_labels", "grid")
             if getattr(args, n, None) is not None]
    if given and (given != ["--weak-labels"] or args.npz or args.images):
        blobs_too = " (or Blobs, without --npz and --images)" if given[0] == "--weak-labels" else ""
        raise ValueError(f"{given[0]} goes with --dataset NAME{blobs_too}")
    if args.npz and args.images:
        raise ValueError("give --npz or --images, not both")
    if args.color and not args.images:
        raise ValueError("--color goes with --images DIR (an npz's images have their channels already)")
    if args.labels and not args.images:
        raise ValueError("--labels goes with --images DIR")
    if args.npz:
        return dict(source="npz", path=args.npz)
    if args.images:
        return dict(source="images", path=args.images, labels_path=args.labels, color=args.color or "gray")
    return None


def _cmd_data(args) -> int:
    t = time.perf_counter()
    if args.dataset or args.keep:  # the dSprites twin (or a reduced grid of it)
        if not args.dataset:
            raise ValueError("--keep goes with --dataset sprites")
        if not args.out:
            raise ValueError("--dataset sprites needs --out FILE.npz, the file to write")
        keep = args.keep or None
        sizes = sprite_grid(keep)[1]  # refuses an unknown factor or class before anything is rendered
        path = write_sprites_npz(args.out, keep=keep)
        grid = "" if keep is None else f"; a reduced grid: train on it with --grid {','.join(map(str, sizes))}"
        print(f"the dSprites twin: {math.prod(sizes)} images of 64x64 written to {path} in "
              f"{time.perf_counter() - t:.1f}s{grid}")
        return 0
    ds = load_data(DataConfig(variants=args.variants, shape=args.shape), data_dir=args.data_dir,
                   label_dim=args.label_dim)
    size = ds.image_shape[0]
    print(f"Blobs: N={len(ds.images)} images of {size}x{size} ({args.shape}, V={args.variants}) "
          f"ready in {time.perf_counter() - t:.1f}s")
    if args.out:
        out = Path(args.out)
        idx = list(range(0, len(ds.images), max(1, len(ds.images) // 32)))[:32]
        save_figure(sample_grid(to_float(ds.images[idx])), out / "samples.png")
        save_figure(label_regions(args.label_dim, size=size), out / f"label_regions_p{args.label_dim}.png")
        print(f"figures: {out / 'samples.png'}, {out / f'label_regions_p{args.label_dim}.png'}")
    return 0


def _cmd_train(args) -> int:
    seeds = parse_seeds(args.seeds)
    if args.arch == "conv" and (args.hidden is not None or args.encoder != "mlp"):
        raise ValueError("--arch conv has disentanglement_lib's fixed layers: drop --hidden and --encoder")
    source = _data_source(args) or dict(variants=args.variants, shape=args.shape, weak_labels=args.weak_labels)
    data = DataConfig(**source, label_fraction=args.label_fraction, label_seed=args.label_seed)
    train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                        checkpoint_every=args.checkpoint_every, checkpoint_minutes=args.checkpoint_minutes,
                        label_epochs=args.label_epochs, track_every=args.track_every,
                        init_from=str(Path(args.init_from).resolve()) if args.init_from else None)
    config, ds = resolve(data, args.model, label_dim=args.label_dim, data_dir=args.data_dir, train=train,
                         latent_dim=args.latent_dim, beta=args.beta, gamma=args.gamma,
                         gamma_target=args.gamma_target,
                         hidden=args.hidden or (1200, 1200), arch=args.arch, encoder=args.encoder,
                         encoder_input=args.encoder_input, label_head=args.label_head,
                         tc_estimator=args.tc_estimator, supervised_loss=args.supervised_loss,
                         gamma_sup=args.gamma_sup)
    result = train_run(config, seeds, args.out, device=args.device, data=ds, tf32=args.tf32,
                       tensorboard=args.tensorboard, tensorboard_every=args.tensorboard_every,
                       seed_layout=args.seed_layout)
    n_div = int(result.diverged.sum())
    print(f"{config.name}: {len(seeds)} seeds, {result.epochs_done} epochs in {result.seconds:.1f}s"
          f"{f', {n_div} diverged' if n_div else ''}; wrote {args.out}")
    return 0


def _cmd_encode(args) -> int:
    if Path(args.out).is_dir():
        raise ValueError(f"--out {args.out} is a directory; give the output file, e.g. {Path(args.out) / 'z.npy'}")
    source = _data_source(args)
    if source is None:
        raise ValueError("give the images to encode: --npz FILE or --images DIR [--labels CSV]")
    _check_encode_out(Path(args.out), args.run_dir, source)
    with Run(args.run_dir).locked(create=False):  # a run being trained is refused; nothing changes while it is read
        model = load_model(args.run_dir, device=args.device, allow_unfinished=args.allow_unfinished)
        m = model.config.model
        if source["source"] == "images" and not args.color:  # read the files as the model's data were read
            source["color"] = model.config.data.color
        ds = load_data(DataConfig(**source), model=m)  # the CSV read with the model's own label classes
        z = model.encode(ds.images, ds.labels if m.labels_in_encoder else None, seed=args.seed)
    write_npy(args.out, z.astype(np.float32))
    print(f"encoded {len(ds.images)} images: {args.out} {z.shape}")
    return 0


def _check_encode_out(out: Path, run_dir, source: dict) -> None:
    """Refuse an ``encode --out`` that is one of its inputs or lies in a run directory (it would replace them)."""
    target = out.expanduser().resolve()
    inputs = {f"--{source['source']}": source.get("path"), "--labels": source.get("labels_path")}
    for flag, given in inputs.items():
        if given and Path(given).expanduser().resolve() == target:
            raise ValueError(f"--out {out} is the input {flag} {given}; it would be replaced by the encodings: "
                             "write them to another file")
    for folder in (target.parent, *target.parent.parents):
        if folder == Path(run_dir).expanduser().resolve() or Run(folder).is_run():
            raise ValueError(f"--out {out} lies in the run directory {folder}, whose files (mu.npy, its "
                             "checkpoint) it could replace; write the encodings outside it")


def _cmd_select(args) -> int:
    if args.by not in CRITERIA:
        raise ValueError(f"--by must be one of {', '.join(CRITERIA)}, got {args.by!r}")
    result = rank_seeds(args.run_dir, by=args.by)
    print(f"seeds of {args.run_dir} ranked by {args.by} (higher is better; loss terms negated):")
    print(ranking_table(result))
    if args.json:
        write_text(args.json, json.dumps(result, indent=2) + "\n")
    return 0


def _cmd_evaluate(args) -> int:
    result = evaluate_run(args.run_dir, standard=args.standard)
    print("\n".join(seed_lines(result["seeds"])))
    print(f"wrote {Path(args.run_dir) / 'metrics.json'}")
    return 0


def _cmd_plot(args) -> int:
    for path in plot_run(args.run_dir, seed=args.seed, out_dir=args.out, data_dir=args.data_dir):
        print(path)
    return 0


def _cmd_reproduce(args) -> int:
    chosen = preset(args.preset)
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    options = dict(seeds=args.seeds, epochs=args.epochs, models=models, tc_estimator=args.tc_estimator,
                   seeds_per_task=args.seeds_per_task, backend=args.backend, address=args.address,
                   device=args.device, data_dir=args.data_dir, standard=args.standard_metrics,
                   tf32=args.tf32 or None, gpus_per_task=args.gpus_per_task, cpus_per_task=args.cpus_per_task,
                   dataset=args.dataset, data_path=args.data_path, seed_layout=args.seed_layout)
    t = time.perf_counter()
    try:
        table = chosen(args.out, **options)
    except SweepFailed as e:  # the others finished and the tables are written: show them, then say why
        md = Path(args.out) / "table.md"
        if md.exists():
            print(md.read_text())
        sys.stderr.write(f"welavae: error: {e}; run the same command again to retry "
                         f"(errors in {Path(args.out) / 'results.sqlite'})\n")
        return 1
    print((Path(args.out) / chosen.report).read_text())
    files = dict.fromkeys([chosen.report, "table.md", "table.csv", "results.sqlite", "runs/", "figures/"])
    print(f"{len(table)} models; wrote {', '.join(files)} into {args.out} in {time.perf_counter() - t:.0f}s")
    return 0


def _cmd_bench(args) -> int:
    check_device(args.device)
    if args.baseline is not None:
        run_baseline(args.baseline, pairs=args.pairs or 5, device=args.device, json_path=args.json)
        return 0
    if args.pairs is not None:
        raise ValueError("--pairs goes with --baseline REF")
    archs = tuple(a.strip() for a in args.archs.split(",") if a.strip())
    run_benchmark(device=args.device, archs=archs, json_path=args.json, fast=args.fast, paired=args.paired,
                  tf32=args.tf32, seed_layout=args.seed_layout)
    return 0


def main(argv=None) -> int:
    # Transparent huge pages for torch's CPU allocator (see welavae.train.platform): torch reads
    # this once, at its first allocation, so the command line sets it before its first tensor.
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with sigterm_interrupts():
            command = {"data": _cmd_data, "train": _cmd_train, "encode": _cmd_encode, "evaluate": _cmd_evaluate,
                       "select": _cmd_select, "plot": _cmd_plot, "reproduce": _cmd_reproduce,
                       "bench": _cmd_bench}[args.command]
            return int(command(args) or 0)
    except KeyboardInterrupt as e:
        sig = "SIGTERM" if isinstance(e, Terminated) else "SIGINT"
        sys.stderr.write(f"welavae: interrupted ({sig}); finished checkpoints are kept: "
                         "run the same command again to resume\n")
        return 143 if sig == "SIGTERM" else 130
    except Exception as e:
        said = one_sentence(e, args)
        if said is None:
            raise  # a bug, not the user's input: its traceback is what a report needs
        sys.stderr.write(f"welavae: error: {said}\n")
        return 1 if during_work(e) else 2
