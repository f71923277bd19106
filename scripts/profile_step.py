"""Operator profile of the quick MLP's training steps, for comparing two versions of the trainer.

The run of ``welavae train --model tcvae --variants 1 --shape disk --hidden 64,32
--epochs 10 --batch-size 64 --lr 1e-3 --seeds 0-7`` (disk Blobs, N = 4096,
64 steps an epoch), built through the library of whichever ``welavae`` is on
``PYTHONPATH`` (0.2.0 and later), and trained by its ``train``: the first
epoch (model set-up, allocation) is the profiler's warm-up, the second is
recorded, then the run stops.  Operator counts are exact; self CPU times are
as noisy as the machine.

    PYTHONPATH=/tmp/v020 python scripts/profile_step.py --json v020.json
    PYTHONPATH=$PWD      python scripts/profile_step.py --json main.json
    python scripts/profile_step.py --compare v020.json main.json

``--compare A B`` prints, per operator, calls per step and self CPU µs per
step in each, the operators whose counts differ first.
"""
from __future__ import annotations

import argparse
import json
import sys


class _Stop(Exception):
    pass


def _data(config):
    """Images and labels as the CLI reads them, for 0.2.0 (``prepare_data``) and later (``data.load``)."""
    try:
        from welavae.data.load import load
    except ImportError:  # 0.2.0
        from welavae.train.run import prepare_data

        images, labels, _ = prepare_data(config)
        return images, labels
    ds = load(config)
    return ds.images, ds.labels


def profile(epochs: int = 10, *, seeds=range(8), record_epoch: int = 2) -> dict:
    """Profile epoch ``record_epoch`` of the quick 8-seed tcvae run; per-operator calls and self CPU µs."""
    import torch
    from torch.profiler import ProfilerActivity, schedule

    import welavae
    from welavae.config import DataConfig, TrainConfig, make_run_config
    from welavae.train import trainer

    cfg = make_run_config("tcvae", data=DataConfig(variants=1, shape="disk"), hidden=(64, 32),
                          train=TrainConfig(epochs=epochs, batch_size=64, lr=1e-3))
    images, labels = _data(cfg)
    n, b = len(images), cfg.train.batch_size
    steps = n // b
    seeds = list(seeds)
    # What train(compile_nll="auto") decides for the whole run (the CLI's call).
    compiled = trainer.compile_pays("cpu", len(seeds) * b * cfg.model.image_dim * steps * epochs)
    prof = torch.profiler.profile(activities=[ProfilerActivity.CPU],
                                  schedule=schedule(wait=record_epoch - 2, warmup=1, active=1, repeat=1))

    def on_epoch(epoch, _means):
        prof.step()
        if epoch == record_epoch:
            raise _Stop

    with prof:
        try:
            trainer.train(cfg, seeds, images, labels, progress=False, on_epoch=on_epoch, compile_nll=compiled)
        except _Stop:
            pass
    ops = {}
    for e in prof.key_averages():
        ops[e.key] = {"calls": int(e.count), "self_cpu_us": float(e.self_cpu_time_total)}
    return {"welavae": welavae.__file__, "version": getattr(welavae, "__version__", "?"),
            "torch": torch.__version__, "threads": torch.get_num_threads(), "steps": steps,
            "images_dtype": str(getattr(images, "dtype", "?")), "compiled_nll": bool(compiled), "ops": ops}


def compare(a: dict, b: dict, *, top: int = 40) -> str:
    """Table of operators: calls per step and self CPU µs per step in a and b; differing counts first."""
    sa, sb = a["steps"], b["steps"]
    rows = []
    for name in sorted(set(a["ops"]) | set(b["ops"])):
        none = {"calls": 0, "self_cpu_us": 0.0}
        oa, ob = a["ops"].get(name, none), b["ops"].get(name, none)
        rows.append((name, oa["calls"] / sa, ob["calls"] / sb, oa["self_cpu_us"] / sa, ob["self_cpu_us"] / sb))
    differ = sorted((r for r in rows if r[1] != r[2]), key=lambda r: -abs(r[4] - r[3]))
    same = sorted((r for r in rows if r[1] == r[2]), key=lambda r: -(r[3] + r[4]))[:top]
    total_a = sum(r[3] for r in rows)
    total_b = sum(r[4] for r in rows)
    head = f"{'operator':44s} {'calls/step A':>12s} {'B':>8s} {'self µs/step A':>15s} {'B':>9s}"
    fmt = "{:44.44s} {:12.2f} {:8.2f} {:15.0f} {:9.0f}"
    lines = [f"A: {a['welavae']} ({a['version']}, images {a['images_dtype']})",
             f"B: {b['welavae']} ({b['version']}, images {b['images_dtype']})",
             f"self CPU per step: A {total_a / 1e3:.2f} ms, B {total_b / 1e3:.2f} ms",
             f"calls per step: A {sum(r[1] for r in rows):.1f}, B {sum(r[2] for r in rows):.1f}",
             "", "operators whose counts differ", head]
    lines += [fmt.format(*r) for r in differ]
    lines += ["", f"operators with equal counts (top {top} by time)", head]
    lines += [fmt.format(*r) for r in same]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", help="write the profile here")
    p.add_argument("--compare", nargs=2, metavar=("A", "B"), help="compare two profiles written by --json")
    args = p.parse_args(argv)
    if args.compare:
        a, b = (json.load(open(path)) for path in args.compare)
        print(compare(a, b))
        return 0
    result = profile()
    text = json.dumps(result, indent=1)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    top = sorted(result["ops"].items(), key=lambda kv: -kv[1]["self_cpu_us"])[:25]
    for name, o in top:
        calls, us = o["calls"] / result["steps"], o["self_cpu_us"] / result["steps"]
        print(f"{name:44.44s} {calls:8.2f} calls/step {us:9.0f} µs/step", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
