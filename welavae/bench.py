"""Throughput benchmark: the naive one-seed loop vs the vectorised multi-seed trainer vs the matmul peak.

``welavae bench`` (DESIGN.md, public contract) writes::

    {"peak_gflops": float,
     "rows": [{"arch", "impl": "naive"|"welavae", "seeds", "seed_samples_per_s", "gflops", "peak_rss_mb", …}],
     "machine": {…}, "archs": {…}, "settings": {…}}

What is measured, and how:

* **Architectures.** WeLa-VAE, p = 2, K = 2, γ and β by the paper's rule
  (§4.3), MLP encoder 4096+4 → H1 → H2 → 2K and decoder K → H2 → H1 → 4096+4.
  ``paper``: hidden (1200, 1200), batch 256; ``quick``: hidden (64, 32), batch 64.
* **naive** — what one would write without this package: one seed as two
  stock ``nn.Sequential`` (:func:`welavae.nn.plain_networks`, the same initial
  weights as that seed of the ensemble), the default ``torch.optim.Adam``
  (not fused), the same objective (:func:`welavae.objectives.objective_terms`
  on S = 1), the same data order and noise as the trainer draws them.  It
  trains one seed; S seeds cost S times as long, so its row has ``seeds`` 1.
  It runs under the trainer's allocator setting (:func:`heap_reuse`), twice:
  before and after the arch's welavae rows, and the faster run is kept
  (``naive_runs`` lists both) — the machine's speed drifts, and a slow naive
  run would flatter the ratios.
* **welavae** — :func:`welavae.train.train` itself with S seeds, on synthetic
  data (uniform images in [0, 1], uniform labels), with its defaults: on the
  CPU a row is a long run, so the image likelihood is the compiled kernel
  (``compiled_nll``), compiled during the untimed warm-up epoch.
* **Timing.** A row trains whole epochs of k steps; the first epoch is
  warm-up and is not timed (allocations, kernel selection, lazy CUDA init).
  Clocks are read at epoch boundaries (via the trainer's ``on_epoch``
  callback, after ``torch.cuda.synchronize()`` on a GPU); a row stops at the
  first epoch boundary with ``seconds`` of timed wall time and at least two
  timed steps, or after exactly ``steps`` steps when given.  k is chosen so
  that an epoch would take about a quarter of a second at the matmul peak
  (1 ≤ k ≤ 32); the trainer's per-epoch work (shuffle, noise, history) is
  timed too, as it is part of training.
  ``seed_samples_per_s`` = S · batch · timed steps / timed seconds.
* **Paired** (``--paired``).  The machine's speed can drift between rows
  (on a shared 2-core VM by ±15 % within seconds), which moves the ratio of
  two rows run a minute apart.  With ``paired`` each welavae row also runs
  the naive loop after every trainer epoch, for about as long, timed apart;
  ``row["paired"]`` has the median of the per-epoch ratios
  (``speedup_vs_naive_median``) — a ratio of two rates measured seconds apart.
* **FLOPs.** ``gflops`` = 6 · P · seed_samples_per_s / 1e9 with P the
  parameters of one seed's network counted from the layer sizes
  (:func:`count_parameters`): the usual 2 FLOPs per weight forward and 4
  backward.  The first layer's input gradient is never computed (the data
  need none), so the matmuls really executed are 6·P − 2·W₁ per sample
  (W₁ = first-layer weights); ``matmul_gflops`` reports that count — for the
  paper architecture it is 13 % below ``gflops``.
* **peak_gflops** — best of several large square fp32 ``torch.mm`` on the
  device (2048² on the CPU, 8192² on a GPU), measured before and after the
  rows, the higher kept.  On a GPU the benchmark runs with the trainer's
  TF32 setting (``tf32``) for the peak, the naive loop and the trainer alike,
  so the fraction compares like with like.
* **peak_rss_mb** — peak resident set of this process during the row: on
  Linux the kernel's high-water mark (``VmHWM``), reset before each row by
  writing 5 to ``/proc/self/clear_refs``; elsewhere a 5 ms sampler of
  ``VmRSS`` or, lacking ``/proc``, the process-wide ``ru_maxrss`` (monotone:
  an upper bound).  It includes the interpreter and torch (~0.4 GB); freed
  heap is handed back (``malloc_trim``) before each row.
  On a GPU, rows also report ``peak_device_mb`` (``torch.cuda.max_memory_allocated``).

Default seeds: on the CPU the paper architecture runs S ∈ {1, 8, 16} (S = 50
would take ~10 GB and ~10 s a step on two cores), the quick one
S ∈ {1, 8, 16, 50}; on a GPU both run all four.  The default run takes
about 90 s on a 2-core CPU.  Other processes on the machine slow the
two-thread CPU kernels badly (``machine.load_average_1min`` records the
load at the start): compare rows of one run, and repeat when in doubt.
"""
from __future__ import annotations

import dataclasses
import gc
import itertools
import json
import math
import os
import platform
import resource
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .config import DataConfig, ModelConfig, RunConfig, TrainConfig, make_run_config
from .nn.vae import EnsembleVAE, plain_networks
from .objectives.objective import objective_terms
from .train.trainer import compile_pays, epoch_noise, epoch_permutation, heap_reuse, train

__all__ = [
    "ARCHS",
    "DEFAULT_SEEDS",
    "NaiveVAE",
    "bench_config",
    "count_parameters",
    "main_table",
    "matmul_peak_gflops",
    "naive_steps",
    "run_benchmark",
    "synthetic_data",
]

#: arch → (hidden sizes, batch size).
ARCHS = {"paper": ((1200, 1200), 256), "quick": ((64, 32), 64)}

#: device type → arch → seed counts of the welavae rows.
DEFAULT_SEEDS = {
    "cpu": {"paper": (1, 8, 16), "quick": (1, 8, 16, 50)},
    "cuda": {"paper": (1, 8, 16, 50), "quick": (1, 8, 16, 50)},
}
FAST_SEEDS = (1, 2)
FAST_STEPS = 2
ROW_SECONDS = {"cpu": 6.0, "cuda": 3.0}
EPOCH_SECONDS_AT_PEAK = 0.25
MAX_STEPS_PER_EPOCH = 32


# --------------------------------------------------------------------------- set-up


def bench_config(arch: str) -> RunConfig:
    """The WeLa-VAE run of one benchmark architecture (p = 2, K = 2, paper γ and β)."""
    if arch not in ARCHS:
        raise ValueError(f"unknown benchmark architecture {arch!r}; choose from {sorted(ARCHS)}")
    hidden, batch = ARCHS[arch]
    return make_run_config("wela", label_dim=2, hidden=hidden, data=DataConfig(variants=1),
                           train=TrainConfig(epochs=1, batch_size=batch), name=f"bench_{arch}")


def _layer_sizes(m: ModelConfig) -> list[tuple[int, int]]:
    """(in, out) of every dense layer of one seed, encoder then decoder."""
    if m.encoder != "mlp":
        raise ValueError("the benchmark counts MLP encoders only")
    label = m.num_labels * m.label_dim if m.has_labels else 0
    label_in = label if m.labels_in_encoder else 0
    enc = [m.image_dim + label_in, *m.hidden, 2 * m.latent_dim]
    dec = [m.latent_dim, *reversed(m.hidden), m.image_dim + label]
    return [(a, b) for sizes in (enc, dec) for a, b in zip(sizes[:-1], sizes[1:])]


def count_parameters(m: ModelConfig) -> int:
    """Weights and biases of one seed's network: Σ (in + 1)·out over the layers."""
    return sum((a + 1) * b for a, b in _layer_sizes(m))


def _flops_per_seed_sample(m: ModelConfig) -> tuple[int, int]:
    """(6·P, the matmul FLOPs actually run: 6·P less the first layer's unneeded input gradient 2·W₁)."""
    p = count_parameters(m)
    a, b = _layer_sizes(m)[0]
    return 6 * p, 6 * p - 2 * a * b


def synthetic_data(n: int, m: ModelConfig, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, size, size) float32 uniform in [0, 1] and labels (n, num_labels) int64 uniform in 0…p−1."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, m.image_size, m.image_size, generator=g)
    labels = torch.randint(0, max(m.label_dim, 1), (n, m.num_labels), generator=g)
    return images.numpy(), labels.numpy()


# --------------------------------------------------------------------------- the naive reference


class NaiveVAE:
    """One seed in stock PyTorch: encoder and decoder ``nn.Sequential`` and the default (unfused) Adam.

    Starts from the weights of seed ``seed`` of :class:`EnsembleVAE` and
    minimises the same objective, so it is the trainer written plainly.
    """

    def __init__(self, config: RunConfig, seed: int, device="cpu"):
        self.config = config
        encoder, decoder = plain_networks(EnsembleVAE(config.model, [seed]), 0)
        self.encoder, self.decoder = encoder.to(device), decoder.to(device)
        t = config.train
        params = [*self.encoder.parameters(), *self.decoder.parameters()]
        self.optimizer = torch.optim.Adam(params, lr=t.lr, betas=t.adam_betas, eps=t.adam_eps)

    def terms(self, x: torch.Tensor, y: torch.Tensor | None, eps: torch.Tensor, dataset_size: int) -> dict:
        """x (B, D), y (B, m) ints, eps (B, K) → the objective's terms, each (1,)."""
        m = self.config.model
        b = x.shape[0]
        h = x
        if m.has_labels and m.labels_in_encoder:
            h = torch.cat([x, F.one_hot(y, m.label_dim).to(x.dtype).reshape(b, -1)], dim=1)  # (B, D + m·p)
        mu, logvar = self.encoder(h).chunk(2, dim=-1)  # (B, K) each
        z = mu + torch.exp(0.5 * logvar) * eps
        out = self.decoder(z)  # (B, D [+ m·p])
        img = out[:, : m.image_dim]
        labels = out[:, m.image_dim :].reshape(b, m.num_labels, m.label_dim)[None] if m.has_labels else None
        return objective_terms(self.config.objective, x=x, img_logits=img[None], mu=mu[None],
                               logvar=logvar[None], z=z[None], dataset_size=dataset_size,
                               y=y if m.has_labels else None, label_logits=labels)

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


# --------------------------------------------------------------------------- measuring


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak_gflops(device="cpu", *, n: int | None = None, repeats: int = 5) -> float:
    """Best fp32 ``torch.mm`` rate of n×n matrices on ``device``, GFLOP/s (2n³ FLOPs each)."""
    device = torch.device(device)
    n = n or (8192 if device.type == "cuda" else 2048)
    inner = 10 if device.type == "cuda" else 1  # GPU: amortise the synchronisation
    g = torch.Generator().manual_seed(0)
    a, b = (torch.rand(n, n, generator=g).to(device) for _ in range(2))
    c = torch.empty(n, n, device=device)
    torch.mm(a, b, out=c)  # warm-up
    best = math.inf
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        for _ in range(inner):
            torch.mm(a, b, out=c)
        _sync(device)
        best = min(best, (time.perf_counter() - t) / inner)
    return 2.0 * n**3 / best / 1e9


class _PeakRSS:
    """Peak resident memory (MB) of this process while the ``with`` block runs; see the module docstring."""

    def __enter__(self):
        self.mode, self._stop, self._peak_kb = "rusage", None, 0
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM to the current RSS (Linux ≥ 4.0)
            self.mode = "hwm"
        except OSError:
            if os.path.exists("/proc/self/status"):
                self.mode = "sample"
                self._stop = threading.Event()
                self._thread = threading.Thread(target=self._sample, daemon=True)
                self._thread.start()
        return self

    def _sample(self):
        while True:
            self._peak_kb = max(self._peak_kb, _status_kb("VmRSS"))
            if self._stop.wait(0.005):
                return

    def __exit__(self, *exc):
        if self.mode == "hwm":
            kb = _status_kb("VmHWM")
        elif self.mode == "sample":
            self._stop.set()
            self._thread.join()
            kb = max(self._peak_kb, _status_kb("VmRSS"))
        else:
            maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            kb = maxrss / 1024 if sys.platform == "darwin" else maxrss  # macOS reports bytes
        self.mb = kb / 1024.0
        return False


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _malloc_trim() -> None:
    """Hand freed heap memory back to the OS (glibc), so a row's RSS does not start from the last row's high."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class _Stop(Exception):
    pass


class _Clock:
    """Epoch-boundary timestamps; the first epoch is warm-up.  Raises _Stop when the row has enough."""

    def __init__(self, device, steps_per_epoch: int, min_steps: int, seconds: float):
        self.device, self.k, self.min_steps, self.seconds = device, steps_per_epoch, min_steps, seconds
        self.t0 = self.elapsed = None
        self.steps = 0

    def __call__(self, epoch_done: int, _means=None) -> None:
        _sync(self.device)
        now = time.perf_counter()
        if epoch_done == 1:
            self.t0 = now
            return
        self.steps = (epoch_done - 1) * self.k
        self.elapsed = now - self.t0
        if self.steps >= self.min_steps and self.elapsed >= self.seconds:
            raise _Stop


class _PairedClock(_Clock):
    """A _Clock that, after each trainer epoch, runs the naive loop for about as long and times it apart.

    Each timed epoch gives a pair (trainer rate, naive rate) measured seconds
    apart, so the ratio of a pair is free of the machine's drift; the row
    reports their median.  The trainer's time excludes the naive segments.
    """

    def __init__(self, device, steps_per_epoch, min_steps, seconds, naive_iter, seed_samples_per_epoch, batch):
        super().__init__(device, steps_per_epoch, min_steps, seconds)
        self.naive_iter, self.per_epoch, self.batch = naive_iter, seed_samples_per_epoch, batch
        self.pairs: list[tuple[float, float]] = []
        self.elapsed, self.resume = 0.0, None

    def __call__(self, epoch_done: int, _means=None) -> None:
        _sync(self.device)
        now = time.perf_counter()
        ours = now - self.resume if epoch_done > 1 else 0.0  # epoch 1 is warm-up, for the naive loop too
        n = 0
        while n == 0 or time.perf_counter() - now < ours:
            next(self.naive_iter)
            n += 1
            _sync(self.device)
        naive = time.perf_counter() - now
        if epoch_done > 1:
            self.elapsed += ours
            self.steps = (epoch_done - 1) * self.k
            self.pairs.append((self.per_epoch / ours, self.batch * n / naive))
        self.resume = time.perf_counter()
        if epoch_done > 1 and self.steps >= self.min_steps and self.elapsed >= self.seconds:
            raise _Stop


def _steps_per_epoch(flops_per_step: float, peak_gflops: float, steps: int | None) -> int:
    k = round(EPOCH_SECONDS_AT_PEAK * peak_gflops * 1e9 / flops_per_step)
    k = max(1, min(MAX_STEPS_PER_EPOCH, k))
    return k if steps is None else min(k, steps)


def _run_row(impl: str, config: RunConfig, s: int, device, *, peak_gflops, steps, seconds, tf32,
             paired: bool = False) -> dict:
    """Time one row; returns the seconds, steps and memory of its timed part (and, paired, the pairs)."""
    b = config.train.batch_size
    flops, _ = _flops_per_seed_sample(config.model)
    k = _steps_per_epoch(flops * b * s, peak_gflops, steps)
    # Fixed steps: exactly ⌈steps/k⌉ timed epochs.  Otherwise `seconds` and at least two timed steps.
    min_steps = 2 if steps is None else math.ceil(steps / k) * k
    clock = _Clock(device, k, min_steps, 0.0 if steps is not None else seconds)
    images, labels = synthetic_data(b * k, config.model)
    gc.collect()
    _malloc_trim()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    compiled = False
    with _PeakRSS() as rss:
        if impl == "naive":
            naive = NaiveVAE(config, 0, device)
            x_all = torch.from_numpy(images.reshape(len(images), -1)).to(device)
            y_all = torch.from_numpy(labels).to(device)
            with heap_reuse():  # the allocator setting train() uses, so that only the code differs
                try:
                    for epoch, t in naive_steps(naive, 0, x_all, y_all):
                        if t == k - 1:
                            clock(epoch + 1)
                except _Stop:
                    pass
            del naive, x_all, y_all
        else:
            epochs = 1 + (min_steps // k if steps is not None else 1_000_000)
            cfg = dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=epochs))
            compiled = compile_pays(device, s * b * config.model.image_dim * k * epochs)
            if paired:
                naive = NaiveVAE(config, 0, device)
                x_all = torch.from_numpy(images.reshape(len(images), -1)).to(device)
                y_all = torch.from_numpy(labels).to(device)
                clock = _PairedClock(device, k, min_steps, clock.seconds, naive_steps(naive, 0, x_all, y_all),
                                     s * b * k, b)
            try:
                train(cfg, list(range(s)), images, labels, device=device, progress=False, on_epoch=clock, tf32=tf32)
            except _Stop:
                pass
    row = {"seconds": clock.elapsed, "steps": clock.steps, "steps_per_epoch": k, "peak_rss_mb": round(rss.mb, 1),
           "compiled_nll": compiled}
    if isinstance(clock, _PairedClock):
        ratios = [ours / naive for ours, naive in clock.pairs]
        row["paired"] = {"pairs": len(ratios), "speedup_vs_naive_median": float(np.median(ratios)),
                         "naive_seed_samples_per_s_median": float(np.median([nv for _, nv in clock.pairs]))}
    if device.type == "cuda":
        row["peak_device_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return row


# --------------------------------------------------------------------------- the benchmark


def _machine(device: torch.device, tf32: bool) -> dict:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as f:
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


def _resolve_seeds(seeds, archs, device_type: str, fast: bool) -> dict[str, tuple[int, ...]]:
    if seeds is None:
        seeds = FAST_SEEDS if fast else None
    out = {}
    for arch in archs:
        if isinstance(seeds, dict):
            chosen = seeds.get(arch, DEFAULT_SEEDS[device_type][arch])
        else:
            chosen = DEFAULT_SEEDS[device_type][arch] if seeds is None else seeds
        chosen = tuple(int(s) for s in chosen)
        if not chosen or min(chosen) < 1:
            raise ValueError(f"bench: seed counts must be integers >= 1, got {chosen} for {arch!r}")
        out[arch] = chosen
    return out


def run_benchmark(
    *,
    device="cpu",
    archs=("paper", "quick"),
    seeds=None,
    steps: int | None = None,
    seconds: float | None = None,
    json_path=None,
    print_table: bool = True,
    fast: bool = False,
    tf32: bool = True,
    paired: bool = False,
) -> dict:
    """Run the benchmark described in the module docstring and return its result.

    seeds: seed counts of the welavae rows — a tuple for every arch, a dict
    arch → tuple, or None for :data:`DEFAULT_SEEDS` of the device type.
    steps: timed steps per row (None: time-budgeted, ``seconds`` per row,
    default 6 s on the CPU, 3 s on a GPU).  fast: a smoke test, not a
    measurement — seeds (1, 2), two timed steps, a small peak matmul.
    paired: also time the naive loop between the trainer's epochs within each
    welavae row (``row["paired"]``: the median ratio of those pairs, free of
    the machine's drift; the row's ``peak_rss_mb`` then includes the naive model).
    Writes the result as JSON to ``json_path`` if given; prints
    :func:`main_table` (and a line per row to stderr) if ``print_table``.
    """
    device = torch.device(device)
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"bench: device must be 'cpu' or 'cuda', got {str(device)!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("bench: device 'cuda' requested but no CUDA device is available")
    archs = tuple(archs)
    for arch in archs:
        bench_config(arch)  # validates the name
    seed_counts = _resolve_seeds(seeds, archs, device.type, fast)
    if fast and steps is None:
        steps = FAST_STEPS
    if steps is not None and int(steps) < 1:
        raise ValueError(f"bench: steps must be >= 1, got {steps}")
    seconds = ROW_SECONDS[device.type] if seconds is None else float(seconds)
    peak_kw = {"n": 256, "repeats": 2} if fast else {}

    t_start = time.perf_counter()
    saved_tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32  # train() sets both
    torch.set_flush_denormal(True)  # as the trainer does, so the naive loop runs under the same rule
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = tf32
    machine = _machine(device, tf32)  # before we load the machine ourselves
    try:
        peak = matmul_peak_gflops(device, **peak_kw)
        rows, arch_info = [], {}
        for arch in archs:
            config = bench_config(arch)
            flops, matmul_flops = _flops_per_seed_sample(config.model)
            arch_info[arch] = {"hidden": list(config.model.hidden), "batch_size": config.train.batch_size,
                               "latent_dim": config.model.latent_dim, "label_dim": config.model.label_dim,
                               "parameters_per_seed": count_parameters(config.model),
                               "flops_per_seed_sample": flops, "matmul_flops_per_seed_sample": matmul_flops}
            # The naive loop runs before and after the arch's welavae rows and the faster run is kept:
            # the machine's speed drifts, and a slow naive run would flatter the ratios.
            arch_rows = []
            for impl, s in [("naive", 1)] + [("welavae", s) for s in seed_counts[arch]] + [("naive", 1)]:
                r = _run_row(impl, config, s, device, peak_gflops=peak, steps=steps, seconds=seconds, tf32=tf32,
                             paired=paired and impl == "welavae")
                rate = s * config.train.batch_size * r["steps"] / r["seconds"]
                if print_table:
                    print(f"bench: {arch:5s} {impl:7s} S={s:<3d} {rate:10.0f} seed-samples/s "
                          f"{rate * flops / 1e9:8.1f} GFLOP/s ({r['steps']} steps in {r['seconds']:.2f}s)",
                          file=sys.stderr, flush=True)
                row = {"arch": arch, "impl": impl, "seeds": s, "seed_samples_per_s": rate,
                       "gflops": rate * flops / 1e9, "peak_rss_mb": r["peak_rss_mb"]}
                row.update({key: r[key] for key in ("seconds", "steps", "steps_per_epoch", "compiled_nll",
                                                    "peak_device_mb", "paired") if key in r})
                if impl == "naive" and arch_rows:
                    first = arch_rows[0]
                    first["naive_runs"] = [first["seed_samples_per_s"], rate]
                    if rate > first["seed_samples_per_s"]:
                        row["naive_runs"] = first["naive_runs"]
                        arch_rows[0] = row
                else:
                    arch_rows.append(row)
            naive_rate = arch_rows[0]["seed_samples_per_s"]
            for row in arch_rows:
                row["speedup_vs_naive"] = row["seed_samples_per_s"] / naive_rate
                row["matmul_gflops"] = row["seed_samples_per_s"] * matmul_flops / 1e9
            rows.extend(arch_rows)
        peak = max(peak, matmul_peak_gflops(device, **peak_kw))  # the machine is shared: keep the better
        for row in rows:
            row["fraction_of_peak"] = row["gflops"] / peak
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved_tf32
    result = {
        "peak_gflops": peak,
        "rows": rows,
        "machine": machine,
        "archs": arch_info,
        "settings": {"fast": bool(fast), "paired": bool(paired), "steps": steps,
                     "seconds_per_row": None if steps is not None else seconds,
                     "wall_seconds": round(time.perf_counter() - t_start, 1)},
    }
    if json_path is not None:
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n")
    if print_table:
        print(main_table(result))
    return result


def main_table(result: dict) -> str:
    """The result as an aligned text table, one line per row, under a line naming the machine and its peak."""
    header = ("arch", "impl", "seeds", "seed-samples/s", "GFLOP/s", "% of peak", "× naive", "peak RSS MB")
    paired = any("paired" in r for r in result["rows"])
    if paired:
        header += ("× naive, paired",)
    lines = [
        tuple(str(x) for x in (
            r["arch"], r["impl"], r["seeds"], f"{r['seed_samples_per_s']:,.0f}", f"{r['gflops']:.1f}",
            f"{100 * r['gflops'] / result['peak_gflops']:.1f}",
            f"{r['speedup_vs_naive']:.2f}" if "speedup_vs_naive" in r else "", f"{r['peak_rss_mb']:,.0f}",
            *([f"{r['paired']['speedup_vs_naive_median']:.2f}" if "paired" in r else ""] if paired else [])))
        for r in result["rows"]
    ]
    widths = [max(len(h), *(len(ln[i]) for ln in lines)) if lines else len(h) for i, h in enumerate(header)]

    def fmt(cells):
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    m = result.get("machine", {})
    title = f"matmul peak {result['peak_gflops']:.1f} GFLOP/s"
    if m:
        title += f" on {m.get('device_name', m.get('device', '?'))} ({m.get('device')}, torch {m.get('torch_version')})"
        if m.get("load_average_1min") is not None:
            title += f"; load average {m['load_average_1min']:.2f} on {m.get('cpu_count')} CPUs at start"
    out = [title, fmt(header), fmt(["-" * w for w in widths])]
    out += [fmt(ln) for ln in lines]
    return "\n".join(out)
