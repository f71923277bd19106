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
  diverged with its epoch; the others continue unaffected.  The isolation
  stays on the device: a step never waits for the host, which reads the
  divergence state once an epoch.
* **Checkpoints** (:mod:`welavae.checkpoint`) every
  ``checkpoint_every`` epochs, or every ``checkpoint_minutes`` of wall time,
  and at the end; a run resumes from the last.
* **Partial labels.** A missing weak label (−1) adds nothing to the loss or
  its gradient (:func:`welavae.objectives.likelihoods.categorical_nll`).
* **The peers' label parameters** (S2, CCVAE; docs/peers.md): the network's
  :class:`~welavae.nn.labelside.LabelSide` hands them to the objective, and CCVAE's
  R draws of the label latents come from ``(seed, epoch, step)``
  (:func:`welavae.seeding.classifier_noise`), like every other draw.
* **Label window** (``label_epochs = (A, B)``, issue 23): the weak labels are
  observed in epochs A … B−1 only; in every other epoch each label is missing
  (−1), which adds exactly 0 to the loss and to every gradient, as partial
  labels do (:func:`window_labels`).  The window is a function of the epoch
  counter, so a resumed run sees the same window.  With the paper's encoder
  q(z|x, y) a missing label is an all-zero one-hot block: outside the window
  the encoder sees "no label" for every sample.
* **Seed layout** of the convolutions (``seed_layout``, :func:`_seed_layout`):
  one grouped convolution for all seeds or one stock convolution per seed
  (:mod:`welavae.nn.conv`), the same weights either way; ``"auto"`` times
  both on the run's first batch, on its device, and keeps the faster.  The
  numbers agree to float rounding, not bit for bit, so a resumed run keeps
  the layout its environment record names.  It is entered for the loop and
  left after it: the model returned runs grouped, as a loaded one does.

The loop reads top to bottom: :func:`train` prepares, :func:`_train_epoch`
runs the steps of one epoch, :func:`_step` is one optimisation step, and
:class:`_Divergence` does the NaN isolation.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..checkpoint import load_checkpoint, save_checkpoint
from ..config import TERMS, GammaTarget, RunConfig, TrainConfig
from ..data.dataset import to_float
from ..nn.conv import LAYOUTS, time_layouts
from ..nn.vae import EnsembleVAE
from ..objectives.ccvae import CLASSIFIER_DRAWS
from ..objectives.objective import objective_terms
from ..objectives.tc import log_importance_weights
from ..seeding import classifier_noise, epoch_noise, epoch_permutation
from .gamma import GammaController
from .init_from import init_from_run
from .platform import describe_change, environment_record, speed_settings

__all__ = ["TrainResult", "train", "compile_pays", "labels_observed", "window_labels", "TERMS", "SEED_LAYOUTS",
           "check_seed_layout"]

_clock = time.monotonic  # the checkpoint cadence's clock (a test replaces it)

#: Pixel logits over a run (S·B·D·steps) from which compiling the image likelihood pays
#: for its one-off compile time (measured: README, Performance).
COMPILE_MIN_LOGITS = 5e9
#: ``train(seed_layout=…)``: timed per run, or one of :data:`welavae.nn.conv.LAYOUTS` as given.
SEED_LAYOUTS = ("auto", *LAYOUTS)


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    history: (epochs_done, S, len(TERMS)) float64 per-epoch means (NaN once diverged)
    diverged_epoch: (S,) int, −1 for seeds that finished, else the epoch they diverged in
    gamma: (epochs_done, S) float64 γ at the end of each epoch (a fixed γ repeated; NaN without labels)
    seed_layout: ``{"layout": "grouped"|"per-seed", "chosen": "timed"|"given"|"resumed", "seconds": {layout:
    [s, …]}}`` (the timings when timed, else empty) for a model with convolutions and S > 1; None where
    there is no choice (the MLP, one seed)
    """

    model: EnsembleVAE
    config: RunConfig
    seeds: list[int]
    history: np.ndarray
    diverged_epoch: np.ndarray
    epochs_done: int
    seconds: float
    environment: list = field(default_factory=list)  # environment_record()s, each with its "from_epoch"
    resumed_from: int = 0
    gamma: np.ndarray | None = None
    seed_layout: dict | None = None

    @property
    def diverged(self) -> np.ndarray:
        return self.diverged_epoch >= 0


def _to_tensors(images, labels, device):
    """(x (N, D) as stored — float32, or bool/uint8 converted per batch by to_float —, y (N, m) int64 or None)."""
    x = np.asarray(images)
    x = torch.from_numpy(np.ascontiguousarray(x.reshape(len(x), -1)))
    y = None if labels is None else torch.from_numpy(np.asarray(labels, dtype=np.int64))
    return x.to(device), None if y is None else y.to(device)


def _make_optimizer(model, tcfg, device):
    kwargs = dict(lr=tcfg.lr, betas=tcfg.adam_betas, eps=tcfg.adam_eps)
    # One fused kernel over each stacked tensor: no per-seed Python loop.
    try:
        return torch.optim.Adam(model.parameters(), fused=True, **kwargs)
    except (RuntimeError, TypeError):  # pragma: no cover - builds without fused CPU Adam
        return torch.optim.Adam(model.parameters(), foreach=True, **kwargs)


def check_seed_layout(layout: str) -> str:
    """``layout`` if it is one of :data:`SEED_LAYOUTS`; else one sentence naming them."""
    if layout not in SEED_LAYOUTS:
        raise ValueError(f"seed layout must be one of {', '.join(SEED_LAYOUTS)}, got {layout!r}")
    return layout


def compile_pays(device, logits: float) -> bool:
    """Whether ``train(compile_nll="auto")`` compiles the likelihood for a run over this many pixel logits.

    On the CPU only (elsewhere the eager kernels are fast and inductor's GPU
    path is not what was measured), when ``logits`` (S·B·D·steps still to
    run) reaches :data:`COMPILE_MIN_LOGITS`, and unless ``WELAVAE_COMPILE=0``.
    """
    return (torch.device(device).type == "cpu" and os.environ.get("WELAVAE_COMPILE", "1") != "0"
            and logits >= COMPILE_MIN_LOGITS)


def labels_observed(train: TrainConfig, epoch: int) -> bool:
    """Whether epoch ``epoch`` (0-based) trains with the labels: always, or A <= epoch < B."""
    if train.label_epochs is None:
        return True
    a, b = train.label_epochs
    return a <= epoch < b


def window_labels(y: torch.Tensor | None, train: TrainConfig, epoch: int) -> torch.Tensor | None:
    """The labels epoch ``epoch`` trains with: y (N, m) inside the window, else all −1 (missing)."""
    if y is None or labels_observed(train, epoch):
        return y
    return torch.full_like(y, -1)


class _Divergence:
    """NaN isolation: a seed whose loss turns non-finite is frozen at its last finite weights.

    Kept on the device, so a step never waits for the host: ``alive`` (S,)
    bool and ``diverged_at`` (S,) int64 (−1 or the epoch) are tensors, and
    before every optimizer step the gradients and Adam momentum of the dead
    seeds are *selected* to zero (``masked_fill_``; a multiplication by 0 would
    keep NaN·0 = NaN), so Adam leaves them in place (its update is the
    momentum over a root mean square: 0).  Zeroing the momentum of an already
    dead seed again changes nothing, so there is no "newly dead" branch.  For a
    run where every seed stays finite the selections keep every value: the
    result is bit-identical to a run without the guard.  On the CPU, where
    reading ``alive`` waits for nothing, :meth:`hold` skips the selections
    while every seed is alive (they were 2 full-size ``masked_fill_`` per
    parameter every step: docs/performance.md); on a GPU it always selects,
    as a host read there would stall the step.  :meth:`sync`, once
    an epoch, brings ``diverged_at`` to the host: ``epoch_of`` (S,), −1 or
    the epoch a seed diverged in.
    """

    def __init__(self, model: EnsembleVAE, optimizer, epoch_of: np.ndarray, device):
        self.model, self.optimizer = model, optimizer
        self.epoch_of = epoch_of
        self.diverged_at = torch.as_tensor(epoch_of, dtype=torch.int64, device=device)
        self.alive = self.diverged_at < 0
        self._host = torch.device(device).type == "cpu"  # reading alive waits for no kernel
        # (parameter, seed axis) pairs, listed once: hold() runs every step.
        self._params = list(model.parameter_seed_dims())

    def check(self, loss: torch.Tensor, epoch: int) -> None:
        """Mark alive seeds whose loss (S,) is not finite as diverged in ``epoch`` (no host read)."""
        finite = torch.isfinite(loss)
        self.diverged_at = torch.where(self.alive & ~finite, epoch, self.diverged_at)
        self.alive = self.alive & finite

    def masked(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` (…, S) with dead seeds' entries set to 0."""
        return torch.where(self.alive, values, torch.zeros_like(values))

    @torch.no_grad()
    def hold(self) -> None:
        """Zero dead seeds' gradients and Adam momentum before the optimizer step."""
        if self._host and bool(self.alive.all()):
            return  # nothing to zero; the selections would keep every value
        dead = ~self.alive
        for p, dim in self._params:
            state = self.optimizer.state.get(p)
            for t in (p.grad, state.get("exp_avg") if state else None):
                if t is not None:
                    _seed_view(t, dim).masked_fill_(_seed_mask(dead, t, dim), 0)

    def sync(self) -> np.ndarray:
        """Copy ``diverged_at`` to the host (once an epoch); returns ``epoch_of``."""
        self.epoch_of[:] = self.diverged_at.cpu().numpy()
        return self.epoch_of


def _seed_view(t: torch.Tensor, dim) -> torch.Tensor:
    """A grouped conv parameter (S·c, …) as (S, c·…); other parameters as they are."""
    return t.view(dim[1], -1) if isinstance(dim, tuple) else t


def _seed_mask(dead: torch.Tensor, t: torch.Tensor, dim) -> torch.Tensor:
    """dead (S,) shaped to broadcast over :func:`_seed_view` ``(t, dim)`` along its seed axis."""
    if isinstance(dim, tuple):
        return dead[:, None]
    shape = [1] * t.dim()
    shape[dim] = -1
    return dead.view(shape)


def _step(model, optimizer, guard: _Divergence, config: RunConfig, x, y, noise, *, epoch, n, log_w, compiled,
          gamma: GammaController | None = None, draws: torch.Tensor | None = None):
    """One optimisation step of every seed on the batch x (B, D), y (B, m); returns the terms, each (S,).

    ``gamma``: the per-seed γ of ``--gamma auto``, read for this step's loss and updated after it.
    ``draws``: CCVAE's noise (S, R, B, m) for the R draws of the label latents (:func:`_classifier_draws`).
    """
    mu, logvar = model.encode(x, y)  # (S, B, K)
    z = mu + torch.exp(0.5 * logvar) * noise
    image_nll, label_logits = model.decode_nll(z, x, compiled=compiled)
    side, z_draws = model.label_side, None
    if draws is not None:  # reparameterised, so q̂(y|x) passes gradients to μ and log σ²
        m = draws.shape[-1]
        z_draws = mu[:, None, :, :m] + torch.exp(0.5 * logvar[:, None, :, :m]) * draws  # (S, R, B, m)
    terms = objective_terms(
        config.objective, image_nll=image_nll, mu=mu, logvar=logvar, z=z,
        dataset_size=n, y=y, label_logits=label_logits, log_w=log_w,
        gamma=None if gamma is None else gamma.gamma,
        label_params=None if side is None else side.objective_inputs(), z_draws=z_draws,
    )
    if gamma is not None and gamma.target.kind == "grad" and y is not None:  # before the backward frees the graph
        gamma.balance(image_nll, label_logits, y, z, guard.alive)
    guard.check(terms["loss"], epoch)
    optimizer.zero_grad(set_to_none=True)
    guard.masked(terms["loss"]).sum().backward()  # seeds are independent: one backward for all
    guard.hold()
    optimizer.step()
    if gamma is not None and gamma.target.kind != "grad" and y is not None:  # no gradient through γ: it moves
        gamma.observe(label_logits, y, terms["label_nll"], guard.alive)  # after the step
    return terms


def _classifier_draws(config: RunConfig, seeds, epoch: int, step: int, device) -> torch.Tensor | None:
    """CCVAE's noise (S, R, B, m) of this step (:func:`welavae.seeding.classifier_noise`); None for other models."""
    if config.objective.regulariser != "ccvae":
        return None
    b, m = config.train.batch_size, config.model.num_labels
    return classifier_noise(seeds, epoch, step, CLASSIFIER_DRAWS, b, m).to(device, non_blocking=True)


class _EpochDraws:
    """Each epoch's batch order (N,) and noise (S, steps, B, K), drawn on the CPU from ``(seed, epoch)``.

    While epoch e trains, a background thread draws epoch e + 1's (into
    pinned memory when the device is CUDA, so the copy to the device is
    asynchronous): the same draws as in the foreground, so the results do not
    change, and the device does not wait for the CPU at an epoch boundary.
    """

    def __init__(self, config: RunConfig, seeds, n: int, device: torch.device, *, end: int, background: bool = True):
        self.config, self.seeds, self.n, self.device, self.end = config, list(seeds), n, device, end
        self.pin = device.type == "cuda"
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="welavae-draws") if background else None
        self._next: tuple[int, Future] | None = None

    def _draw(self, epoch: int):
        b = self.config.train.batch_size
        perm = epoch_permutation(self.n, self.config.train.data_seed, epoch)
        noise = epoch_noise(self.seeds, epoch, self.n // b, b, self.config.model.latent_dim)
        return (perm.pin_memory(), noise.pin_memory()) if self.pin else (perm, noise)

    def __call__(self, epoch: int):
        """(perm (N,), noise (S, steps, B, K)) of ``epoch`` on the device; starts drawing the next epoch's."""
        if self._next is not None and self._next[0] == epoch:
            perm, noise = self._next[1].result()
        else:
            perm, noise = self._draw(epoch)
        self._next = None
        if self._pool is not None and epoch + 1 < self.end:
            self._next = (epoch + 1, self._pool.submit(self._draw, epoch + 1))
        return perm.to(self.device, non_blocking=True), noise.to(self.device, non_blocking=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _train_epoch(model, optimizer, guard, config: RunConfig, x_all, y_all, *, epoch, log_w, compiled,
                 draws: _EpochDraws, gamma: GammaController | None = None) -> np.ndarray:
    """One epoch over the shared batch order; per-seed means of :data:`TERMS` (S, T), NaN for diverged seeds."""
    n, b = len(x_all), config.train.batch_size
    steps = n // b  # the last partial batch is dropped: TC estimates need full batches
    device = x_all.device
    perm, noise = draws(epoch)
    sums = torch.zeros(len(TERMS), model.num_seeds, device=device, dtype=torch.float64)
    for t in range(steps):
        idx = perm[t * b : (t + 1) * b]
        y = y_all[idx] if y_all is not None else None
        terms = _step(model, optimizer, guard, config, to_float(x_all[idx]), y, noise[:, t],
                      epoch=epoch, n=n, log_w=log_w, compiled=compiled, gamma=gamma,
                      draws=_classifier_draws(config, model.seeds, epoch, t, device))
        with torch.no_grad():
            zero = torch.zeros_like(terms["loss"])
            sums += guard.masked(torch.stack([terms.get(name, zero).detach() for name in TERMS]).double())
    means = (sums / max(steps, 1)).T.cpu().numpy()  # (S, T); with guard.sync, the epoch's only host reads
    means[guard.sync() >= 0] = np.nan
    return means


def _resume(ckpt_path: Path, config: RunConfig, seeds: list[int], model, optimizer, gamma):
    """(history, γ history, diverged_epoch, start epoch, environment records) from the run's checkpoint; refuses
    another run's.  ``gamma``: the run's γ controller (``--gamma auto``), restored too."""
    state = load_checkpoint(ckpt_path)
    saved = RunConfig.from_json(state["config"])
    if not saved.same_run(config) or state["seeds"].tolist() != seeds:  # the checkpoint cadence may change
        raise ValueError(
            f"checkpoint {ckpt_path} belongs to another run (config or seeds differ); "
            "use a new output directory or delete it"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if gamma is not None:
        gamma.load_state_dict(state["gamma"])
    history = state["history"].numpy()
    gammas = state["gamma_history"].numpy() if "gamma_history" in state else _fixed_gammas(config, history.shape[:2])
    return (history, gammas, state["diverged_epoch"].numpy().copy(), int(state["epoch"]),
            json.loads(state.get("environment") or "[]"))


def _fixed_gammas(config: RunConfig, shape) -> np.ndarray:
    """(epochs, S) γ of a run with a fixed γ (S2: γ_sup; NaN without labels, and for CCVAE): its history's γ column."""
    weight = config.label_weight
    return np.full(shape, np.nan if weight is None else weight)


def _checkpoint_due(tcfg, done: int, seconds_since_last: float) -> bool:
    """Every ``checkpoint_minutes`` of wall time when set (a paper-size checkpoint is gigabytes), else every
    ``checkpoint_every`` epochs."""
    if tcfg.checkpoint_minutes is not None:
        return seconds_since_last >= 60 * tcfg.checkpoint_minutes
    return done % tcfg.checkpoint_every == 0


def _seed_layout(model: EnsembleVAE, asked: str, recorded: str | None, x: torch.Tensor, *, device,
                 tf32: bool) -> dict | None:
    """Set the run's seed layout on ``model`` and return the choice (:attr:`TrainResult.seed_layout`).

    None, and nothing set, where there is no choice: no convolutions, or one
    seed.  Else ``asked`` as given; for ``"auto"``, the layout ``recorded`` by
    a resumed run's environment, or the faster of both timed on x (B, D), a
    batch of the run's images, under the run's speed settings
    (:func:`welavae.nn.conv.time_layouts`: forward and backward of the
    convolutions, no gradient written, no random draw).
    """
    modules = model.conv_modules()
    if not modules or model.num_seeds == 1:
        return None
    if asked != "auto":
        choice = {"layout": asked, "chosen": "given", "seconds": {}}
    elif recorded is not None:
        choice = {"layout": recorded, "chosen": "resumed", "seconds": {}}
    else:
        with speed_settings(device, tf32=tf32):
            layout, seconds = time_layouts(modules, to_float(x))
        choice = {"layout": layout, "chosen": "timed", "seconds": seconds}
    model.set_seed_layout(choice["layout"])
    return choice


def _recorded_layout(model: EnsembleVAE, before: list[dict]) -> tuple[list[dict], str | None]:
    """(A resumed run's environment records, the seed layout the last names; None without a choice).

    A checkpoint written before layouts were recorded ran the only one there
    was, grouped: its last record is completed so, so that a resume in it is no change.
    """
    if not model.conv_modules() or model.num_seeds == 1:
        return before, None
    if before and "seed_layout" not in before[-1]:
        before = [*before[:-1], dict(before[-1], seed_layout=LAYOUTS[0])]
    return before, before[-1]["seed_layout"] if before else LAYOUTS[0]


def _resumed_environment(ckpt_path: Path, before: list[dict], env: dict, start: int) -> list[dict]:
    """The run's environment records, one more (and a warning) when it resumes on another device or software.

    The same seed on another GPU model, with TF32 switched, or under another
    torch / CUDA / cuDNN gives other bits: the run is still valid, but no
    longer bit-identical to an uninterrupted one, and its record says so.
    """
    if not before:  # a checkpoint written before environments were recorded
        return [dict(env, from_epoch=start)]
    change = describe_change(before[-1], env)
    if change is None:
        return before
    warnings.warn(f"{ckpt_path}: resuming at epoch {start} on another device or software ({change}); "
                  "the run continues, no longer bit-identical to an uninterrupted one, and records both",
                  stacklevel=3)
    return before + [dict(env, from_epoch=start)]


def train(
    config: RunConfig,
    seeds,
    images,
    labels=None,
    *,
    device: str | torch.device = "cpu",
    checkpoint=None,
    resume: bool = True,
    progress: bool | None = None,
    on_epoch=None,
    tf32: bool = False,
    compile_nll: bool | str = "auto",
    prefetch: bool = True,
    watch=(),
    seed_layout: str = "auto",
) -> TrainResult:
    """Train ``len(seeds)`` seeds of ``config`` together.

    images: (N, H, W), (N, H, W, C) or (N, D) float in [0, 1] (or bool/uint8 pixels); labels: (N, m)
    ints, label j in 0…p_j−1 or −1 = missing (required when the model has labels).  The trainer
    trusts its input: :func:`welavae.train.preflight.check_run` is the gate that checks it.  With
    ``checkpoint`` (a file path) the run saves its checkpoints there and, if ``resume``,
    continues from it.  ``on_epoch(epoch, history_row)`` is called
    after every epoch, and every ``watcher(epoch, model, terms (S, T), γ (S,))`` of ``watch`` too
    (:class:`welavae.train.tracking.Tracker`, :class:`welavae.train.tensorboard.TensorBoard`).
    ``config.train``'s ``label_epochs`` (:func:`window_labels`: labels outside the window are
    missing) and ``init_from`` (:mod:`welavae.train.init_from`: a run that does not resume starts
    from the source's weights).  ``progress``: a bar over epochs (default: on a
    terminal).  ``compile_nll``: use the torch.compile'd image likelihood
    (same value and gradient up to rounding); ``"auto"`` does so on the CPU
    when the run is long enough for compiling to pay (:func:`compile_pays`).
    ``prefetch``: draw the next epoch's noise and order in a background
    thread (same draws; :class:`_EpochDraws`).
    Speed settings are entered for the run and restored after it
    (:func:`welavae.train.platform.speed_settings`); ``tf32``: TF32 CUDA
    matmuls and convolutions (off: exact float32, PyTorch's default for
    matmuls).  ``seed_layout``: :data:`SEED_LAYOUTS`, how the convolutions run
    their seeds (module docstring; :func:`_seed_layout`).  The device, TF32,
    software versions and seed layout are recorded (``TrainResult.environment``,
    the checkpoint); resuming under another record warns and appends it.
    """
    check_seed_layout(seed_layout)
    seeds = [int(s) for s in seeds]
    device = torch.device(device)
    tcfg = config.train
    x_all, y_all = _to_tensors(images, labels if config.model.has_labels else None, device)
    n, b = len(x_all), tcfg.batch_size

    model = EnsembleVAE(config.model, seeds, label_side=config.objective.label_side).to(device)
    optimizer = _make_optimizer(model, tcfg, device)
    gamma = _gamma_controller(config, len(seeds), device)
    history = np.zeros((0, len(seeds), len(TERMS)))
    gammas = np.zeros((0, len(seeds)))
    diverged_epoch = np.full(len(seeds), -1, dtype=np.int64)
    start = 0
    ckpt_path = Path(checkpoint) if checkpoint is not None else None
    resuming = ckpt_path is not None and resume and ckpt_path.exists()
    before, recorded = [], None
    if resuming:
        history, gammas, diverged_epoch, start, before = _resume(ckpt_path, config, seeds, model, optimizer, gamma)
        before, recorded = _recorded_layout(model, before)
    elif tcfg.init_from:  # epoch 0 only: a resumed run never reads the source again
        init_from_run(model, config, gamma=gamma)
    t0 = time.perf_counter()  # the run's clock counts the layout's timing: it is part of what the run costs
    layout = _seed_layout(model, seed_layout, recorded, x_all[:b], device=device, tf32=tf32)
    env = environment_record(device, tf32=tf32)
    if layout is not None:
        env["seed_layout"] = layout["layout"]
    environment = _resumed_environment(ckpt_path, before, env, start) if resuming else [dict(env, from_epoch=0)]

    if compile_nll == "auto":
        logits = len(seeds) * b * config.model.image_dim * (n // b) * max(tcfg.epochs - start, 0)
        compile_nll = compile_pays(device, logits)

    def checkpoint(epoch: int) -> None:
        save_checkpoint(ckpt_path, model=model, optimizer=optimizer, config=config, epoch=epoch,
                        history=history, diverged_epoch=diverged_epoch, environment=environment,
                        gamma=None if gamma is None else gamma.state_dict(), gamma_history=gammas)

    draws = _EpochDraws(config, seeds, n, device, end=tcfg.epochs, background=prefetch)
    with speed_settings(device, tf32=tf32), contextlib.closing(draws):
        log_w = log_importance_weights(b, n, device=device) if config.objective.tc_estimator == "mss" else None
        guard = _Divergence(model, optimizer, diverged_epoch, device)
        bar = tqdm(total=tcfg.epochs, initial=start, desc=config.name, unit="epoch", leave=False,
                   disable=None if progress is None else not progress)  # None: on a terminal only
        last_save = _clock()
        model.train()
        for epoch in range(start, tcfg.epochs):
            means = _train_epoch(model, optimizer, guard, config, x_all, window_labels(y_all, tcfg, epoch),
                                 epoch=epoch, log_w=log_w, compiled=bool(compile_nll), draws=draws, gamma=gamma)
            history = np.concatenate([history, means[None]], axis=0)
            now = _fixed_gammas(config, (1, len(seeds))) if gamma is None else gamma.gamma.double().cpu().numpy()[None]
            gammas = np.concatenate([gammas, now], axis=0)
            done = epoch + 1
            for watcher in watch:  # before the checkpoint: a resume never leaves a watched epoch out
                watcher(done, model, means, gammas[-1])
            if ckpt_path is not None and (_checkpoint_due(tcfg, done, _clock() - last_save) or done == tcfg.epochs):
                checkpoint(done)
                last_save = _clock()
            if on_epoch is not None:
                on_epoch(done, means)
            bar.update(1)
            if (diverged_epoch < 0).any():
                bar.set_postfix(loss=f"{np.nanmean(means[:, 0]):.2f}")
        bar.close()
        if ckpt_path is not None and start == tcfg.epochs == 0:
            checkpoint(0)
        model.eval()
        model.set_seed_layout(LAYOUTS[0])  # left after the loop (module docstring)
    return TrainResult(
        model=model, config=config, seeds=seeds, history=history, diverged_epoch=diverged_epoch,
        epochs_done=max(start, tcfg.epochs), seconds=time.perf_counter() - t0, resumed_from=start,
        environment=environment, gamma=gammas, seed_layout=layout,
    )


def _gamma_controller(config: RunConfig, seeds: int, device) -> GammaController | None:
    """The per-seed γ of ``--gamma auto`` (:mod:`welavae.train.gamma`), starting at the config's γ; None for a
    fixed γ.  Its box is the paper's γ ≥ 1 and the image dimension D."""
    o = config.objective
    if not o.gamma_auto:
        return None
    return GammaController(seeds, target=GammaTarget.parse(o.gamma_target), gamma0=o.gamma,
                           gamma_max=float(config.model.image_dim), device=device)

