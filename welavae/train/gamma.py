"""γ found during training: a per-seed Lagrange multiplier of a label-fit constraint.

Paper eq. 3–4 weigh the weak labels' reconstruction by γ ≥ 1; §4.3 suggests
"choosing a value γ that results in accuracy greater than some specified
threshold", and §4.4 names the tuning of γ as the method's one requirement.
Here the choice is made during training, for every seed on its own: γ is the
multiplier of the constraint "label fit ≤ target", updated after each step as
in GECO (Rezende & Viola 2018, "Taming VAEs", arXiv:1810.00597, Algorithm 1):
a moving average of the constraint drives a multiplicative update of the
multiplier, and no gradient flows through it.  With ℓ a seed's label fit on
the batch (mean NLL per observed label entry, or the error rate 1 − accuracy),
τ the target (κ, or ε = 1 − the target accuracy):

    ℓ̄ ← ℓ on the first batch with labels, else ℓ̄ + (1 − α)(ℓ − ℓ̄)
    log γ ← clip(log γ + η · clip(log(ℓ̄/τ), −log 10, log 10), log γ_min, log γ_max)

Two departures from GECO, whose constraint is the difference ℓ̄ − τ: the log
ratio makes the speed the same for a target of 1e-3 as of 1e-1 (γ moves by
a factor, as it spans three decades), and its clip bounds a step whatever ℓ̄
is, so an error rate of 0 is a finite push down.  The box is the paper's
γ ≥ 1 below and the image dimension D above (the §4.3 rule D ≈ γ·p never
gives more for p ≥ 1).

Why this is the smallest γ that keeps the labels fitted: a larger γ fits the
labels better, so ℓ falls as γ rises.  γ rises while ℓ̄ > τ and falls while
ℓ̄ < τ, so it settles where ℓ̄ = τ; any smaller γ would fit the labels worse
than the target.  Where even γ_min fits them better than the target, γ stays
at γ_min.

A seed with no observed label in the batch (partial labels) or a
non-finite fit (a diverged seed, which the trainer freezes) leaves its state
untouched, bit for bit; outside a label window the trainer does not call
:meth:`GammaController.update`, so γ stays frozen.  The state is three (S,) tensors on the
training device, updated with selections only, so a step never waits for the
host.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..config import DEFAULT_GAMMA_TARGET, TARGET_KINDS, GammaTarget
from ..objectives.likelihoods import categorical_nll

__all__ = ["GammaTarget", "GammaController", "take_seeds", "label_errors", "balanced_gamma",
           "DEFAULT_TARGET", "ETA", "ALPHA", "GAMMA_MIN", "LOG_RATIO_CLIP", "TARGET_KINDS"]

# Provisional defaults, until measured on real training (docs/gamma.md, "Constants").
#: Step size of log γ: at the clip, γ moves by a factor 10**η per step, so ×1000 takes
#: log(1000)/(η·log 10) = 3/η = 300 steps and 1 → 4096 takes 361.
ETA = 0.01
#: A memory of 1/(1 − α) = 10 steps, not GECO's 0.99 (100 steps): the average starts at the first
#: batch's fit, far above the target, and a long memory keeps γ rising long after the labels are
#: fitted (an overshoot, see the closed-form tests); with 1 − α ≥ 8η the loop is also damped
#: without oscillation where the fit's elasticity to γ is at most 2 (docs/gamma.md, "Constants").
ALPHA = 0.9
#: Paper §3: γ ≥ 1.
GAMMA_MIN = 1.0
#: The ratio ℓ̄/τ is clipped to [1/10, 10], so a step of log γ is at most η·log 10.
LOG_RATIO_CLIP = math.log(10.0)


DEFAULT_TARGET = GammaTarget.parse(DEFAULT_GAMMA_TARGET)

_STATE = ("log_gamma", "average", "seen")


class GammaController:
    """S independent multipliers γ (S,), one per seed, with their moving averages of the label fit.

    ``gamma0`` is a float or (S,) values inside [γ_min, γ_max]; the state is kept in ``dtype``
    (float64, or float32 on ``mps``, which has no float64).  Call :meth:`update` after every
    optimizer step in which the labels were observed, read :attr:`gamma` for the next loss.
    """

    def __init__(self, seeds: int, *, target: GammaTarget = DEFAULT_TARGET, gamma0, gamma_max: float,
                 gamma_min: float = GAMMA_MIN, eta: float = ETA, alpha: float = ALPHA,
                 device=None, dtype: torch.dtype | None = None):
        device = torch.device("cpu" if device is None else device)
        if dtype is None:
            dtype = torch.float32 if device.type == "mps" else torch.float64
        if int(seeds) < 1:
            raise ValueError(f"the γ controller needs at least one seed, got {seeds}")
        if not (0.0 < gamma_min <= gamma_max < math.inf):
            raise ValueError(f"γ bounds must satisfy 0 < gamma_min <= gamma_max < inf, "
                             f"got [{gamma_min}, {gamma_max}]")
        if not (0.0 < eta < math.inf):
            raise ValueError(f"the γ step size eta must be a finite number > 0, got {eta}")
        if not (0.0 <= alpha < 1.0):
            raise ValueError(f"the moving-average factor alpha must lie in [0, 1), got {alpha}")
        g0 = torch.as_tensor(gamma0, dtype=torch.float64).detach().cpu()
        if g0.shape not in ((), (int(seeds),)):
            raise ValueError(f"gamma0 must be one number or one per seed ({int(seeds)},), "
                             f"got shape {tuple(g0.shape)}")
        g0 = g0.expand(int(seeds))
        outside = ~((g0 >= gamma_min) & (g0 <= gamma_max))  # NaN is outside
        if bool(outside.any()):
            raise ValueError(f"gamma0 must lie in [gamma_min, gamma_max] = [{gamma_min:g}, {gamma_max:g}], "
                             f"got {g0[outside][0].item():g}")
        self.target, self.eta, self.alpha = target, float(eta), float(alpha)
        self.gamma_min, self.gamma_max = float(gamma_min), float(gamma_max)
        self.device, self.dtype = device, dtype
        self._level = float(target.level)
        self._lo, self._hi = math.log(gamma_min), math.log(gamma_max)
        self.log_gamma = g0.log().to(device=device, dtype=dtype)  # (S,)
        self.average = torch.zeros(int(seeds), dtype=dtype, device=device)  # (S,) ℓ̄, meaningful where seen
        self.seen = torch.zeros(int(seeds), dtype=torch.bool, device=device)  # (S,) a batch with labels came

    @property
    def seeds(self) -> int:
        return self.log_gamma.shape[0]

    @property
    def gamma(self) -> torch.Tensor:
        """(S,) float32, the weight of the label term in the next loss (no gradient)."""
        return self.log_gamma.exp().to(torch.float32)

    @torch.no_grad()
    def update(self, *, count, nll_sum: torch.Tensor | None = None, errors: torch.Tensor | None = None) -> None:
        """One step after an optimizer step.

        count: () or (S,) observed label entries of the batch (samples × labels, missing ones not
        counted); nll_sum: (S,) their summed −log p(y_j|z) (B · the objective's ``label_nll``);
        errors: (S,) how many of them have argmax ≠ label (:func:`label_errors`).  Only the one the
        target reads is needed: ``nll_sum`` for ``nll``, ``errors`` for ``acc``.
        """
        observed_fit = nll_sum if self.target.kind == "nll" else errors
        if observed_fit is None:
            raise ValueError(f"a {self.target.kind} target needs "
                             f"{'nll_sum' if self.target.kind == 'nll' else 'errors'} in update()")
        count = torch.as_tensor(count, device=self.device).to(self.dtype)  # () or (S,)
        fit = observed_fit.detach().to(device=self.device, dtype=self.dtype) / count.clamp(min=1.0)  # (S,) ℓ
        observed = (count > 0) & torch.isfinite(fit)  # (S,)
        # ℓ̄ + (1 − α)(ℓ − ℓ̄) rather than αℓ̄ + (1 − α)ℓ: a constant ℓ = ℓ̄ then leaves ℓ̄ exactly as it is.
        moved = torch.where(self.seen, self.average + (1.0 - self.alpha) * (fit - self.average), fit)
        average = torch.where(observed, moved, self.average)
        # log(0) = −inf (an error rate of 0) is clipped like any other ratio below 1/10.
        step = torch.log(average / self._level).clamp(-LOG_RATIO_CLIP, LOG_RATIO_CLIP)
        log_gamma = (self.log_gamma + self.eta * step).clamp(self._lo, self._hi)
        self.log_gamma = torch.where(observed, log_gamma, self.log_gamma)
        self.average = average
        self.seen = self.seen | observed

    def balance(self, image_nll: torch.Tensor, label_logits, y: torch.Tensor, z: torch.Tensor,
                alive: torch.Tensor | None = None) -> None:
        """The ``grad:F`` rule, from one training step (before its backward; the graph is kept).

        image_nll: (S, B) −log p(x|z); label_logits: m tensors (S, B, p_j); y: (B, m) (−1 = missing);
        z: (S, B, K) the sampled latents both decoders read.  γ moves towards
        :func:`balanced_gamma` (F times the image term's gradient norm at z over the label
        term's), in log space with the moving average's factor α; a seed without an observed
        label, or frozen (``alive`` False), keeps its γ.
        """
        label_nll = sum(categorical_nll(lg, y[:, j]) for j, lg in enumerate(label_logits))  # (S, B)
        image_grad, = torch.autograd.grad(image_nll.mean(1).sum(), z, retain_graph=True)
        label_grad, = torch.autograd.grad(label_nll.mean(1).sum(), z, retain_graph=True)
        with torch.no_grad():
            target = balanced_gamma(image_grad, label_grad, fraction=self.target.value, gamma_min=self.gamma_min,
                                    gamma_max=self.gamma_max).to(self.dtype)
            observed = (label_grad.flatten(1).norm(dim=1) > 0) & torch.isfinite(target)
            if alive is not None:
                observed = observed & alive.to(self.device)
            log_gamma = self.log_gamma + (1.0 - self.alpha) * (target.log() - self.log_gamma)
            self.log_gamma = torch.where(observed, log_gamma.clamp(self._lo, self._hi), self.log_gamma)
            self.seen = self.seen | observed

    @torch.no_grad()
    def observe(self, label_logits, y: torch.Tensor, label_nll: torch.Tensor,
                alive: torch.Tensor | None = None) -> None:
        """:meth:`update` from one training step: label_logits m tensors (S, B, p_j), y (B, m) (−1 = missing),
        label_nll (S,) the objective's per-seed batch mean of Σ_j −log p(y_j|z), alive (S,) bool (a seed
        frozen by the trainer's NaN isolation is not updated)."""
        errors, count = label_errors([lg.detach() for lg in label_logits], y)
        count = count.expand(self.seeds)
        if alive is not None:
            count = torch.where(alive.to(self.device), count, torch.zeros_like(count))
        self.update(count=count, nll_sum=label_nll.detach() * y.shape[0], errors=errors)

    def state_dict(self, seeds: Sequence[int] | torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Plain tensors (``torch.load(weights_only=True)`` reads them): every seed, or those at positions ``seeds``."""
        state = {name: getattr(self, name).clone() for name in _STATE}
        return state if seeds is None else take_seeds(state, seeds)

    def load_state_dict(self, state: dict[str, torch.Tensor],
                        seeds: Sequence[int] | torch.Tensor | None = None) -> None:
        """Restore every seed, or write ``state`` (one entry per position) into the seeds at positions ``seeds``.

        ``--init-from``: ``load_state_dict(take_seeds(source_state, source_positions), seeds=positions)``;
        with ``seen`` set to False there, the moving average restarts at the new run's first batch.
        """
        if set(state) != set(_STATE):
            raise ValueError(f"a γ controller state has the entries {sorted(_STATE)}, got {sorted(state)}")
        index = None if seeds is None else torch.as_tensor(seeds, dtype=torch.int64).reshape(-1)
        size = self.seeds if index is None else index.numel()
        for name in _STATE:
            if tuple(state[name].shape) != (size,):
                raise ValueError(f"γ controller state {name!r} has shape {tuple(state[name].shape)}, "
                                 f"expected ({size},)")
        for name in _STATE:
            current = getattr(self, name)
            value = state[name].to(device=self.device, dtype=current.dtype)
            if index is None:
                setattr(self, name, value.clone())
            else:
                setattr(self, name, current.index_copy(0, index.to(self.device), value))


def take_seeds(state: dict[str, torch.Tensor], seeds: Sequence[int] | torch.Tensor) -> dict[str, torch.Tensor]:
    """The entries of a controller state at positions ``seeds`` (e.g. of a source run's checkpoint)."""
    index = torch.as_tensor(seeds, dtype=torch.int64).reshape(-1)
    return {name: value.index_select(0, index.to(value.device)) for name, value in state.items()}


def label_errors(label_logits: Sequence[torch.Tensor], y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Wrongly predicted observed label entries (S,) and observed entries () of a batch.

    label_logits: m tensors (S, B, p_j); y: (B, m) int64 class indices, −1 = missing.  A
    prediction is the argmax of the logits (first index on ties).
    """
    observed = y >= 0  # (B, m)
    errors = sum(((logits.argmax(-1) != y[:, j]) & observed[:, j]).sum(1) for j, logits in enumerate(label_logits))
    return errors, observed.sum()


def balanced_gamma(image_grad: torch.Tensor, label_grad: torch.Tensor, *, fraction: float = 1.0,
                   gamma_min: float = GAMMA_MIN, gamma_max: float) -> torch.Tensor:
    """A second rule to compare: the γ at which the label term pulls the latent codes as hard as the image term.

    image_grad, label_grad: (S, B, K), the gradients at the sampled z of the per-seed batch
    means of −log p(x|z) and of Σ_j −log p(y_j|z) (γ not applied).  Returns (S,)
    clip(fraction · ‖image_grad‖ / ‖label_grad‖, γ_min, γ_max), norms over (B, K): the label
    term weighted by γ then has ``fraction`` times the image term's gradient norm at z, the
    representation both decoders read.  This is the §4.3 rule ("image and label
    reconstructions are of similar scale") applied to gradients instead of dimensions, and
    GradNorm's balancing of gradient norms at a shared layer (Chen et al. 2018, ICML) without
    its learned rates.  A seed without label gradient (no observed label) gets γ_max.
    """
    image_norm = image_grad.detach().flatten(1).norm(dim=1)  # (S,)
    label_norm = label_grad.detach().flatten(1).norm(dim=1)  # (S,)
    ratio = fraction * image_norm / label_norm.clamp(min=torch.finfo(label_norm.dtype).tiny)
    ratio = torch.where(label_norm > 0, ratio, torch.full_like(ratio, gamma_max))
    return ratio.clamp(gamma_min, gamma_max)
