"""Throughput benchmark (``welavae bench``): a naive one-seed loop vs the vectorised multi-seed trainer vs the
matmul peak, as ratios measured in one run.

The protocol, the rows, how a row is timed (one process per row, the first
epoch a warm-up), what ``--paired`` does, how FLOPs and the peak are counted:
docs/performance.md, "How `welavae bench` measures".
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
import multiprocessing
import os
import platform
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..config import DataConfig, ModelConfig, RunConfig, TrainConfig, make_run_config
from ..device import check_device
from ..nn.conv import DECODER_CHANNELS, ENCODER_CHANNELS, to_chw
from ..nn.vae import EnsembleVAE, plain_networks
from ..objectives.likelihoods import bernoulli_nll
from ..objectives.objective import objective_terms
from ..seeding import epoch_noise, epoch_permutation
from ..train.platform import speed_settings
from ..train.trainer import check_seed_layout, compile_pays, train

__all__ = [
    "ARCHS",
    "CONV_ARCHS",
    "DEFAULT_SEEDS",
    "NaiveVAE",
    "Row",
    "bench_config",
    "count_parameters",
    "multiply_adds",
    "main_table",
    "matmul_peak_gflops",
    "naive_steps",
    "naive_train",
    "protocol",
    "run_benchmark",
    "synthetic_data",
]

#: arch → (hidden sizes, batch size): the MLP rows.
ARCHS = {"paper": ((1200, 1200), 256), "quick": ((64, 32), 64)}
#: arch → (image shape, batch size): the ``--arch conv`` rows.
CONV_ARCHS = {"conv_gray": ((64, 64, 1), 64), "conv_rgb": ((64, 64, 3), 64)}

#: device type → arch → seed counts of the welavae rows.
DEFAULT_SEEDS = {
    "cpu": {"paper": (1, 8, 16), "quick": (1, 8, 16, 50), "conv_gray": (1, 8, 16), "conv_rgb": (1, 8, 16)},
    "cuda": {"paper": (1, 8, 16, 50), "quick": (1, 8, 16, 50), "conv_gray": (1, 8, 16, 50),
             "conv_rgb": (1, 8, 16, 50)},
}
FAST_SEEDS = (1, 2)
FAST_STEPS = 2
ROW_SECONDS = {"cpu": 6.0, "cuda": 3.0}
EPOCH_SECONDS_AT_PEAK = 0.25
MAX_STEPS_PER_EPOCH = 32
MIN_TIMED_STEPS = 2


# --------------------------------------------------------------------------- what is measured


@dataclasses.dataclass(frozen=True)
class Row:
    """One measurement: ``seeds`` seeds of ``arch`` trained by ``impl``; ``paired``: naive timed between epochs."""

    arch: str
    impl: str  # "naive" | "welavae"
    seeds: int
    paired: bool = False


def protocol(seed_counts: dict[str, tuple[int, ...]], *, paired: bool = False) -> tuple[Row, ...]:
    """The rows in the order they run: per arch, naive, the welavae rows, naive again (module docstring)."""
    return tuple(
        row
        for arch, counts in seed_counts.items()
        for row in (Row(arch, "naive", 1), *(Row(arch, "welavae", s, paired) for s in counts), Row(arch, "naive", 1))
    )


def bench_config(arch: str) -> RunConfig:
    """The WeLa-VAE run of one benchmark architecture (p = 2, K = 2, paper γ and β)."""
    train_cfg = TrainConfig(epochs=1, batch_size=_batch(arch))
    if arch in CONV_ARCHS:
        return make_run_config("wela", label_dim=2, arch="conv", image_shape=CONV_ARCHS[arch][0],
                               data=DataConfig(variants=1), train=train_cfg, name=f"bench_{arch}")
    return make_run_config("wela", label_dim=2, hidden=ARCHS[arch][0], data=DataConfig(variants=1),
                           train=train_cfg, name=f"bench_{arch}")


def _batch(arch: str) -> int:
    if arch not in ARCHS and arch not in CONV_ARCHS:
        raise ValueError(f"unknown benchmark architecture {arch!r}; choose from {sorted({**ARCHS, **CONV_ARCHS})}")
    return {**ARCHS, **CONV_ARCHS}[arch][1]


def _layer_sizes(m: ModelConfig) -> list[tuple[int, int]]:
    """(in, out) of every dense layer of one seed, encoder then decoder."""
    if m.encoder != "mlp":
        raise ValueError("the benchmark counts MLP encoders only")
    labels = sum(m.label_dims)
    enc = [m.image_dim + (labels if m.labels_in_encoder else 0), *m.hidden, 2 * m.latent_dim]
    dec = [m.latent_dim, *reversed(m.hidden), m.image_dim + labels]
    return [(a, b) for sizes in (enc, dec) for a, b in zip(sizes[:-1], sizes[1:])]


def count_parameters(m: ModelConfig) -> int:
    """Weights and biases of one seed's network: Σ (in + 1)·out over the dense layers, and for
    ``--arch conv`` c_out·(c_in·16 + 1) per convolution, c_in·c_out·16 + c_out per transposed one."""
    if m.arch != "conv":
        return sum((a + 1) * b for a, b in _layer_sizes(m))
    h, w, c = m.image_shape
    labels, k = sum(m.label_dims), m.latent_dim
    f = ENCODER_CHANNELS[-1] * (h // 16) * (w // 16)
    convs = sum(co * (ci * 16 + 1) for ci, co in zip((c, *ENCODER_CHANNELS), ENCODER_CHANNELS))
    sizes = (ENCODER_CHANNELS[-1], *DECODER_CHANNELS, c)
    deconvs = sum(ci * co * 16 + co for ci, co in zip(sizes[:-1], sizes[1:]))
    label_in = labels if m.labels_in_encoder else 0
    dense = (f + label_in + 1) * 256 + 257 * 2 * k + (k + 1) * 256 + 257 * f + (257 * labels if labels else 0)
    return convs + dense + deconvs


def _conv_multiply_adds(m: ModelConfig) -> list[int]:
    """Multiply-adds of every layer of one seed's ``--arch conv`` network on one sample, a bias add counted as one."""
    h, w, c = m.image_shape
    labels, k = sum(m.label_dims), m.latent_dim
    out, cin = [], c
    for cout in ENCODER_CHANNELS:  # conv: output positions · c_out · (c_in·16 + 1)
        h, w = h // 2, w // 2
        out.append(h * w * cout * (cin * 16 + 1))
        cin = cout
    f = cin * h * w
    label_in = labels if m.labels_in_encoder else 0
    dense = [(f + label_in, 256), (256, 2 * k), (k, 256), (256, f)] + ([(256, labels)] if labels else [])
    out += [(a + 1) * b for a, b in dense]
    # transposed: in positions · c_in·c_out·16 + out positions · c_out
    for cout in (*DECODER_CHANNELS, m.image_shape[2]):
        out.append(h * w * cin * cout * 16 + 4 * h * w * cout)
        h, w, cin = 2 * h, 2 * w, cout
    return out


def multiply_adds(m: ModelConfig) -> int:
    """M: the multiply-adds of one seed's network on one sample (module docstring, FLOPs); P for the MLP."""
    return sum(_conv_multiply_adds(m)) if m.arch == "conv" else count_parameters(m)


def _flops_per_seed_sample(m: ModelConfig) -> tuple[int, int]:
    """(6·M, the FLOPs actually run: 6·M less the first layer's unneeded input gradient 2·W₁)."""
    if m.arch == "conv":
        h, w, c = m.image_shape
        first = (h // 2) * (w // 2) * 32 * c * 16
    else:
        a, b = _layer_sizes(m)[0]
        first = a * b
    return 6 * multiply_adds(m), 6 * multiply_adds(m) - 2 * first


def synthetic_data(n: int, m: ModelConfig, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """Images (n, H, W) (or (n, H, W, C), C > 1) float32 uniform in [0, 1]; labels (n, m) int64,
    label j uniform in 0…p_j−1 (None without)."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, *(m.image_shape if m.channels > 1 else m.image_shape[:2]), generator=g)
    if not m.has_labels:
        return images.numpy(), None
    labels = torch.stack([torch.randint(0, p, (n,), generator=g) for p in m.label_dims], dim=1)
    return images.numpy(), labels.numpy()


# --------------------------------------------------------------------------- the naive reference


class NaiveVAE:
    """One seed in stock PyTorch: encoder and decoder ``nn.Sequential`` and the default (unfused) Adam.

    Starts from the weights of seed ``seed`` of :class:`EnsembleVAE` and
    minimises the same objective, so it is the trainer written plainly
    (labels all present: no missing-label masks).
    """

    def __init__(self, config: RunConfig, seed: int, device="cpu"):
        self.config = config
        encoder, decoder = plain_networks(EnsembleVAE(config.model, [seed]), 0)
        self.encoder, self.decoder = encoder.to(device), decoder.to(device)
        t = config.train
        self.optimizer = torch.optim.Adam(self.parameters(), lr=t.lr, betas=t.adam_betas, eps=t.adam_eps)

    def terms(self, x: torch.Tensor, y: torch.Tensor | None, eps: torch.Tensor, dataset_size: int) -> dict:
        """x (B, D), y (B, m) ints, eps (B, K) → the objective's terms, each (1,)."""
        m = self.config.model
        onehots = [F.one_hot(y[:, j], p).to(x.dtype) for j, p in enumerate(m.label_dims)] \
            if m.labels_in_encoder else []
        if m.arch == "conv":  # stock modules of plain_networks: labels join after the convs
            xi = to_chw(x, m.image_shape)  # (B, C, H, W)
            x = xi.view(len(x), -1)  # the loss compares in the decoder's (C, H, W) order
            mu, logvar = self.encoder["head"](torch.cat([self.encoder["features"](xi), *onehots], 1)).chunk(2, -1)
            z = mu + torch.exp(0.5 * logvar) * eps
            h = self.decoder["trunk"](z)
            img = self.decoder["image"](h).flatten(1)  # (B, D)
            labels = self.decoder["labels"](h).split(m.label_dims, dim=1) if m.has_labels else []
        else:
            h = torch.cat([x, *onehots], dim=1)  # (B, D + Σ p_j)
            mu, logvar = self.encoder(h).chunk(2, dim=-1)  # (B, K) each
            z = mu + torch.exp(0.5 * logvar) * eps
            img, *labels = self.decoder(z).split([m.image_dim, *m.label_dims], dim=1)  # (B, D), m × (B, p_j)
        return objective_terms(self.config.objective, image_nll=bernoulli_nll(img[None], x), mu=mu[None],
                               logvar=logvar[None], z=z[None], dataset_size=dataset_size,
                               y=y if m.has_labels else None,
                               label_logits=[lab[None] for lab in labels] if m.has_labels else None)

    def step(self, x, y, eps, dataset_size: int) -> torch.Tensor:
        """One Adam step; returns the loss (1,) before it."""
        loss = self.terms(x, y, eps, dataset_size)["loss"]
        self.optimizer.zero_grad()
        loss.sum().backward()
        self.optimizer.step()
        return loss.detach()

    def parameters(self):
        return [*self.encoder.parameters(), *self.decoder.parameters()]


def naive_steps(naive: NaiveVAE, seed: int, x_all: torch.Tensor, y_all: torch.Tensor | None):
    """Train ``naive`` for ever, yielding (epoch, step) after every step.

    x_all (N, D), y_all (N, m) on the model's device.  Data order and noise
    are drawn exactly as :func:`welavae.train.train` draws them for ``seed``.
    """
    cfg = naive.config
    n, b, k = len(x_all), cfg.train.batch_size, cfg.model.latent_dim
    steps = n // b
    for epoch in itertools.count():
        perm = epoch_permutation(n, cfg.train.data_seed, epoch).to(x_all.device)
        noise = epoch_noise([seed], epoch, steps, b, k)[0].to(x_all.device)  # (steps, B, K)
        for t in range(steps):
            idx = perm[t * b : (t + 1) * b]
            naive.step(x_all[idx], None if y_all is None else y_all[idx], noise[t], n)
            yield epoch, t


def _on_device(images, labels, device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(N, H, W) images and (N, m) labels as tensors x (N, D), y (N, m) on ``device``."""
    x = torch.from_numpy(np.ascontiguousarray(images).reshape(len(images), -1)).to(device)
    return x, None if labels is None else torch.from_numpy(np.asarray(labels)).to(device)


def naive_train(config: RunConfig, seeds, images, labels=None, *, device="cpu", on_epoch=None,
                tf32: bool = False) -> list[NaiveVAE]:
    """:func:`welavae.train.train` written naively: one :class:`NaiveVAE` per seed, one seed after another.

    ``config.train.epochs`` epochs of N // B steps each; ``on_epoch(epoch, None)``
    after every epoch of every seed.  Runs under the trainer's speed
    settings, so that only the code differs.
    """
    device = torch.device(device)
    x_all, y_all = _on_device(images, labels, device)
    steps_per_epoch = len(x_all) // config.train.batch_size
    models = []
    with speed_settings(device, tf32=tf32):
        for seed in seeds:
            naive = NaiveVAE(config, seed, device)
            stepper = naive_steps(naive, seed, x_all, y_all)
            for epoch in range(1, config.train.epochs + 1):
                for _ in range(steps_per_epoch):
                    next(stepper)
                if on_epoch is not None:
                    on_epoch(epoch, None)
            models.append(naive)
    return models


# --------------------------------------------------------------------------- timing


class _Clock:
    """The benchmark's one timer: :meth:`lap` is the wall time since the last lap, read after the device is idle."""

    def __init__(self, device):
        self.device = torch.device(device)
        self.last = self._now()

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # kernels run asynchronously: wait for them
        return time.perf_counter()

    def lap(self) -> float:
        now = self._now()
        seconds, self.last = now - self.last, now
        return seconds


class _EpochLaps:
    """``on_epoch`` callback: ``epochs`` holds the seconds of every epoch (the first with the set-up before it).

    With ``naive`` (a :func:`naive_steps` iterator), paired: after each epoch
    the naive loop runs for about as long (one step after the warm-up
    epoch), on the clock apart, and ``naive_laps`` gets its (seconds, steps);
    the trainer's next lap starts after it.
    """

    def __init__(self, device, naive=None):
        self.clock = _Clock(device)
        self.epochs: list[float] = []
        self.naive, self.naive_laps = naive, []

    def __call__(self, epoch: int, _means=None) -> None:
        ours = self.clock.lap()
        self.epochs.append(ours)
        if self.naive is None:
            return
        budget = ours if len(self.epochs) > 1 else 0.0
        seconds, steps = 0.0, 0
        while steps == 0 or seconds < budget:
            next(self.naive)
            steps += 1
            seconds += self.clock.lap()
        self.naive_laps.append((seconds, steps))


def matmul_peak_gflops(device="cpu", *, n: int | None = None, repeats: int = 5, tf32: bool = False) -> float:
    """Best fp32 ``torch.mm`` rate of n×n matrices on ``device`` under the trainer's speed settings, GFLOP/s."""
    device = torch.device(device)
    n = n or (8192 if device.type == "cuda" else 2048)
    inner = 10 if device.type == "cuda" else 1  # GPU: amortise the synchronisation
    g = torch.Generator().manual_seed(0)
    a, b = (torch.rand(n, n, generator=g).to(device) for _ in range(2))
    c = torch.empty(n, n, device=device)
    best = math.inf
    with speed_settings(device, tf32=tf32):
        torch.mm(a, b, out=c)  # warm-up
        clock = _Clock(device)
        for _ in range(repeats):
            clock.lap()
            for _ in range(inner):
                torch.mm(a, b, out=c)
            best = min(best, clock.lap() / inner)
    return 2.0 * n**3 / best / 1e9


# --------------------------------------------------------------------------- one row, in a process of its own


def _peak_rss_mb() -> float:
    """This process's peak resident set so far, MB (``ru_maxrss`` is in kB on Linux, in bytes on macOS)."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / (2**20 if sys.platform == "darwin" else 2**10)


def _in_own_process(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` in a fresh child process, so that its peak memory is its own; returns its result.

    Children fork from multiprocessing's fork server (spawned where there is
    none), which imports torch and this module once instead of every row,
    and torch._dynamo, which the first optimizer of a process imports.  A
    script that calls this needs the ``if __name__ == "__main__":`` guard.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__, "torch._dynamo"])  # read when the server first starts
    else:
        ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def _measure_row(row: Row, *, device: str, steps_per_epoch: int, timed_epochs: int | None, seconds: float,
                 tf32: bool, seed_layout: str = "auto") -> dict:
    """Time one row (module docstring, Timing); run by :func:`_in_own_process`.

    Returns the timed seconds and steps, whether the likelihood was
    compiled, this process's peak memory, the conv layers' seed layout
    (``seed_layout``: the first ``train`` call's choice, which the timed call
    then runs in; None for the naive loop and the MLP) and, paired, the median ratio.
    """
    device = torch.device(device)
    config = bench_config(row.arch)
    k, b = steps_per_epoch, config.train.batch_size
    images, labels = synthetic_data(b * k, config.model)
    logits = row.seeds * b * config.model.image_dim * k * (1 + timed_epochs if timed_epochs else math.inf)
    compiled = row.impl == "welavae" and config.model.arch == "mlp" and compile_pays(device, logits)
    layout = {"asked": seed_layout, "choice": None}

    def run(epochs: int, paired: bool) -> _EpochLaps:
        naive = None
        if paired:
            naive = naive_steps(NaiveVAE(config, 0, device), 0, *_on_device(images, labels, device))
        laps = _EpochLaps(device, naive)
        cfg = dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=epochs))
        if row.impl == "naive":
            naive_train(cfg, [0], images, labels, device=device, on_epoch=laps, tf32=tf32)
        else:
            result = train(cfg, list(range(row.seeds)), images, labels, device=device, progress=False,
                           on_epoch=laps, tf32=tf32, compile_nll=compiled, seed_layout=layout["asked"])
            if layout["choice"] is None and result.seed_layout is not None:  # the probe's choice, kept
                layout.update(choice=result.seed_layout, asked=result.seed_layout["layout"])
        return laps

    if timed_epochs is None:
        epoch_seconds = run(2, paired=False).epochs[1]
        timed_epochs = max(math.ceil(seconds / epoch_seconds), math.ceil(MIN_TIMED_STEPS / k))
    laps = run(1 + timed_epochs, paired=row.paired)
    out = {"seconds": sum(laps.epochs[1:]), "steps": timed_epochs * k, "steps_per_epoch": k,
           "compiled_nll": compiled, "peak_rss_mb": round(_peak_rss_mb(), 1), "seed_layout": layout["choice"]}
    if row.paired:
        ours = [row.seeds * b * k / s for s in laps.epochs[1:]]
        naive = [b * n / s for s, n in laps.naive_laps[1:]]
        out["paired"] = {"pairs": len(ours), "speedup_vs_naive_median": float(np.median(np.divide(ours, naive))),
                         "naive_seed_samples_per_s_median": float(np.median(naive))}
    if device.type == "cuda":
        out["peak_device_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return out


def _rate(row: Row, measured: dict) -> float:
    """seed_samples_per_s of a measured row: S · batch · timed steps / timed seconds."""
    return row.seeds * _batch(row.arch) * measured["steps"] / measured["seconds"]


def _steps_per_epoch(flops_per_step: float, peak_gflops: float, steps: int | None) -> int:
    k = round(EPOCH_SECONDS_AT_PEAK * peak_gflops * 1e9 / flops_per_step)
    k = max(1, min(MAX_STEPS_PER_EPOCH, k))
    return k if steps is None else min(k, steps)


# --------------------------------------------------------------------------- the benchmark


def _seed_counts(seeds, archs, device_type: str, fast: bool) -> dict[str, tuple[int, ...]]:
    """arch → seed counts of its welavae rows, from ``seeds`` (a tuple, a dict arch → tuple, or None)."""
    out = {}
    for arch in archs:
        bench_config(arch)  # validates the name
        chosen = seeds.get(arch) if isinstance(seeds, dict) else seeds
        if chosen is None:
            chosen = FAST_SEEDS if fast else DEFAULT_SEEDS[device_type][arch]
        chosen = tuple(int(s) for s in chosen)
        if not chosen or min(chosen) < 1:
            raise ValueError(f"bench: seed counts must be integers >= 1, got {chosen} for {arch!r}")
        out[arch] = chosen
    return out


def run_benchmark(
    *,
    device="cpu",
    archs=("paper", "quick", "conv_gray", "conv_rgb"),
    seeds=None,
    steps: int | None = None,
    seconds: float | None = None,
    json_path=None,
    print_table: bool = True,
    fast: bool = False,
    tf32: bool = False,
    paired: bool = False,
    seed_layout: str = "auto",
) -> dict:
    """Run the benchmark described in the module docstring and return its result.

    seeds: seed counts of the welavae rows — a tuple for every arch, a dict
    arch → tuple, or None for :data:`DEFAULT_SEEDS` of the device type.
    steps: timed steps per row (None: ``seconds`` of timed wall time per row,
    :data:`ROW_SECONDS` by default).  fast: a smoke test, not a measurement —
    seeds (1, 2), :data:`FAST_STEPS` timed steps, a small peak matmul.
    paired: time the naive loop between the trainer's epochs in each welavae
    row too (``row["paired"]``).  seed_layout: the welavae conv rows' layout
    (:func:`welavae.train.train`; ``"auto"``: each row times both and keeps the
    faster, ``row["seed_layout"]`` says which).  Writes the result as JSON to ``json_path``
    if given; prints a line per row to stderr and :func:`main_table` if
    ``print_table``.
    """
    device = check_device(device)  # counts devices without creating a CUDA context
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"bench: device must be 'cpu' or 'cuda', got {str(device)!r}")
    check_seed_layout(seed_layout)
    plan = protocol(_seed_counts(seeds, archs, device.type, fast), paired=paired)
    if fast and steps is None:
        steps = FAST_STEPS
    if steps is not None and int(steps) < 1:
        raise ValueError(f"bench: steps must be >= 1, got {steps}")
    seconds = ROW_SECONDS[device.type] if seconds is None else float(seconds)
    peak_kw = {"n": 256, "repeats": 2} if fast else {}

    t_start = time.perf_counter()
    # Everything that touches the device runs in a child: a CUDA context held here would make
    # every row fail on a GPU in exclusive-process mode, and would hold device memory.
    machine = _in_own_process(_machine, device, tf32)  # before we load the machine ourselves
    peak = _in_own_process(matmul_peak_gflops, device, tf32=tf32, **peak_kw)
    measured = []
    for row in plan:
        b = _batch(row.arch)
        flops_per_step = _flops_per_seed_sample(bench_config(row.arch).model)[0] * b * row.seeds
        k = _steps_per_epoch(flops_per_step, peak, steps)
        m = _in_own_process(_measure_row, row, device=str(device), steps_per_epoch=k,
                            timed_epochs=None if steps is None else math.ceil(steps / k), seconds=seconds, tf32=tf32,
                            seed_layout=seed_layout)
        measured.append(m)
        if print_table:
            print(f"bench: {row.arch} {row.impl} S={row.seeds}: {_rate(row, m):,.0f} seed-samples/s "
                  f"({m['steps']} steps in {m['seconds']:.2f} s{_layout_note(m.get('seed_layout'))})",
                  file=sys.stderr, flush=True)
    peak = max(peak, _in_own_process(matmul_peak_gflops, device, tf32=tf32, **peak_kw))  # drift: keep the better

    result = {
        "peak_gflops": peak,
        "rows": _result_rows(plan, measured, peak),
        "machine": machine,
        "archs": {arch: _arch_info(arch) for arch in dict.fromkeys(r.arch for r in plan)},
        "settings": {"fast": bool(fast), "paired": bool(paired), "steps": steps, "seed_layout": seed_layout,
                     "seconds_per_row": None if steps is not None else seconds,
                     "wall_seconds": round(time.perf_counter() - t_start, 1)},
    }
    if json_path is not None:
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n")
    if print_table:
        print(main_table(result))
    return result


def _result_rows(plan: tuple[Row, ...], measured: list[dict], peak: float) -> list[dict]:
    """The JSON rows: rates and FLOP rates; per arch the faster naive run first, then the welavae rows, with ratios."""
    out = []
    for arch in dict.fromkeys(r.arch for r in plan):
        flops, matmul_flops = _flops_per_seed_sample(bench_config(arch).model)
        rows = []
        for row, m in zip(plan, measured):
            if row.arch == arch:
                rate = _rate(row, m)
                rows.append({"arch": arch, "impl": row.impl, "seeds": row.seeds, "seed_samples_per_s": rate,
                             "gflops": rate * flops / 1e9, **m, "matmul_gflops": rate * matmul_flops / 1e9,
                             "fraction_of_peak": rate * flops / 1e9 / peak})
        naive_runs = [r for r in rows if r["impl"] == "naive"]
        reference = max(naive_runs, key=lambda r: r["seed_samples_per_s"])
        reference["naive_runs"] = [r["seed_samples_per_s"] for r in naive_runs]
        rows = [reference, *(r for r in rows if r["impl"] != "naive")]
        for r in rows:
            r["speedup_vs_naive"] = r["seed_samples_per_s"] / reference["seed_samples_per_s"]
        out.extend(rows)
    return out


def _arch_info(arch: str) -> dict:
    config = bench_config(arch)
    m = config.model
    flops, matmul_flops = _flops_per_seed_sample(m)
    conv = m.arch == "conv"
    return {"network": m.arch, "image_shape": list(m.image_shape), "hidden": None if conv else list(m.hidden),
            "batch_size": config.train.batch_size, "latent_dim": m.latent_dim,
            "label_dim": m.label_dim, "parameters_per_seed": count_parameters(m),
            "multiply_adds_per_seed_sample": multiply_adds(m),
            "flops_per_seed_sample": flops, "matmul_flops_per_seed_sample": matmul_flops}


def _machine(device: torch.device, tf32: bool) -> dict:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as f:  # Linux names the CPU model only here
                name = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), name)
        except OSError:
            pass
    info = {"device": str(device), "device_name": name, "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch_version": torch.__version__,
            "python": platform.python_version()}
    if hasattr(os, "getloadavg"):
        # Other processes share the CPU: a load above the core count means the timings are pessimistic.
        info["load_average_1min"] = round(os.getloadavg()[0], 2)
    if device.type == "cuda":
        info["tf32"] = bool(tf32)
    else:
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    return info


# --------------------------------------------------------------------------- the table

#: (header, cell of a row given the peak GFLOP/s); "× naive, paired" is added when a row has it.
_COLUMNS = (
    ("arch", lambda r, peak: r["arch"]),
    ("impl", lambda r, peak: r["impl"]),
    ("seeds", lambda r, peak: str(r["seeds"])),
    ("seed-samples/s", lambda r, peak: f"{r['seed_samples_per_s']:,.0f}"),
    ("GFLOP/s", lambda r, peak: f"{r['gflops']:.1f}"),
    ("% of peak", lambda r, peak: f"{100 * r['gflops'] / peak:.1f}"),
    ("× naive", lambda r, peak: f"{r['speedup_vs_naive']:.2f}" if "speedup_vs_naive" in r else ""),
    ("peak RSS MB", lambda r, peak: f"{r['peak_rss_mb']:,.0f}"),
    ("peak device MB", lambda r, peak: f"{r['peak_device_mb']:,.0f}" if "peak_device_mb" in r else "-"),
)
_LAYOUT_COLUMN = ("seed layout", lambda r, peak: _layout_cell(r.get("seed_layout")))
_PAIRED_COLUMN = ("× naive, paired",
                  lambda r, peak: f"{r['paired']['speedup_vs_naive_median']:.2f}" if "paired" in r else "")


def main_table(result: dict) -> str:
    """The result as an aligned text table, one line per row, under a line naming the machine and its peak."""
    rows, peak = result["rows"], result["peak_gflops"]
    columns = (_COLUMNS + ((_LAYOUT_COLUMN,) if any(r.get("seed_layout") for r in rows) else ())
               + ((_PAIRED_COLUMN,) if any("paired" in r for r in rows) else ()))
    cells = [[header for header, _ in columns], *([cell(r, peak) for _, cell in columns] for r in rows)]
    m = result.get("machine", {})
    title = f"matmul peak {peak:.1f} GFLOP/s"
    if m:
        title += f" on {m.get('device_name', m.get('device', '?'))} ({m.get('device')}, torch {m.get('torch_version')})"
        if m.get("load_average_1min") is not None:
            title += f"; load average {m['load_average_1min']:.2f} on {m.get('cpu_count')} CPUs at start"
    return "\n".join([title, *_align(cells, left=2)])


def _layout_cell(choice: dict | None) -> str:
    """A row's seed layout: ``per-seed (timed)``, ``grouped (given)``; "-" without a choice (naive, MLP, S = 1)."""
    return "-" if not choice else f"{choice['layout']} ({choice['chosen']})"


def _layout_note(choice: dict | None) -> str:
    return "" if not choice else f", {_layout_cell(choice)}"


def _align(cells: list[list[str]], *, left: int) -> list[str]:
    """A header and rows of cells as lines, a rule under the header; the first ``left`` columns left-aligned."""
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = [cells[0], ["-" * w for w in widths], *cells[1:]]
    return ["  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
            for line in lines]
