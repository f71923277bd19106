"""Which layout runs S seeds' convolutions fastest: grouped convolutions, torch.func.vmap, or a loop over seeds.

The convolutions of ``--arch conv`` (welavae/nn/conv.py: encoder 4×4 stride-2
convs C→32→32→64→64, decoder transposed convs 64→64→32→32→C), forward and
backward, batch 64, 64×64×C, S seeds, on the CPU.  Prints the best of
``--repeats`` wall times of each layout (rounds interleaved, so that a
change in the machine's load hits every layout alike).

    python scripts/conv_layouts.py --seeds 8 --channels 1
"""
from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F
from torch.func import vmap


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    s, b, c = args.seeds, args.batch, args.channels
    g = torch.Generator().manual_seed(0)
    enc, dec = [c, 32, 32, 64, 64], [64, 64, 32, 32, c]
    # Grouped layout (nn.Conv2d / nn.ConvTranspose2d weights, seeds stacked along dim 0).
    we = [(0.1 * torch.randn(s * co, ci, 4, 4, generator=g)).requires_grad_() for ci, co in zip(enc[:-1], enc[1:])]
    be = [torch.zeros(s * co, requires_grad=True) for co in enc[1:]]
    wd = [(0.1 * torch.randn(s * ci, co, 4, 4, generator=g)).requires_grad_() for ci, co in zip(dec[:-1], dec[1:])]
    bd = [torch.zeros(s * co, requires_grad=True) for co in dec[1:]]
    x = torch.rand(b, c, 64, 64, generator=g)
    h0 = torch.rand(b, s * 64, 4, 4, generator=g)

    def grouped():
        h = x
        for j, (w, bias) in enumerate(zip(we, be)):
            h = F.relu(F.conv2d(h, w, bias, 2, 1, groups=1 if j == 0 else s))
        y = h0
        for j, (w, bias) in enumerate(zip(wd, bd)):
            y = F.conv_transpose2d(y if j == 0 else F.relu(y), w, bias, 2, 1, groups=s)
        return h.sum() + y.sum()

    def one_seed(ws, bs, vs, cs, hin):
        h = x
        for w, bias in zip(ws, bs):
            h = F.relu(F.conv2d(h, w, bias, 2, 1))
        y = hin
        for j, (w, bias) in enumerate(zip(vs, cs)):
            y = F.conv_transpose2d(y if j == 0 else F.relu(y), w, bias, 2, 1)
        return h.sum() + y.sum()

    def split(ts):  # (S·a, …) → (S, a, …) views of the same storage
        return [t.view(s, -1, *t.shape[1:]) for t in ts]

    h_seeds = h0.view(b, s, 64, 4, 4).transpose(0, 1)

    def batched():
        return vmap(one_seed)(split(we), split(be), split(wd), split(bd), h_seeds).sum()

    def loop():
        parts = [split(ts) for ts in (we, be, wd, bd)]
        return sum(one_seed(*([t[i] for t in ts] for ts in parts), h_seeds[i]) for i in range(s))

    layouts = {"grouped": grouped, "vmap": batched, "loop over seeds": loop}
    best = {name: float("inf") for name in layouts}
    for f in layouts.values():
        f().backward()  # warm-up
    for _ in range(args.repeats):
        for name, f in layouts.items():
            t = time.perf_counter()
            f().backward()
            best[name] = min(best[name], time.perf_counter() - t)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"S={s} B={b} 64x64x{c}, {torch.get_num_threads()} threads, load average {load:.1f}: "
          "forward + backward of the convolutions, best of", args.repeats)
    for name, sec in best.items():
        print(f"  {name:16s} {sec:6.2f} s  ({s * b / sec:6.1f} seed-samples/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
