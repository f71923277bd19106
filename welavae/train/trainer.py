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
* **Checkpoints** (:mod:`welavae.train.checkpoint`) every
  ``checkpoint_every`` epochs and at the end; a run resumes from the last.
* **Partial labels.** A missing weak label (−1) adds nothing to the loss or
  its gradient (:func:`welavae.objectives.likelihoods.categorical_nll`).

The loop reads top to bottom: :func:`train` prepares, :func:`_train_epoch`
runs the steps of one epoch, :func:`_step` is one optimisation step, and
:class:`_Divergence` does the NaN isolation.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import RunConfig
from ..data.user import check_images, check_labels
from ..nn.vae import EnsembleVAE
from ..objectives.objective import objective_terms
from ..objectives.tc import log_importance_weights
from ..seeding import epoch_noise, epoch_permutation
from .checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from .platform import speed_settings
from .schedule import init_from_run, window_labels

__all__ = ["TrainResult", "train", "encode_dataset", "compile_pays", "TERMS"]

TERMS = ("loss", "image_nll", "label_nll", "kl", "tc", "reg")
#: Pixel logits over a run (S·B·D·steps) from which compiling the image likelihood pays
#: for its one-off compile time (measured: README, Performance).
COMPILE_MIN_LOGITS = 5e9


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


def _to_tensors(config: RunConfig, images, labels, device):
    x = check_images(images)
    x = torch.from_numpy(np.ascontiguousarray(x.reshape(len(x), -1)))
    if x.shape[1] != config.model.image_dim:
        raise ValueError(
            f"images have {x.shape[1]} pixels but the model expects {config.model.image_dim} "
            f"({config.model.image_shape[0]}x{config.model.image_shape[1]})"
        )
    y = None
    if config.model.has_labels:
        if labels is None:
            raise ValueError(f"model {config.name!r} needs weak labels (label_dims={config.model.label_dims}), none given")
        y = torch.from_numpy(check_labels(labels, len(x), config.model.label_dims)).to(device)
    n = len(x)
    if n < config.train.batch_size:
        raise ValueError(f"the data set has {n} samples, fewer than one batch ({config.train.batch_size})")
    return x.to(device), y


def _make_optimizer(model, tcfg, device):
    kwargs = dict(lr=tcfg.lr, betas=tcfg.adam_betas, eps=tcfg.adam_eps)
    # One fused kernel over each stacked tensor: no per-seed Python loop.
    try:
        return torch.optim.Adam(model.parameters(), fused=True, **kwargs)
    except (RuntimeError, TypeError):  # pragma: no cover - builds without fused CPU Adam
        return torch.optim.Adam(model.parameters(), foreach=True, **kwargs)


def compile_pays(device, logits: float) -> bool:
    """Whether ``train(compile_nll="auto")`` compiles the likelihood for a run over this many pixel logits.

    On the CPU only (elsewhere the eager kernels are fast and inductor's GPU
    path is not what was measured), when ``logits`` (S·B·D·steps still to
    run) reaches :data:`COMPILE_MIN_LOGITS`, and unless ``WELAVAE_COMPILE=0``.
    """
    return (torch.device(device).type == "cpu" and os.environ.get("WELAVAE_COMPILE", "1") != "0"
            and logits >= COMPILE_MIN_LOGITS)


class _Divergence:
    """NaN isolation: a seed whose loss turns non-finite is frozen at its last finite weights.

    At divergence its gradients and Adam momentum are zeroed, and from then on
    its gradients every step, so Adam leaves it in place; the other seeds
    continue unaffected.  ``epoch_of`` (S,): −1 or the epoch a seed diverged in.
    """

    def __init__(self, model: EnsembleVAE, optimizer, epoch_of: np.ndarray, device):
        self.model, self.optimizer = model, optimizer
        self.epoch_of = epoch_of
        self.alive = torch.as_tensor(epoch_of < 0, device=device)
        self.dead = [i for i, e in enumerate(epoch_of) if e >= 0]

    def check(self, loss: torch.Tensor, epoch: int) -> None:
        """Mark seeds whose loss (S,) is not finite as diverged in ``epoch``."""
        finite = torch.isfinite(loss)
        if bool(finite.all()) or not bool((self.alive & ~finite).any()):
            return
        newly = [i for i in range(len(loss)) if bool(self.alive[i]) and not bool(finite[i])]
        self.epoch_of[newly] = epoch
        self.alive = self.alive & finite
        self.dead.extend(newly)
        self._freeze(newly, momentum=True)

    def masked(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` (…, S) with dead seeds' entries set to 0."""
        return torch.where(self.alive, values, torch.zeros_like(values))

    def hold(self) -> None:
        """Zero dead seeds' gradients before the optimizer step."""
        if self.dead:
            self._freeze(self.dead, momentum=False)

    @torch.no_grad()
    def _freeze(self, seeds: list[int], *, momentum: bool) -> None:
        for p, dim in self.model.parameter_seed_dims():
            state = self.optimizer.state.get(p)
            for i in seeds:
                if p.grad is not None:
                    self.model.seed_slice(p.grad, dim, i).zero_()
                if momentum and state and "exp_avg" in state:
                    self.model.seed_slice(state["exp_avg"], dim, i).zero_()


def _step(model, optimizer, guard: _Divergence, config: RunConfig, x, y, noise, *, epoch, n, log_w, compiled):
    """One optimisation step of every seed on the batch x (B, D), y (B, m); returns the terms, each (S,)."""
    mu, logvar = model.encode(x, y)  # (S, B, K)
    z = mu + torch.exp(0.5 * logvar) * noise
    image_nll, label_logits = model.decode_nll(z, x, compiled=compiled)
    terms = objective_terms(
        config.objective, x=x, image_nll=image_nll, mu=mu, logvar=logvar, z=z,
        dataset_size=n, y=y, label_logits=label_logits, log_w=log_w,
    )
    guard.check(terms["loss"], epoch)
    optimizer.zero_grad(set_to_none=True)
    guard.masked(terms["loss"]).sum().backward()  # seeds are independent: one backward for all
    guard.hold()
    optimizer.step()
    return terms


def _train_epoch(model, optimizer, guard, config: RunConfig, x_all, y_all, *, epoch, log_w, compiled) -> np.ndarray:
    """One epoch over the shared batch order; per-seed means of :data:`TERMS` (S, T), NaN for diverged seeds."""
    n, b = len(x_all), config.train.batch_size
    steps = n // b  # the last partial batch is dropped: TC estimates need full batches
    device = x_all.device
    perm = epoch_permutation(n, config.train.data_seed, epoch).to(device)
    noise = epoch_noise(model.seeds, epoch, steps, b, config.model.latent_dim).to(device)
    sums = torch.zeros(len(TERMS), model.num_seeds, device=device, dtype=torch.float64)
    for t in range(steps):
        idx = perm[t * b : (t + 1) * b]
        y = y_all[idx] if y_all is not None else None
        terms = _step(model, optimizer, guard, config, x_all[idx], y, noise[:, t],
                      epoch=epoch, n=n, log_w=log_w, compiled=compiled)
        with torch.no_grad():
            zero = torch.zeros_like(terms["loss"])
            sums += guard.masked(torch.stack([terms.get(name, zero).detach() for name in TERMS]).double())
    means = (sums / max(steps, 1)).T.cpu().numpy()  # (S, T)
    means[guard.epoch_of >= 0] = np.nan
    return means


def _resume(ckpt_path: Path, config: RunConfig, seeds: list[int], model, optimizer):
    """(history, diverged_epoch, start epoch) from the run's checkpoint; refuses another run's."""
    state = load_checkpoint(ckpt_path)
    saved = RunConfig.from_json(state["config"])
    if saved.to_dict() != config.to_dict() or state["seeds"].tolist() != seeds:
        raise ValueError(
            f"checkpoint {ckpt_path} belongs to another run (config or seeds differ); "
            "use a new output directory or delete it"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return state["history"].numpy(), state["diverged_epoch"].numpy().copy(), int(state["epoch"])


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
    track=None,
) -> TrainResult:
    """Train ``len(seeds)`` seeds of ``config`` together.

    images: (N, H, W) or (N, D) float in [0, 1]; labels: (N, m) ints, label j
    in 0…p_j−1 or −1 = missing (required when the model has labels).  With
    ``checkpoint_dir`` the run saves checkpoints there and, if ``resume``,
    continues from the last one.  ``on_epoch(epoch, history_row)`` is called
    after every epoch, and ``track(epoch, model)`` too (:class:`welavae.train.schedule.Tracker`).
    ``config.train``'s ``label_epochs`` and ``init_from`` (:mod:`welavae.train.schedule`):
    labels outside the window are missing; a run that does not resume starts
    from the source's weights.  ``progress``: a bar over epochs (default: on a
    terminal).  ``compile_nll``: use the torch.compile'd image likelihood
    (same value and gradient up to rounding); ``"auto"`` does so on the CPU
    when the run is long enough for compiling to pay (:func:`compile_pays`).
    Speed settings are entered for the run and restored after it
    (:func:`welavae.train.platform.speed_settings`).
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("give at least one seed")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA device is available")
    tcfg = config.train
    x_all, y_all = _to_tensors(config, images, labels, device)
    n, b = len(x_all), tcfg.batch_size

    model = EnsembleVAE(config.model, seeds).to(device)
    optimizer = _make_optimizer(model, tcfg, device)
    history = np.zeros((0, len(seeds), len(TERMS)))
    diverged_epoch = np.full(len(seeds), -1, dtype=np.int64)
    start = 0
    ckpt_path = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir is not None else None
    if ckpt_path is not None and resume and ckpt_path.exists():
        history, diverged_epoch, start = _resume(ckpt_path, config, seeds, model, optimizer)
    elif tcfg.init_from:  # epoch 0 only: a resumed run never reads the source again
        init_from_run(model, config)

    if compile_nll == "auto":
        logits = len(seeds) * b * config.model.image_dim * (n // b) * max(tcfg.epochs - start, 0)
        compile_nll = compile_pays(device, logits)

    def checkpoint(epoch: int) -> None:
        save_checkpoint(ckpt_path, model=model, optimizer=optimizer, config=config, epoch=epoch,
                        history=history, diverged_epoch=diverged_epoch)

    with speed_settings(device, tf32=tf32):
        log_w = log_importance_weights(b, n, device=device) if config.objective.tc_estimator == "mss" else None
        guard = _Divergence(model, optimizer, diverged_epoch, device)
        bar = tqdm(total=tcfg.epochs, initial=start, desc=config.name, unit="epoch", leave=False,
                   disable=None if progress is None else not progress)  # None: on a terminal only
        t0 = time.perf_counter()
        model.train()
        for epoch in range(start, tcfg.epochs):
            means = _train_epoch(model, optimizer, guard, config, x_all, window_labels(y_all, tcfg, epoch),
                                 epoch=epoch, log_w=log_w, compiled=bool(compile_nll))
            history = np.concatenate([history, means[None]], axis=0)
            done = epoch + 1
            if track is not None:  # before the checkpoint: a resume never leaves a tracked epoch out
                track(done, model)
            if ckpt_path is not None and (done % tcfg.checkpoint_every == 0 or done == tcfg.epochs):
                checkpoint(done)
            if on_epoch is not None:
                on_epoch(done, means)
            bar.update(1)
            if (diverged_epoch < 0).any():
                bar.set_postfix(loss=f"{np.nanmean(means[:, 0]):.2f}")
        bar.close()
        if ckpt_path is not None and start == tcfg.epochs == 0:
            checkpoint(0)
        model.eval()
    return TrainResult(
        model=model, config=config, seeds=seeds, history=history, diverged_epoch=diverged_epoch,
        epochs_done=max(start, tcfg.epochs), seconds=time.perf_counter() - t0, resumed_from=start,
    )


@torch.no_grad()
def encode_dataset(model: EnsembleVAE, images, labels=None, *, batch_size: int = 2048, device=None):
    """Encoder means over a whole data set, and label predictions decoded at those means.

    Returns mu (S, N, K) float32 numpy, logvar (S, N, K) float32, and
    label_pred (S, N, m) int64 (argmax of each label head at z = μ) or None.
    Labels may hold −1 (missing); a label-free encoder ignores them.
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
            preds.append(torch.stack([lg.argmax(-1) for lg in model.label_logits(mu)], dim=-1).cpu())
    mu = torch.cat(mus, dim=1).numpy()
    logvar = torch.cat(lvs, dim=1).numpy()
    pred = torch.cat(preds, dim=1).numpy() if preds else None
    return mu, logvar, pred
