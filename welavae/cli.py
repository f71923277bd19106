"""Command line: flags in, one library call, results out.

Every verb has ``--help``.  Bad input exits with status 2 and one line
``welavae: error: …`` naming what is wrong.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import __version__
from .config import ENCODER_INPUTS, ENCODERS, LABEL_HEADS, TC_ESTIMATORS
from .data.blobs import SHAPES
from .evaluate import STANDARD
from .models import MODELS

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


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {v}")
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
    p.add_argument("--variants", type=_positive_int, default=25, help="blobs per position V (25: paper, N=102,400; 1: N=4,096)")
    p.add_argument("--data-dir", default=None, help="cache directory (default: $WELAVAE_DATA_DIR or ~/.cache/welavae)")
    p.add_argument("--shape", choices=SHAPES, default="gaussian", help="blob shape (disk: the authors' shape)")


def _add_user_data_args(p):
    p.add_argument("--npz", default=None, help="your data: a .npz with 'images' (N, H, W) in [0, 1] "
                   "and optional 'labels' (N, m) (-1 = missing), 'factors', 'label_names'")
    p.add_argument("--images", default=None, help="your data: a folder of image files (PNG, JPEG, ...; read as grayscale)")
    p.add_argument("--labels", default=None, help="with --images: CSV with header 'file,<label name>,...'; empty cell = missing")


def _cmd_data(args) -> int:
    from .data import load_blobs, weak_labels

    t = time.perf_counter()
    blobs = load_blobs(args.variants, shape=args.shape, data_dir=args.data_dir)
    weak_labels(blobs.factors, args.label_dim)  # validates p
    print(f"Blobs: N={len(blobs)} images of {blobs.size}x{blobs.size} ({blobs.shape}, V={blobs.variants}) "
          f"ready in {time.perf_counter() - t:.1f}s")
    if args.out:
        from .plots import label_regions, sample_grid, save_figure

        out = Path(args.out)
        idx = [int(i) for i in range(0, len(blobs), max(1, len(blobs) // 32))][:32]
        save_figure(sample_grid(blobs.images[idx]), out / "samples.png")
        save_figure(label_regions(args.label_dim, size=blobs.size), out / f"label_regions_p{args.label_dim}.png")
        print(f"figures: {out / 'samples.png'}, {out / f'label_regions_p{args.label_dim}.png'}")
    return 0


def _user_data(args):
    """The user's data set named by --npz or --images/--labels, or None for Blobs."""
    from .data import load_image_folder, load_npz

    if args.npz and args.images:
        raise ValueError("give --npz or --images, not both")
    if args.labels and not args.images:
        raise ValueError("--labels goes with --images DIR")
    if args.npz:
        return load_npz(args.npz)
    if args.images:
        return load_image_folder(args.images, args.labels)
    return None


def _cmd_train(args) -> int:
    from .config import DataConfig, TrainConfig, make_run_config
    from .models import MODELS
    from .train.run import parse_seeds, train_run

    seeds = parse_seeds(args.seeds)
    ds = _user_data(args)  # validated before anything is written
    common = dict(latent_dim=args.latent_dim, beta=args.beta, gamma=args.gamma, hidden=args.hidden,
                  encoder=args.encoder, encoder_input=args.encoder_input, label_head=args.label_head,
                  tc_estimator=args.tc_estimator,
                  train=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                    checkpoint_every=args.checkpoint_every, label_epochs=args.label_epochs,
                                    init_from=str(Path(args.init_from).resolve()) if args.init_from else None,
                                    track_every=args.track_every))
    fraction = dict(label_fraction=args.label_fraction, label_seed=args.label_seed)
    if ds is None:
        data = DataConfig(variants=args.variants, shape=args.shape, **fraction)
        cfg = make_run_config(args.model, label_dim=args.label_dim, data=data, **common)
        payload = None
    else:
        if args.label_dim is not None:
            raise ValueError("--label-dim is for Blobs; with your own data the classes come from the labels")
        source = dict(source="npz", path=args.npz) if args.npz else \
            dict(source="images", path=args.images, labels_path=args.labels)
        use_labels = MODELS[args.model].labels != "never" and ds.labels is not None
        cfg = make_run_config(args.model, label_dims=ds.label_dims if use_labels else None,
                              image_shape=ds.image_shape, data=DataConfig(**source, **fraction),
                              label_names=ds.label_names if use_labels else (),
                              label_classes=ds.label_classes if use_labels else (), **common)
        payload = (ds.images, ds.labels if use_labels else None, ds.factors)
    result = train_run(cfg, seeds, args.out, data_dir=args.data_dir, device=args.device, data=payload)
    n_div = int(result.diverged.sum())
    print(f"{cfg.name}: {len(seeds)} seeds, {result.epochs_done} epochs in {result.seconds:.1f}s"
          f"{f', {n_div} diverged' if n_div else ''}; wrote {args.out}")
    return 0


def _cmd_encode(args) -> int:
    import numpy as np

    from .data import load_image_folder
    from .io import write_npy
    from .trained import load

    model = load(args.run_dir, device=args.device)
    m = model.config.model
    if args.images and args.labels and m.has_labels:  # read the CSV with the model's own label classes
        ds = load_image_folder(args.images, args.labels, label_names=m.label_names or None,
                               label_classes=m.label_classes or None)
    else:
        ds = _user_data(args)
    if ds is None:
        raise ValueError("give the images to encode: --npz FILE or --images DIR [--labels CSV]")
    z = model.encode(ds.images, ds.labels if m.labels_in_encoder else None, seed=args.seed)
    write_npy(args.out, z.astype(np.float32))
    print(f"encoded {len(ds.images)} images: {args.out} {z.shape}")
    return 0


def _cmd_select(args) -> int:
    import json

    from .io import write_text
    from .selection import CRITERIA, rank_seeds

    if args.by not in CRITERIA:
        raise ValueError(f"--by must be one of {', '.join(CRITERIA)}, got {args.by!r}")
    result = rank_seeds(args.run_dir, by=args.by)
    names = list(result["scores"])
    print(f"seeds of {args.run_dir} ranked by {args.by} (higher is better; loss terms negated):")
    print("rank  seed  " + "  ".join(f"{n:>12}" for n in names))
    for r, seed in enumerate(result["ranking"], 1):
        cells = ["-" if result["scores"][n][seed] is None else f"{result['scores'][n][seed]:.4g}" for n in names]
        print(f"{r:4d}  {seed:4d}  " + "  ".join(f"{c:>12}" for c in cells))
    if args.json:
        write_text(args.json, json.dumps(result, indent=2) + "\n")
    return 0


def _cmd_evaluate(args) -> int:
    from .evaluate import evaluate_run

    result = evaluate_run(args.run_dir, standard=args.standard)
    for row in result["seeds"]:
        acc, hidden = row["accuracy"], row["accuracy_hidden"]
        line = f"seed {row['seed']:3d}"
        if "polar" in row:
            line += f"  polar MSE {row['polar']['mse']:9.2f}  Cartesian MSE {row['cartesian']['mse']:9.2f}"
        if acc:
            line += "  acc " + " ".join("-" if a is None else f"{a:.3f}" for a in acc)
        if hidden:
            line += "  acc hidden " + " ".join("-" if a is None else f"{a:.3f}" for a in hidden)
        if row.get("active_latents") is not None:
            line += f"  active latents {row['active_latents']}"
        print(line)
    print(f"wrote {Path(args.run_dir) / 'metrics.json'}")
    return 0


def _cmd_plot(args) -> int:
    from .evaluate import plot_run

    for path in plot_run(args.run_dir, seed=args.seed, out_dir=args.out, data_dir=args.data_dir):
        print(path)
    return 0


def _cmd_reproduce(args) -> int:
    from .experiments import sweep

    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    t = time.perf_counter()
    try:
        table = sweep.reproduce(args.preset, out=args.out, seeds=args.seeds, epochs=args.epochs, models=models,
                                tc_estimator=args.tc_estimator, seeds_per_task=args.seeds_per_task,
                                backend=args.backend, address=args.address, device=args.device,
                                data_dir=args.data_dir, standard=args.standard_metrics)
    except sweep.SweepFailed as e:  # the others finished and the tables are written: show them, then say why
        md = Path(args.out) / "table.md"
        if md.exists():
            print(md.read_text())
        sys.stderr.write(f"welavae: error: {e}; run the same command again to retry "
                         f"(errors in {Path(args.out) / 'results.sqlite'})\n")
        return 1
    print((Path(args.out) / "table.md").read_text())
    print(f"{len(table)} models; wrote {args.out}/table.md, table.csv, results.sqlite, runs/, figures/ "
          f"in {time.perf_counter() - t:.0f}s")
    return 0


def _cmd_bench(args) -> int:
    from .bench import run_benchmark

    run_benchmark(device=args.device, json_path=args.json, fast=args.fast, paired=args.paired)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="welavae", description="WeLa-VAE: disentangled representations from weak labels.")
    parser.add_argument("--version", action="version", version=f"welavae {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("data", help="build (or reuse) the cached Blobs set and draw its figures")
    _add_data_args(p)
    p.add_argument("--label-dim", type=int, default=2, help="p for the label-region figure (default 2)")
    p.add_argument("--out", default=None, help="directory for samples.png and label_regions_pP.png")
    p.set_defaults(func=_cmd_data)

    p = sub.add_parser("train", help="train several seeds of one model at once")
    p.add_argument("--model", required=True, choices=tuple(MODELS))
    p.add_argument("--label-dim", type=int, default=None, help="Blobs: p, classes per weak label (wela: required)")
    p.add_argument("--latent-dim", type=int, default=None, help="K (default: 5 for tcvae, 2 for wela)")
    p.add_argument("--seeds", default="0", help="'0-7' or '0,1,2' (default 0)")
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--hidden", type=_int_list, default=(1200, 1200), help="hidden sizes, e.g. 1200,1200")
    p.add_argument("--beta", type=float, default=None, help="β in the paper's convention (default 40 for TC models)")
    p.add_argument("--gamma", type=float, default=None, help="γ (default: the paper's rule, 4096/p)")
    p.add_argument("--encoder", choices=ENCODERS, default="mlp")
    p.add_argument("--tc-estimator", choices=TC_ESTIMATORS, default="mss",
                   help="total-correlation estimator (Chen et al.): minibatch stratified (default) or weighted sampling")
    p.add_argument("--checkpoint-every", type=_positive_int, default=10, help="epochs between checkpoints")
    p.add_argument("--encoder-input", choices=ENCODER_INPUTS, default="image+labels",
                   help="image+labels: the paper's q(z|x,y) (default); image: a label-free encoder q(z|x)")
    p.add_argument("--label-head", choices=LABEL_HEADS, default="dense",
                   help="dense: labels decoded from all of z (paper); diagonal: label j from latent j alone")
    p.add_argument("--label-fraction", type=float, default=1.0,
                   help="keep the labels of this fraction of the samples (a seeded subset; the rest are missing)")
    p.add_argument("--label-seed", type=int, default=0, help="seed of the labelled subset (--label-fraction)")
    p.add_argument("--label-epochs", type=_epoch_window, default=None, metavar="A:B",
                   help="observe the labels in epochs A ... B-1 only; before and after every label is missing")
    p.add_argument("--init-from", default=None, metavar="RUN_DIR",
                   help="start each seed from that seed's weights of a finished run (same architecture; "
                        "a β-TCVAE may start a label-free-encoder WeLa-VAE); the optimizer starts fresh")
    p.add_argument("--track-every", type=_positive_int, default=0, metavar="E",
                   help="Blobs: write every seed's polar and Cartesian MSE every E epochs to RUN_DIR/tracking.csv")
    _add_user_data_args(p)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--out", required=True, help="run directory")
    _add_data_args(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("encode", help="encode images with a trained run: encoder means as z.npy")
    p.add_argument("run_dir", help="a directory written by `welavae train`")
    _add_user_data_args(p)
    p.add_argument("--out", required=True, help="output .npy: (S, N, K), or (N, K) with --seed")
    p.add_argument("--seed", type=int, default=None, help="encode with this seed only")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.set_defaults(func=_cmd_encode)

    p = sub.add_parser("evaluate", help="coordinate MSE, label accuracy and disentanglement metrics of a run")
    p.add_argument("run_dir", help="a directory written by `welavae train`")
    p.add_argument("--standard", choices=STANDARD, default="best",
                   help="disentanglement_lib metrics (MIG, DCI, SAP, modularity, FactorVAE; about a minute a seed) "
                        "for the seed of lowest polar MSE (default), every seed, or none")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("select", help="rank a run's seeds without ground truth (UDR, weak-label alignment, loss)")
    p.add_argument("run_dir", help="a directory written by `welavae train`")
    p.add_argument("--by", default="label_mig",
                   help="criterion: label_mig (default), label_single, udr_lasso, udr_spearman, loss, image_nll, "
                        "label_nll, kl, tc")
    p.add_argument("--json", default=None, help="also write the ranking and every score as JSON")
    p.set_defaults(func=_cmd_select)

    p = sub.add_parser("plot", help="reconstructions, latent traversals and positional heat maps of one seed")
    p.add_argument("run_dir", help="a directory written by `welavae train`")
    p.add_argument("--seed", type=int, default=None, help="which seed (default: the lowest polar MSE)")
    p.add_argument("--out", default=None, help="output directory (default RUN_DIR/figures)")
    p.add_argument("--data-dir", default=None, help="data cache directory")
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser("reproduce", help="the paper's Table 1: train, evaluate, tabulate (resumable)")
    from .experiments.plan import PRESETS  # plain data, no torch

    p.add_argument("--preset", choices=tuple(PRESETS), default="quick",
                   help="quick: 2-core CPU in minutes (default); table: all eight models of Table 1 on "
                        "quick's data and network; paper: the paper's settings")
    p.add_argument("--out", default="results", help="output directory (default ./results); rerun to resume")
    p.add_argument("--seeds", type=_positive_int, default=None, help="number of seeds per model (0..N-1)")
    p.add_argument("--epochs", type=_positive_int, default=None, help="override the preset's epochs")
    p.add_argument("--models", default=None, help="comma-separated: tcvae,wela_p2,...,wela_p8")
    p.add_argument("--tc-estimator", choices=TC_ESTIMATORS, default=None,
                   help="total-correlation estimator (default: the preset's; paper: mws, quick/table: mss)")
    p.add_argument("--seeds-per-task", type=_positive_int, default=None,
                   help="train a model's seeds in jobs of at most N (default: all in one job)")
    p.add_argument("--standard-metrics", choices=STANDARD, default=None,
                   help="disentanglement_lib metrics for each job's best seed, all seeds, or none (default: the preset's)")
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument("--address", default=None, help="Ray cluster address (with --backend ray)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--data-dir", default=None, help="data cache directory")
    p.set_defaults(func=_cmd_reproduce)

    p = sub.add_parser("bench", help="throughput: naive loop vs vectorised seeds vs the matmul peak")
    p.add_argument("--json", default=None, help="write the results as JSON")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--fast", action="store_true", help="a few steps only (a smoke test, not a measurement)")
    p.add_argument("--paired", action="store_true",
                   help="also time the naive loop between the trainer's epochs: drift-free ratios")
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv=None) -> int:
    # Transparent huge pages for torch's CPU allocator (see welavae.train.platform): torch reads
    # this once, at its first allocation, so the command line sets it before torch is imported.
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as e:
        sys.stderr.write(f"welavae: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("welavae: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
