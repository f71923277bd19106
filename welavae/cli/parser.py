"""The command line's flags: argparse types that refuse in one sentence, and :func:`build_parser`.

Each verb's parser sets ``command`` to the verb's name; :func:`welavae.cli.main` runs it.
"""
from __future__ import annotations

import argparse

from .. import __version__
from ..config import (
    ARCHS,
    COLORS,
    DECODER_HEADS,
    ENCODER_INPUTS,
    ENCODERS,
    PAPER_GAMMA,
    SUPERVISED_LOSSES,
    TC_ESTIMATORS,
)
from ..data.blobs import SHAPES
from ..data.published import BENCHMARKS
from ..device import DEVICE_HELP
from ..evaluate import STANDARD
from ..experiments.presets import PRESETS
from ..models import MODELS
from ..selection import CRITERIA, DEFAULT_CRITERION
from ..train.trainer import SEED_LAYOUTS

__all__ = ["build_parser"]


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

    p = sub.add_parser("encode", help="encode images with a trained run: encoder means as z.npy")
    p.add_argument("run_dir", help="a directory written by `welavae train`")
    _add_user_data_args(p)
    p.add_argument("--out", type=_path, required=True, help="output .npy: (S, N, K), or (N, K) with --seed")
    p.add_argument("--seed", type=int, default=None, help="encode with this seed only")
    p.add_argument("--device", default="cpu", help=DEVICE_HELP)
    p.add_argument("--allow-unfinished", action="store_true",
                   help="encode with the last checkpoint of a run whose training stopped before the end")

    p = sub.add_parser("evaluate", help="coordinate MSE, label accuracy and disentanglement metrics of a run")
    p.add_argument("run_dir", help="a directory written by `welavae train`")
    p.add_argument("--standard", choices=STANDARD, default="best",
                   help="disentanglement_lib metrics (MIG, DCI, SAP, modularity, FactorVAE; the slow part: "
                        "docs/performance.md) for the seed of lowest polar MSE (default), every seed, or none")

    p = sub.add_parser("select", help="rank a run's seeds without ground truth (UDR, weak-label alignment, loss)")
    p.add_argument("run_dir", help="a directory written by `welavae train`")
    p.add_argument("--by", default=DEFAULT_CRITERION,
                   help=f"criterion: {', '.join(CRITERIA)} (default {DEFAULT_CRITERION})")
    p.add_argument("--json", type=_path, default=None, help="also write the ranking and every score as JSON")

    p = sub.add_parser("plot", help="reconstructions, latent traversals and positional heat maps of one seed")
    p.add_argument("run_dir", help="a directory written by `welavae train`")
    p.add_argument("--seed", type=int, default=None, help="which seed (default: the lowest polar MSE)")
    p.add_argument("--out", type=_path, default=None, help="output directory (default RUN_DIR/figures)")
    p.add_argument("--data-dir", default=None, help="data cache directory")

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
    return parser
