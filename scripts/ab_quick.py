"""Has the quick MLP run lost speed since 0.2.0?  A same-run A/B (welavae.perf.ab) of one ``welavae train`` row.

The row of the question (issue: "the quick MLP may have lost a few per cent
since 0.2.0"): ``welavae train --model tcvae --variants 1 --shape disk
--hidden 64,32 --epochs 10 --batch-size 64 --lr 1e-3 --seeds 0-7``, timed by
the run's own clock (``status.json``'s ``seconds``: the training loop, not the
interpreter's start, the data or the evaluation), reference and current code
alternating, after one warm-up each.

    PYTHONPATH=$PWD python scripts/ab_quick.py --baseline 4ca4b81 --pairs 7 --json ab_quick.json
    PYTHONPATH=$PWD python scripts/ab_quick.py --baseline 4ca4b81 --current /path/to/other/tree

``--baseline``: a commit of this repository or a path (welavae.perf.ab.resolve_baseline);
``--current``: a source tree (default: the welavae this interpreter imports).
"""
from __future__ import annotations

import argparse
import json
import sys

from welavae.perf.ab import Installation, current_installation, resolve_baseline, run_ab, table

QUICK = ["train", "--model", "tcvae", "--variants", "1", "--shape", "disk", "--hidden", "64,32",
         "--batch-size", "64", "--lr", "1e-3", "--seeds", "0-7", "--out", "{out}"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", default="4ca4b81", help="commit or path of the reference (default 0.2.0, 4ca4b81)")
    p.add_argument("--current", default=None, help="source tree of the current code (default: this one)")
    p.add_argument("--pairs", type=int, default=7)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    ref = resolve_baseline(args.baseline)
    cur = Installation(sys.executable, args.current, f"{args.current} (source tree)") if args.current \
        else current_installation()
    row = {"name": "quick tcvae S=8", "argv": [*QUICK, "--epochs", str(args.epochs)],
           "seconds_from": "{out}/status.json:seconds"}
    result = run_ab([row], ref, cur, pairs=args.pairs, log=lambda line: print(line, file=sys.stderr, flush=True))
    if args.json:
        with open(args.json, "w") as f:
            f.write(json.dumps(result, indent=1) + "\n")
    print(table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
