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

What becomes a sentence is decided by the kind of cause (:func:`_one_sentence`):
bad input (``ValueError``, ``OSError``), the machine's memory (``MemoryError``,
torch's allocator), a missing optional extra, an integer too large, a file's
bytes (an exception raised inside a file-reading library).  Anything else is a
bug in welavae and keeps its traceback.  docs/reliability.md lists the
guarantees behind these, each with its test.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import signal
import sys
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from . import __version__
from .config import (
    ARCHS,
    COLORS,
    DECODER_HEADS,
    ENCODER_INPUTS,
    ENCODERS,
    PAPER_GAMMA,
    SUPERVISED_LOSSES,
    TC_ESTIMATORS,
    DataConfig,
    TrainConfig,
)
from .data import load as load_data
from .data import to_float
from .data.blobs import SHAPES
from .data.published import BENCHMARKS
from .data.sprites import sprite_grid, write_sprites_npz
from .device import DEVICE_HELP, check_device
from .evaluate import STANDARD, evaluate_run, plot_run, seed_lines
from .experiments.presets import PRESETS, preset
from .experiments.sweep import SweepFailed
from .io import os_error_sentence, write_npy, write_text
from .lock import during_work
from .memory import size_text
from .models import MODELS
from .perf.ab import run_baseline
from .perf.throughput import run_benchmark
from .plots import label_regions, sample_grid, save_figure
from .resolve import resolve
from .run import Run
from .selection import CRITERIA, DEFAULT_CRITERION, rank_seeds, ranking_table
from .train.preflight import parse_seeds
from .train.rundir import train_run
from .train.trainer import SEED_LAYOUTS
from .trained import load as load_model

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        self.exit(2, f"welavae: error: {message}\n")


def _int_list(text: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not vals or min(vals) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return vals


def _int_at_least(lowest: int):
    """An argparse type: an integer >= ``lowest``, else one sentence naming what was given."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < lowest:
            raise argparse.ArgumentTypeError(f"expected an integer >= {lowest}, got {v}")
        return v

    return parse


_positive_int, _non_negative_int = _int_at_least(1), _int_at_least(0)


def _path(text: str) -> str:
    """A file or folder to write: not empty (an empty path is the working directory, which it would fill)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a path, got an empty string (it would name the current "
                                         "directory)")
    return text


def _model_help() -> str:
    """From the registry: each kind's name, Table-1 name, regulariser and use of weak labels."""
    return "; ".join(f"{n}: {k.display} ({k.regulariser} regulariser, weak labels {k.labels})"
                     for n, k in MODELS.items())


def _gamma_help() -> str:
    """welavae.config.paper_gamma's rule, with Table 1's values, and auto."""
    table = ", ".join(f"{gamma:g}" for gamma in PAPER_GAMMA.values())
    ps = sorted(PAPER_GAMMA)
    return (f"γ, the weak labels' weight: a number, or auto (found per seed during training to keep the labels "
            f"at --gamma-target; docs/gamma.md); default: the paper's rule, image dimension ≈ γ × label "
            f"dimension: Table 1's {table} for 64x64 images and p = {ps[0]}..{ps[-1]}, else D / mean p")


def _gamma_arg(text: str) -> float | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or auto, got {text!r}") from None


def _add_tf32_arg(p):
    p.add_argument("--tf32", action=argparse.BooleanOptionalAction, default=False,
                   help="CUDA: TF32 matmuls and convolutions (faster on Ampere and later; ~1e-3 relative "
                        "rounding); default off: exact float32, as PyTorch's default for matmuls")


def _add_seed_layout_arg(p, what: str = "the run"):
    p.add_argument("--seed-layout", choices=SEED_LAYOUTS, default="auto",
                   help=f"--arch conv: how {what} convolves its seeds: one grouped convolution, or one per seed; "
                        "auto (default) times both on the first batch and keeps the faster (same results to "
                        "float rounding; docs/performance.md)")


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {v:g}")
    return v


def _epoch_window(text: str) -> tuple[int, int]:
    """'A:B' → (A, B), the epochs A … B−1 that observe the labels (checked against --epochs by TrainConfig)."""
    a, sep, b = text.partition(":")
    try:
        window = (int(a), int(b))
    except ValueError:
        window = None
    if not sep or window is None:
        raise argparse.ArgumentTypeError(f"expected A:B (epochs A ... B-1 observe the labels), got {text!r}")
    return window


def _add_data_args(p):
    p.add_argument("--variants", type=_positive_int, default=25,
                   help="blobs per position V (25: paper, N=102,400; 1: N=4,096)")
    p.add_argument("--data-dir", default=None, help="cache directory (default: $WELAVAE_DATA_DIR or ~/.cache/welavae)")
    p.add_argument("--shape", choices=SHAPES, default="gaussian", help="blob shape (disk: the authors' shape)")


def _add_benchmark_args(p):
    p.add_argument("--dataset", choices=tuple(BENCHMARKS), default=None,
                   help="a benchmark file (read with --data-path; sprites: the twin `welavae data --dataset sprites` "
                        "writes); excludes --npz and --images")
    p.add_argument("--data-path", default=None, help="with --dataset: the file, or a folder holding it under its "
                   "published name (default: the data directory, --data-dir or $WELAVAE_DATA_DIR)")
    p.add_argument("--subset", type=_positive_int, default=None, metavar="N",
                   help="with --dataset: train on N images drawn uniformly (seeded by --subset-seed)")
    p.add_argument("--subset-seed", type=_non_negative_int, default=None,
                   help="with --subset: the seed of the draw (default 0)")
    p.add_argument("--weak-labels", default=None, metavar="SPEC",
                   help='with --dataset: weak labels from its factors, e.g. '
                        '"angle(posX,posY):3, distance(posX,posY):3"; on Blobs (no --dataset) from its centre '
                        '(c1, c2), e.g. "sum(c1,c2):3, diff(c1,c2):3", instead of --label-dim '
                        "(bins(f):p, angle, distance, sum, diff; see docs/benchmarks.md)")
    p.add_argument("--grid", type=_int_list, default=None, metavar="N1,...",
                   help="with --dataset: the factor sizes of a reduced grid (a twin written with --keep)")


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


def _add_user_data_args(p):
    p.add_argument("--npz", default=None, help="your data: a .npz with 'images' (N, H, W) or (N, H, W, C) in [0, 1] "
                   "and optional 'labels' (N, m) (-1 = missing), 'factors', 'label_names'")
    p.add_argument("--images", default=None, help="your data: a folder of image files (PNG, JPEG, ...)")
    p.add_argument("--color", choices=COLORS, default=None,
                   help="with --images: read the files as gray (one channel, default) or rgb (three); "
                        "an alpha channel is flattened onto black")
    p.add_argument("--labels", default=None,
                   help="with --images: CSV with header 'file,<label name>,...'; empty cell = missing")


def _keep_arg(text: str) -> tuple[str, list[int]]:
    """'posX=0,10,31' → ('posX', [0, 10, 31]): the classes of one factor a reduced twin keeps."""
    name, sep, idx = text.partition("=")
    try:
        classes = [int(i) for i in idx.split(",")]
    except ValueError:
        classes = None
    if not sep or not name or classes is None:
        raise argparse.ArgumentTypeError(f"expected FACTOR=I,J,... (class indices of the full grid), got {text!r}")
    return name, classes


class _KeepAction(argparse.Action):
    """--keep FACTOR=I,J,... repeated: factor → classes; a factor given twice is refused (not the last one kept)."""

    def __call__(self, parser, namespace, value, option_string=None):
        keep = dict(getattr(namespace, self.dest) or {})
        name, classes = value
        if name in keep:
            raise argparse.ArgumentError(self, f"the factor {name!r} is given twice; list all its classes in one "
                                               f"--keep {name}=I,J,...")
        keep[name] = classes
        setattr(namespace, self.dest, keep)


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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="welavae", description="WeLa-VAE: disentangled representations from weak labels.")
    parser.add_argument("--version", action="version", version=f"welavae {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("data", help="build (or reuse) the cached Blobs set and draw its figures")
    _add_data_args(p)
    p.add_argument("--label-dim", type=int, default=2, help="p for the label-region figure (default 2)")
    p.add_argument("--out", type=_path, default=None, help="directory for samples.png and label_regions_pP.png; "
                   "with --dataset sprites: the .npz file to write")
    p.add_argument("--dataset", choices=("sprites",), default=None,
                   help="sprites: render the dSprites twin (737,280 images, dSprites' npz layout) into --out")
    p.add_argument("--keep", type=_keep_arg, action=_KeepAction, default=None, metavar="FACTOR=I,J,...",
                   help="with --dataset sprites: keep only these classes of a factor (repeatable): a reduced grid")
    p.set_defaults(func=_cmd_data)

    p = sub.add_parser("train", help="train several seeds of one model at once")
    p.add_argument("--model", required=True, choices=tuple(MODELS), help=_model_help())
    p.add_argument("--label-dim", type=int, default=None,
                   help="Blobs: p, classes per weak label (required by " +
                        ", ".join(n for n, k in MODELS.items() if k.labels == "required") + ")")
    p.add_argument("--latent-dim", type=int, default=None,
                   help="K (default: " + ", ".join(f"{n} {k.latent_dim}" for n, k in MODELS.items()) + ")")
    p.add_argument("--seeds", default="0", help="'0-7' or '0,1,2' (default 0)")
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--arch", choices=ARCHS, default="mlp",
                   help="mlp: dense layers of --hidden sizes (default); conv: disentanglement_lib's conv encoder "
                        "and transposed-conv decoder (H, W divisible by 16)")
    p.add_argument("--hidden", type=_int_list, default=None, help="MLP hidden sizes (default 1200,1200)")
    p.add_argument("--beta", type=float, default=None,
                   help="β in the paper's convention (default: " +
                        ", ".join(f"{n} {k.beta:g}" for n, k in MODELS.items()) + ")")
    p.add_argument("--gamma", type=_gamma_arg, default=None, help=_gamma_help())
    p.add_argument("--gamma-target", default=None, metavar="grad:F|acc:A|nll:K",
                   help="with --gamma auto: balance the label term's gradient on the code at F times the image "
                        "term's (default grad:1), or GECO: keep the training label accuracy at A or the mean NLL "
                        "per label at K")
    p.add_argument("--encoder", choices=ENCODERS, default="mlp",
                   help="with --arch mlp: conv puts the conv network's encoder before the --hidden layers")
    p.add_argument("--tc-estimator", choices=TC_ESTIMATORS, default="mss",
                   help="total-correlation estimator (Chen et al.): minibatch stratified (default) or weighted "
                        "sampling")
    p.add_argument("--checkpoint-every", type=_positive_int, default=10, help="epochs between checkpoints")
    p.add_argument("--checkpoint-minutes", type=_positive_float, default=None,
                   help="instead: minutes of wall time between checkpoints (and one at the end)")
    p.add_argument("--encoder-input", choices=ENCODER_INPUTS, default=None,
                   help="image+labels: the paper's q(z|x,y) (default); image: a label-free encoder q(z|x) "
                        "(s2tcvae and ccvae: always)")
    p.add_argument("--label-head", choices=DECODER_HEADS, default=None,
                   help="dense: labels decoded from all of z (paper, default); diagonal: label j from latent j "
                        "alone (s2tcvae and ccvae decode no label)")
    p.add_argument("--supervised-loss", choices=SUPERVISED_LOSSES, default=None,
                   help="with --model s2tcvae: S2's supervised regulariser R_s on the encoder means, label j tied "
                        "to latent j (default xent; docs/peers.md)")
    p.add_argument("--gamma-sup", type=float, default=None, metavar="G",
                   help="with --model s2tcvae: γ_sup, R_s's weight (default: disentanglement_lib's 4 in our "
                        "per-sample reduction: 4 x batch size for xent and l2, 4 for embed and cov)")
    p.add_argument("--label-fraction", type=float, default=1.0,
                   help="keep the labels of this fraction of the samples (a seeded subset; the rest are missing)")
    p.add_argument("--label-seed", type=int, default=0, help="seed of the labelled subset (--label-fraction)")
    p.add_argument("--label-epochs", type=_epoch_window, default=None, metavar="A:B",
                   help="observe the labels in epochs A ... B-1 only; before and after every label is missing")
    p.add_argument("--init-from", default=None, metavar="RUN_DIR",
                   help="start each seed from that seed's weights of a finished run (same architecture; "
                        "a β-TCVAE may start a label-free-encoder WeLa-VAE); the optimizer starts fresh")
    p.add_argument("--tensorboard", default=None, metavar="DIR",
                   help="write every term and γ per seed (each epoch) and the latent traversals (every "
                        "--tensorboard-every epochs) for TensorBoard (pip install 'wela-vae[tensorboard]')")
    p.add_argument("--tensorboard-every", type=_positive_int, default=10, metavar="E",
                   help="epochs between two traversal figures in TensorBoard (default 10)")
    p.add_argument("--track-every", type=_positive_int, default=0, metavar="E",
                   help="Blobs: write every seed's polar and Cartesian MSE every E epochs to RUN_DIR/tracking.csv")
    _add_user_data_args(p)
    _add_benchmark_args(p)
    p.add_argument("--device", default="cpu", help=DEVICE_HELP)
    _add_tf32_arg(p)
    _add_seed_layout_arg(p)
    p.add_argument("--out", type=_path, required=True, help="run directory")
    _add_data_args(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("encode", help="encode images with a trained run: encoder means as z.npy")
    p.add_argument("run_dir", help="a directory written by `welavae train`")
    _add_user_data_args(p)
    p.add_argument("--out", type=_path, required=True, help="output .npy: (S, N, K), or (N, K) with --seed")
    p.add_argument("--seed", type=int, default=None, help="encode with this seed only")
    p.add_argument("--device", default="cpu", help=DEVICE_HELP)
    p.add_argument("--allow-unfinished", action="store_true",
                   help="encode with the last checkpoint of a run whose training stopped before the end")
    p.set_defaults(func=_cmd_encode)

    p = sub.add_parser("evaluate", help="coordinate MSE, label accuracy and disentanglement metrics of a run")
    p.add_argument("run_dir", help="a directory written by `welavae train`")
    p.add_argument("--standard", choices=STANDARD, default="best",
                   help="disentanglement_lib metrics (MIG, DCI, SAP, modularity, FactorVAE; the slow part: "
                        "docs/performance.md) for the seed of lowest polar MSE (default), every seed, or none")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("select", help="rank a run's seeds without ground truth (UDR, weak-label alignment, loss)")
    p.add_argument("run_dir", help="a directory written by `welavae train`")
    p.add_argument("--by", default=DEFAULT_CRITERION,
                   help=f"criterion: {', '.join(CRITERIA)} (default {DEFAULT_CRITERION})")
    p.add_argument("--json", type=_path, default=None, help="also write the ranking and every score as JSON")
    p.set_defaults(func=_cmd_select)

    p = sub.add_parser("plot", help="reconstructions, latent traversals and positional heat maps of one seed")
    p.add_argument("run_dir", help="a directory written by `welavae train`")
    p.add_argument("--seed", type=int, default=None, help="which seed (default: the lowest polar MSE)")
    p.add_argument("--out", type=_path, default=None, help="output directory (default RUN_DIR/figures)")
    p.add_argument("--data-dir", default=None, help="data cache directory")
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser("reproduce", help="the paper's Table 1 and the other presets: train, evaluate, tabulate "
                       "(resumable)")
    p.add_argument("--preset", choices=tuple(PRESETS), default="quick",
                   help="; ".join(f"{name}: {pr.help}" for name, pr in PRESETS.items()))
    p.add_argument("--out", type=_path, default="results", help="output directory (default ./results); rerun to resume")
    p.add_argument("--seeds", type=_positive_int, default=None, help="number of seeds per model (0..N-1)")
    p.add_argument("--epochs", type=_positive_int, default=None, help="override the preset's epochs")
    p.add_argument("--models", default=None, help="comma-separated: tcvae,wela_p2,...,wela_p8")
    p.add_argument("--tc-estimator", choices=TC_ESTIMATORS, default=None,
                   help="total-correlation estimator (default: the preset's; paper: mws, quick/table: mss)")
    p.add_argument("--seeds-per-task", type=_positive_int, default=None,
                   help="train a model's seeds in jobs of at most N (default: all in one job)")
    p.add_argument("--standard-metrics", choices=STANDARD, default=None,
                   help="disentanglement_lib metrics for each job's best seed, all seeds, or none "
                        "(default: the preset's)")
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument("--address", default=None, help="Ray cluster address (with --backend ray)")
    p.add_argument("--device", default="cpu", help=DEVICE_HELP + " (with --backend ray: of the workers)")
    _add_tf32_arg(p)
    _add_seed_layout_arg(p, "every run")
    p.add_argument("--gpus-per-task", type=_positive_float, default=None,
                   help="--backend ray --device cuda: GPUs per job (default 1; 0.25: four jobs share a GPU)")
    p.add_argument("--cpus-per-task", type=_positive_float, default=None,
                   help="--backend ray: CPUs per job (default 1)")
    p.add_argument("--data-dir", default=None, help="data cache directory")
    p.add_argument("--dataset", choices=tuple(BENCHMARKS), default=None,
                   help="--preset sprites: on the twin (default; rendered into the data directory once) or on "
                        "DeepMind's dSprites file (dsprites, with --data-path)")
    p.add_argument("--data-path", default=None, help="with --dataset: the file, or a folder holding it under its "
                   "published name (default for sprites: DATA_DIR/sprites.npz)")
    p.set_defaults(func=_cmd_reproduce)

    p = sub.add_parser("bench", help="throughput: naive loop vs vectorised seeds vs the matmul peak")
    p.add_argument("--json", type=_path, default=None, help="write the results as JSON")
    p.add_argument("--device", default="cpu", help=DEVICE_HELP)
    _add_tf32_arg(p)
    p.add_argument("--fast", action="store_true", help="a few steps only (a smoke test, not a measurement)")
    p.add_argument("--archs", default="paper,quick,conv_gray,conv_rgb",
                   help="comma-separated rows to run: paper, quick (MLP), conv_gray, conv_rgb "
                        "(--arch conv, 64x64x1 / x3)")
    p.add_argument("--paired", action="store_true",
                   help="also time the naive loop between the trainer's epochs: drift-free ratios")
    _add_seed_layout_arg(p, "each conv row")
    p.add_argument("--baseline", default=None, metavar="REF",
                   help="instead of the table: a same-run A/B of `welavae train` rows against REF (a git commit "
                        "of this repository, or another installation's path), in alternating processes")
    p.add_argument("--pairs", type=_positive_int, default=None, metavar="N",
                   help="with --baseline: pairs of runs per row (default 5)")
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv=None) -> int:
    # Transparent huge pages for torch's CPU allocator (see welavae.train.platform): torch reads
    # this once, at its first allocation, so the command line sets it before its first tensor.
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with _sigterm_interrupts():
            return int(args.func(args) or 0)
    except KeyboardInterrupt as e:
        sig = "SIGTERM" if isinstance(e, _Terminated) else "SIGINT"
        sys.stderr.write(f"welavae: interrupted ({sig}); finished checkpoints are kept: "
                         "run the same command again to resume\n")
        return 143 if sig == "SIGTERM" else 130
    except Exception as e:
        said = _one_sentence(e, args)
        if said is None:
            raise  # a bug, not the user's input: its traceback is what a report needs
        sys.stderr.write(f"welavae: error: {said}\n")
        return 1 if during_work(e) else 2


#: The optional extras (pyproject.toml): a missing one is the user's install, said in its package's sentence.
_EXTRAS = frozenset({"h5py", "ray", "tensorboard"})
#: torch's words for an allocation that failed (CPU allocator, CUDA caching allocator, MPS).
_NO_MEMORY = ("can't allocate memory", "out of memory", "not enough memory")
#: Exceptions that only a file's bytes raise (compressed streams, zip archives, image decoders).
_UNREADABLE = (zlib.error, zipfile.BadZipFile, EOFError, Image.DecompressionBombError)
#: Libraries that read files: any other exception raised inside them (zipfile's RuntimeError for an
#: encrypted member, NotImplementedError for an unknown compression, h5py's KeyError) is about the file read.
_READERS = ("zipfile", "zlib", "gzip", "PIL", "h5py", "numpy.lib.format")


def _one_sentence(e: Exception, args) -> str | None:
    """The ``welavae: error:`` line of an exception a user's input or machine can cause; None for a bug.

    Exit status (:func:`main`): 1 when the exception was raised while a run or results folder was being
    written (:func:`welavae.lock.during_work`: what was finished is kept), else 2 (refused: nothing written).
    """
    if isinstance(e, OSError) and e.errno is not None:  # before ValueError: FileNotFoundError is an OSError too
        return os_error_sentence(e)
    if isinstance(e, (ValueError, OSError)):
        return str(e)
    if isinstance(e, ModuleNotFoundError) and (e.name is None or e.name.partition(".")[0] in _EXTRAS):
        return str(e) if e.name is None else (f"{e}: this needs an optional extra: pip install "
                                              f"'wela-vae[{'benchmarks' if e.name == 'h5py' else e.name}]'")
    if isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and any(w in str(e) for w in _NO_MEMORY)):
        return _out_of_memory(e)
    if isinstance(e, OverflowError):
        return f"a number is too large for the machine ({e}); check the integers given"
    if isinstance(e, _UNREADABLE) or _raised_in(e, _READERS):
        return f"{_inputs(args)}: a file could not be read ({type(e).__name__}: {e})"
    return None


def _out_of_memory(e: Exception) -> str:
    """One sentence for an allocation the machine refused, with its size when the allocator said it."""
    text = str(e)
    asked = re.search(r"allocate (\d+) bytes", text)
    size = size_text(int(asked.group(1))) if asked else None
    if size is None and (asked := re.search(r"[Tt]ried to allocate ([\d.]+ [KMGTP]iB)", text)):
        size = asked.group(1)
    where = "the CUDA device" if "CUDA" in text else "this machine"
    return (f"out of memory: {where} could not allocate {size or 'what the run asked for'}; use fewer --seeds, "
            "smaller --hidden layers, a smaller --batch-size or a --subset of the data")


def _raised_in(e: BaseException, modules) -> bool:
    """Whether the innermost Python frame of ``e``'s traceback belongs to one of ``modules`` (or their submodules)."""
    tb, name = e.__traceback__, ""
    while tb is not None:
        name = tb.tb_frame.f_globals.get("__name__", "")
        tb = tb.tb_next
    return any(name == m or name.startswith(m + ".") for m in modules)


def _inputs(args) -> str:
    """The files the command was given to read, as flags ("--npz d.npz"), or "a data file"."""
    given = [f"--{flag.replace('_', '-')} {getattr(args, flag)}" for flag in ("npz", "images", "labels", "data_path")
             if getattr(args, flag, None)]
    if getattr(args, "run_dir", None):
        given.append(str(args.run_dir))
    return ", ".join(given) or "a data file"


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so locks are released and files left whole as on Ctrl-C."""


@contextlib.contextmanager
def _sigterm_interrupts():
    """SIGTERM behaves as SIGINT for the command's duration; the previous handler is restored after."""
    def handler(signum, frame):
        raise _Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
