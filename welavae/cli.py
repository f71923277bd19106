"""Command line: flags in, one library call, results out.

Every verb has ``--help``.  Bad input exits with status 2 and one line
``welavae: error: …`` naming what is wrong.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import __version__

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


def _add_data_args(p):
    p.add_argument("--variants", type=_positive_int, default=25, help="blobs per position V (25: paper, N=102,400; 1: N=4,096)")
    p.add_argument("--data-dir", default=None, help="cache directory (default: $WELAVAE_DATA_DIR or ~/.cache/welavae)")
    p.add_argument("--shape", choices=("gaussian", "disk"), default="gaussian", help="blob shape (disk: the authors' shape)")


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


def _cmd_train(args) -> int:
    from .config import DataConfig, TrainConfig, make_run_config
    from .train.run import parse_seeds, train_run

    seeds = parse_seeds(args.seeds)
    data = DataConfig(variants=args.variants, shape=args.shape) if not args.npz else DataConfig(source="npz", path=args.npz)
    cfg = make_run_config(
        args.model,
        label_dim=args.label_dim,
        latent_dim=args.latent_dim,
        beta=args.beta,
        gamma=args.gamma,
        hidden=args.hidden,
        encoder=args.encoder,
        tc_estimator=args.tc_estimator,
        data=data,
        train=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                          checkpoint_every=args.checkpoint_every),
    )
    result = train_run(cfg, seeds, args.out, data_dir=args.data_dir, device=args.device)
    n_div = int(result.diverged.sum())
    print(f"{cfg.name}: {len(seeds)} seeds, {result.epochs_done} epochs in {result.seconds:.1f}s"
          f"{f', {n_div} diverged' if n_div else ''}; wrote {args.out}")
    return 0


def _cmd_evaluate(args) -> int:
    from .evaluate import evaluate_run

    result = evaluate_run(args.run_dir, standard=not args.no_standard)
    for row in result["seeds"]:
        acc = row["accuracy"]
        acc_s = "" if not acc else "  acc " + " ".join(f"{a:.3f}" for a in acc)
        print(f"seed {row['seed']:3d}  polar MSE {row['polar']['mse']:9.2f}  Cartesian MSE {row['cartesian']['mse']:9.2f}{acc_s}")
    print(f"wrote {Path(args.run_dir) / 'metrics.json'}")
    return 0


def _cmd_plot(args) -> int:
    from .evaluate import plot_run

    for path in plot_run(args.run_dir, seed=args.seed, out_dir=args.out, data_dir=args.data_dir):
        print(path)
    return 0


def _cmd_reproduce(args) -> int:
    from .experiments.sweep import reproduce

    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    t = time.perf_counter()
    table = reproduce(args.preset, out=args.out, seeds=args.seeds, epochs=args.epochs, models=models,
                      backend=args.backend, address=args.address, device=args.device, data_dir=args.data_dir)
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
    p.add_argument("--model", required=True, choices=("tcvae", "wela", "betavae", "dipvae"))
    p.add_argument("--label-dim", type=int, default=None, help="p, classes per weak label (wela: required)")
    p.add_argument("--latent-dim", type=int, default=None, help="K (default: 5 for tcvae, 2 for wela)")
    p.add_argument("--seeds", default="0", help="'0-7' or '0,1,2' (default 0)")
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--hidden", type=_int_list, default=(1200, 1200), help="hidden sizes, e.g. 1200,1200")
    p.add_argument("--beta", type=float, default=None, help="β in the paper's convention (default 40 for TC models)")
    p.add_argument("--gamma", type=float, default=None, help="γ (default: the paper's rule, 4096/p)")
    p.add_argument("--encoder", choices=("mlp", "conv"), default="mlp")
    p.add_argument("--tc-estimator", choices=("mss", "mws"), default="mss",
                   help="total-correlation estimator (Chen et al.): minibatch stratified (default) or weighted sampling")
    p.add_argument("--checkpoint-every", type=_positive_int, default=10, help="epochs between checkpoints")
    p.add_argument("--npz", default=None, help="train on a .npz with 'images' (and 'labels') instead of Blobs")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--out", required=True, help="run directory")
    _add_data_args(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="coordinate MSE, label accuracy and disentanglement metrics of a run")
    p.add_argument("run_dir", help="a directory written by `welavae train`")
    p.add_argument("--no-standard", action="store_true", help="skip MIG/DCI/SAP/modularity")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("plot", help="reconstructions, latent traversals and positional heat maps of one seed")
    p.add_argument("run_dir", help="a directory written by `welavae train`")
    p.add_argument("--seed", type=int, default=None, help="which seed (default: the lowest polar MSE)")
    p.add_argument("--out", default=None, help="output directory (default RUN_DIR/figures)")
    p.add_argument("--data-dir", default=None, help="data cache directory")
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser("reproduce", help="the paper's Table 1: train, evaluate, tabulate (resumable)")
    p.add_argument("--preset", choices=("quick", "paper"), default="quick",
                   help="quick: 2-core CPU in minutes (default); paper: the paper's settings")
    p.add_argument("--out", default="results", help="output directory (default ./results); rerun to resume")
    p.add_argument("--seeds", type=_positive_int, default=None, help="number of seeds per model (0..N-1)")
    p.add_argument("--epochs", type=_positive_int, default=None, help="override the preset's epochs")
    p.add_argument("--models", default=None, help="comma-separated: tcvae,wela_p2,...,wela_p8")
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
