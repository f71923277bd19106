"""Multi-seed trainer: S seeds of one configuration as one vectorised program.

Paper §4.3: Adam (lr 1e-4), batch 256, 150 epochs, weights initialised by
seed.  Design points:

* **Shared data order.** One shuffled batch per step serves every seed (the
  paper varies only the initialisation), so the first layer is one wide
  matmul.  The order of epoch e is drawn from ``(data_seed, e)``.
* **Per-seed randomness.** Initialisation and reparameterisation noise come
  from generators keyed by ``(seed, epoch)`` and drawn on the CPU, so a
  seed's run does not depend on its neighbours, on the device, or on where
  an interrupted run was resumed (the RNG "state" is the epoch counter).
* **NaN isolation.** A seed whose loss turns non-finite is frozen at its
  last finite weights (its gradients and Adam momentum zeroed) and marked
  diverged with its epoch; the others continue unaffected.
* **Checkpoints** (weights, Adam state, config, history, epoch) are written
  atomically as a weights-only ``torch.save`` file every
  ``checkpoint_every`` epochs and at the end; ``torch.load(weights_only=True)``
  reads them without executing code.
"""
from __future__ import annotations

import contextlib
import ctypes
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..config import RunConfig
from ..data.user import check_images, check_labels
from ..nn.vae import EnsembleVAE
from ..objectives.objective import objective_terms
from ..objectives.tc import log_importance_weights

__all__ = ["TrainResult", "train", "encode_dataset", "load_checkpoint", "save_checkpoint", "heap_reuse", "TERMS"]

TERMS = ("loss", "image_nll", "label_nll", "kl", "tc", "reg")
CHECKPOINT = "last.pt"
#: Pixel logits over a run (S·B·D·steps) from which compiling the image likelihood pays:
#: the compiled kernel saves ~1 ns per logit on a 2-core CPU, compiling costs ~5 s once.
COMPILE_MIN_LOGITS = 5e9

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
_heap_depth = 0


@contextlib.contextmanager
def heap_reuse():
    """Within the block, glibc keeps freed memory for reuse instead of returning it to the kernel.

    torch's CPU allocator does not cache: every step allocates and frees the
    same activations and gradients (16 MiB each at S = 16, B = 64; 50 MiB at
    S = 50).  By default glibc maps and unmaps such blocks, and every new
    mapping is page-faulted and zeroed by the kernel: measured per step of
    the quick architecture ~2,700 faults and ~55 ms of kernel CPU time at
    S = 50, ~1,300 and ~9 ms at S = 16.  Here all blocks come from the heap
    and it is never trimmed, so the same pages are reused.  On exit glibc's
    documented default values are set again (freed memory is returned then;
    glibc's dynamic mmap threshold stays off, and settings made through
    ``MALLOC_*_`` variables are not restored).  A no-op on other C libraries,
    or with ``WELAVAE_MALLOPT=0``.  Re-entrant.
    """
    global _heap_depth
    libc = None
    if _heap_depth == 0 and os.environ.get("WELAVAE_MALLOPT", "1") != "0" and platform.libc_ver()[0] == "glibc":
        try:
            libc = ctypes.CDLL("libc.so.6")
            libc.mallopt(_M_MMAP_MAX, 0)
            libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
        except (OSError, AttributeError):
            libc = None
    _heap_depth += 1
    try:
        yield
    finally:
        _heap_depth -= 1
        if libc is not None:
            # glibc's documented defaults (its dynamic thresholds start from these).
            libc.mallopt(_M_MMAP_MAX, 65536)
            libc.mallopt(_M_TRIM_THRESHOLD, 128 * 1024)
            libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    history: (epochs_done, S, len(TERMS)) float64 per-epoch means (NaN once diverged)
    diverged_epoch: (S,) int, −1 for seeds that finished, else the epoch they diverged in
    """

    model: EnsembleVAE
    config: RunConfig
    seeds: list[int]
    history: np.ndarray
    diverged_epoch: np.ndarray
    epochs_done: int
    seconds: float
    resumed_from: int = 0
    terms: tuple[str, ...] = field(default=TERMS)

    @property
    def diverged(self) -> np.ndarray:
        return self.diverged_epoch >= 0


def _derived_generator(*keys: int) -> torch.Generator:
    h = 0x9E3779B97F4A7C15
    for k in keys:
        h = (h * 6364136223846793005 + int(k) + 1442695040888963407) % (1 << 63)
    return torch.Generator().manual_seed(h)


def epoch_permutation(n: int, data_seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(n, generator=_derived_generator(1, data_seed, epoch))


def epoch_noise(seeds, epoch: int, steps: int, batch: int, k: int) -> torch.Tensor:
    """(S, steps, B, K) standard normal noise, each seed from its own (seed, epoch) generator."""
    return torch.stack([torch.randn(steps, batch, k, generator=_derived_generator(2, s, epoch)) for s in seeds])


class _Progress:
    """A one-line progress bar on a terminal; silent otherwise."""

    def __init__(self, total: int, label: str, enabled: bool | None):
        self.total, self.label = total, label
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.start = time.perf_counter()

    def update(self, done: int, first: int, loss: float) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        rate = elapsed / max(done - first, 1)
        eta = rate * (self.total - done)
        width = 24
        fill = int(width * done / max(self.total, 1))
        bar = "#" * fill + "." * (width - fill)
        sys.stderr.write(
            f"\r{self.label} epoch {done}/{self.total} [{bar}] loss {loss:10.2f}  "
            f"ETA {int(eta // 60):d}:{int(eta % 60):02d}  "
        )
        if done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _to_tensors(config: RunConfig, images, labels, device):
    x = check_images(images)
    x = torch.from_numpy(np.ascontiguousarray(x.reshape(len(x), -1)))
    if x.shape[1] != config.model.image_dim:
        raise ValueError(
            f"images have {x.shape[1]} pixels but the model expects {config.model.image_dim} "
            f"({config.model.image_size}x{config.model.image_size})"
        )
    y = None
    if config.model.has_labels:
        if labels is None:
            raise ValueError(f"model {config.name!r} needs weak labels (label_dim={config.model.label_dim}), none given")
        y = check_labels(labels, len(x), config.model.label_dim)
        if y.shape[1] != config.model.num_labels:
            raise ValueError(f"labels have {y.shape[1]} columns, the model expects {config.model.num_labels}")
        y = torch.from_numpy(y).to(device)
    n = len(x)
    if n < config.train.batch_size:
        raise ValueError(f"the data set has {n} samples, fewer than one batch ({config.train.batch_size})")
    return x.to(device), y


def save_checkpoint(path, *, model, optimizer, config: RunConfig, epoch: int, history, diverged_epoch) -> None:
    """Write a weights-only checkpoint atomically."""
    from ..data.cache import atomic_write

    state = {
        "format": 1,
        "config": config.to_json(),
        "seeds": torch.tensor(model.seeds, dtype=torch.int64),
        "epoch": int(epoch),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": _cpu_state(optimizer.state_dict()),
        "history": torch.as_tensor(np.asarray(history, dtype=np.float64)),
        "diverged_epoch": torch.as_tensor(np.asarray(diverged_epoch, dtype=np.int64)),
        # Randomness is derived from (seed, epoch) and (data_seed, epoch): the epoch is the RNG state.
        "rng": {"scheme": "derived-per-epoch", "next_epoch": int(epoch)},
    }
    atomic_write(path, lambda f: torch.save(state, f))


def _cpu_state(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu_state(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu_state(v) for v in obj)
    return obj


def load_checkpoint(path) -> dict:
    """Read a checkpoint without executing code; raise ValueError naming the file if it is unusable."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"checkpoint {path} is unreadable ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or state.get("format") != 1 or "model" not in state:
        raise ValueError(f"checkpoint {path} is not a welavae checkpoint")
    return _split_legacy_heads(state)


def _split_legacy_heads(state: dict) -> dict:
    """Checkpoints of welavae 0.1.0 hold the decoder's output layer whole; split it (and its Adam state) into heads.

    Parameters and their optimizer state are in ``model.parameters()`` order,
    which is the state dict's order; the layer's weight (S, H, D + L) and bias
    (S, 1, D + L) become ``weight0, bias0`` (…, D) and ``weight1, bias1`` (…, L),
    registered in that order.
    """
    model = state["model"]
    last = max(int(k.split(".")[1]) for k in model if k.startswith("decoder."))
    weight, bias = f"decoder.{last}.weight", f"decoder.{last}.bias"
    if weight not in model:
        return state
    m = RunConfig.from_json(state["config"]).model
    sizes = [m.image_dim] + ([m.num_labels * m.label_dim] if m.has_labels else [])
    old_keys = list(model)
    keys, origin = [], []  # origin[j]: (index of the old parameter, head or None) of new parameter j
    for i, key in enumerate(old_keys):
        if key == weight:
            for j in range(len(sizes)):
                keys += [f"{weight}{j}", f"{bias}{j}"]
                origin += [(i, j), (old_keys.index(bias), j)]
        elif key != bias:
            keys.append(key)
            origin.append((i, None))

    def piece(t, head):
        return t if head is None or t.dim() == 0 else t.split(sizes, dim=-1)[head].contiguous()

    opt = state["optimizer"]
    new_model = {key: piece(model[old_keys[i]], head) for key, (i, head) in zip(keys, origin)}
    new_opt_state = {j: {name: piece(v, head).clone() for name, v in opt["state"][i].items()}
                     for j, (i, head) in enumerate(origin) if i in opt["state"]}
    groups = [dict(g, params=list(range(len(keys)))) for g in opt["param_groups"]]
    return dict(state, model=new_model, optimizer={"state": new_opt_state, "param_groups": groups})


def model_from_checkpoint(state: dict, device="cpu") -> tuple[EnsembleVAE, RunConfig]:
    config = RunConfig.from_json(state["config"])
    model = EnsembleVAE(config.model, state["seeds"].tolist())
    model.load_state_dict(state["model"])
    return model.to(device), config


def _make_optimizer(model, tcfg, device):
    kwargs = dict(lr=tcfg.lr, betas=tcfg.adam_betas, eps=tcfg.adam_eps)
    # One fused kernel over each stacked tensor: no per-seed Python loop.
    try:
        return torch.optim.Adam(model.parameters(), fused=True, **kwargs)
    except (RuntimeError, TypeError):  # pragma: no cover - builds without fused CPU Adam
        return torch.optim.Adam(model.parameters(), foreach=True, **kwargs)


def _freeze(model, optimizer, dead: list[int], *, momentum: bool) -> None:
    """Zero dead seeds' gradients (and, at death, their Adam momentum) so Adam leaves them in place."""
    with torch.no_grad():
        for p, dim in model.parameter_seed_dims():
            for i in dead:
                if p.grad is not None:
                    model.seed_slice(p.grad, dim, i).zero_()
                st = optimizer.state.get(p)
                if momentum and st and "exp_avg" in st:
                    model.seed_slice(st["exp_avg"], dim, i).zero_()


def compile_pays(device, logits: float) -> bool:
    """Whether ``train(compile_nll="auto")`` compiles the likelihood for a run over this many pixel logits.

    On the CPU only (elsewhere the eager kernels are fast and inductor's GPU
    path is not what was measured), when ``logits`` (S·B·D·steps still to
    run) reaches :data:`COMPILE_MIN_LOGITS`, and unless ``WELAVAE_COMPILE=0``.
    """
    return (torch.device(device).type == "cpu" and os.environ.get("WELAVAE_COMPILE", "1") != "0"
            and logits >= COMPILE_MIN_LOGITS)


def train(
    config: RunConfig,
    seeds,
    images,
    labels=None,
    *,
    device: str | torch.device = "cpu",
    checkpoint_dir=None,
    resume: bool = True,
    progress: bool | None = None,
    on_epoch=None,
    tf32: bool = True,
    compile_nll: bool | str = "auto",
) -> TrainResult:
    """Train ``len(seeds)`` seeds of ``config`` together.

    images: (N, H, W) or (N, D) float in [0, 1]; labels: (N, m) ints in 0…p−1
    (required when the model has labels).  With ``checkpoint_dir`` the run
    saves checkpoints there and, if ``resume``, continues from the last one.
    ``on_epoch(epoch, history_row)`` is called after every epoch.
    ``compile_nll``: use the torch.compile'd image likelihood (same value and
    gradient up to rounding); ``"auto"`` does so on the CPU when the run is
    long enough for compiling (~5 s) to pay, unless ``WELAVAE_COMPILE=0``.
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("give at least one seed")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but no CUDA device is available")
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
    # Denormals in late-training gradients slow CPU kernels many-fold.
    torch.set_flush_denormal(True)
    tcfg = config.train
    x_all, y_all = _to_tensors(config, images, labels, device)
    n = len(x_all)
    b = tcfg.batch_size
    steps = n // b  # the last partial batch is dropped: TC estimates need full batches
    s_count = len(seeds)

    model = EnsembleVAE(config.model, seeds).to(device)
    optimizer = _make_optimizer(model, tcfg, device)
    history = np.zeros((0, s_count, len(TERMS)))
    diverged_epoch = np.full(s_count, -1, dtype=np.int64)
    start_epoch = 0
    ckpt_path = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir is not None else None
    if ckpt_path is not None and resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path)
        saved = RunConfig.from_json(state["config"])
        if saved.to_dict() != config.to_dict() or state["seeds"].tolist() != seeds:
            raise ValueError(
                f"checkpoint {ckpt_path} belongs to another run (config or seeds differ); "
                "use a new output directory or delete it"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = state["history"].numpy()
        diverged_epoch = state["diverged_epoch"].numpy().copy()
        start_epoch = int(state["epoch"])

    if compile_nll == "auto":
        logits = s_count * b * config.model.image_dim * steps * max(tcfg.epochs - start_epoch, 0)
        compile_nll = compile_pays(device, logits)
    compiled_nll, k = bool(compile_nll), config.model.latent_dim
    with heap_reuse():  # freed activations and gradients are reused, not page-faulted afresh
        log_w = log_importance_weights(b, n, device=device) if config.objective.tc_estimator == "mss" else None
        alive = torch.as_tensor(diverged_epoch < 0, device=device)
        dead = [i for i in range(s_count) if diverged_epoch[i] >= 0]
        bar = _Progress(tcfg.epochs, config.name, progress)
        t0 = time.perf_counter()
        model.train()
        for epoch in range(start_epoch, tcfg.epochs):
            perm = epoch_permutation(n, tcfg.data_seed, epoch).to(device)
            noise = epoch_noise(seeds, epoch, steps, b, k).to(device)
            sums = torch.zeros(len(TERMS), s_count, device=device, dtype=torch.float64)
            for t in range(steps):
                idx = perm[t * b : (t + 1) * b]
                x = x_all[idx]  # (B, D)
                y = y_all[idx] if y_all is not None else None
                mu, logvar = model.encode(x, y)  # (S, B, K)
                z = mu + torch.exp(0.5 * logvar) * noise[:, t]
                image_nll, label_logits = model.decode_nll(z, x, compiled=compiled_nll)
                terms = objective_terms(
                    config.objective, x=x, image_nll=image_nll, mu=mu, logvar=logvar, z=z,
                    dataset_size=n, y=y, label_logits=label_logits, log_w=log_w,
                )
                loss = terms["loss"]  # (S,)
                finite = torch.isfinite(loss)
                if not bool(finite.all()) and bool((alive & ~finite).any()):
                    newly = [i for i in range(s_count) if bool(alive[i]) and not bool(finite[i])]
                    for i in newly:
                        diverged_epoch[i] = epoch
                    alive = alive & finite
                    dead.extend(newly)
                    _freeze(model, optimizer, newly, momentum=True)
                optimizer.zero_grad(set_to_none=True)
                torch.where(alive, loss, torch.zeros_like(loss)).sum().backward()
                if dead:
                    _freeze(model, optimizer, dead, momentum=False)
                optimizer.step()
                with torch.no_grad():
                    row = torch.stack([terms.get(name, torch.zeros_like(loss)).detach() for name in TERMS])
                    sums += torch.where(alive, row.double(), torch.zeros_like(sums))
            means = (sums / max(steps, 1)).T.cpu().numpy()  # (S, T)
            means[diverged_epoch >= 0] = np.nan
            history = np.concatenate([history, means[None]], axis=0)
            done = epoch + 1
            if ckpt_path is not None and (done % tcfg.checkpoint_every == 0 or done == tcfg.epochs):
                save_checkpoint(ckpt_path, model=model, optimizer=optimizer, config=config, epoch=done,
                                history=history, diverged_epoch=diverged_epoch)
            if on_epoch is not None:
                on_epoch(done, means)
            bar.update(done, start_epoch, float(np.nanmean(means[:, 0])) if (diverged_epoch < 0).any() else math.nan)
        if ckpt_path is not None and start_epoch == tcfg.epochs == 0:
            save_checkpoint(ckpt_path, model=model, optimizer=optimizer, config=config, epoch=0,
                            history=history, diverged_epoch=diverged_epoch)
        model.eval()
        return TrainResult(
            model=model, config=config, seeds=seeds, history=history, diverged_epoch=diverged_epoch,
            epochs_done=max(start_epoch, tcfg.epochs), seconds=time.perf_counter() - t0, resumed_from=start_epoch,
        )


@torch.no_grad()
def encode_dataset(model: EnsembleVAE, images, labels=None, *, batch_size: int = 2048, device=None):
    """Encoder means over a whole data set, and label predictions decoded at those means.

    Returns mu (S, N, K) float32 numpy, logvar (S, N, K) float32, and
    label_pred (S, N, m) int64 (argmax of each label head at z = μ) or None.
    """
    device = device or next(model.parameters()).device
    x_np = np.asarray(images, dtype=np.float32).reshape(len(images), -1)
    y_np = None if labels is None else np.asarray(labels, dtype=np.int64)
    mus, lvs, preds = [], [], []
    model.eval()
    for start in range(0, len(x_np), batch_size):
        x = torch.from_numpy(x_np[start : start + batch_size]).to(device)
        y = None if y_np is None or not model.label_in else torch.from_numpy(y_np[start : start + batch_size]).to(device)
        mu, logvar = model.encode(x, y)
        mus.append(mu.float().cpu())
        lvs.append(logvar.float().cpu())
        if model.label_out:
            _, label_logits = model.decode(mu)
            preds.append(label_logits.argmax(-1).cpu())
    mu = torch.cat(mus, dim=1).numpy()
    logvar = torch.cat(lvs, dim=1).numpy()
    pred = torch.cat(preds, dim=1).numpy() if preds else None
    return mu, logvar, pred
