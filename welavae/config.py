"""Configuration: frozen dataclasses, validated once, with a JSON round trip.

A run is fully determined by ``(RunConfig, seed)``.  ``model_config`` maps
the model names of the paper (β-TCVAE, WeLa-VAE, and the named variants
β-VAE and DIP-VAE) to objective terms with a plain dict: the variants differ
by their objective, not by class.

TC estimator: minibatch stratified sampling (MSS) by default; the paper
(and the ``paper`` preset) uses minibatch weighted sampling (MWS).  Why MSS
for the small presets: with MWS some β-TCVAE seeds of the quick preset
drift to a polar-like code, unlike the paper's baseline (README, where both
estimators' quick-preset numbers stand side by side).

β convention (paper eq. 4): loss = −E log p(x|z) − γ Σ_j E log p(y_j|z)
+ KL + β·TC.  In Chen et al.'s notation, where the TC term of the ELBO's own
KL is counted in, this is β_Chen = 1 + β.  ``ObjectiveConfig.beta`` always
uses the paper's convention.  For β-VAE the penalty is β·KL (Higgins et al.).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field

from .models import MODELS, model_kind

__all__ = [
    "DataConfig",
    "ModelConfig",
    "ObjectiveConfig",
    "TrainConfig",
    "RunConfig",
    "REGULARISERS",
    "SUPERVISED_LOSSES",
    "paper_gamma",
    "s2_gamma_sup",
    "make_run_config",
]

REGULARISERS = ("tc", "kl", "dip-i", "dip-ii", "none", "ccvae")  # ccvae: CCVAE's bound (docs/peers.md)
#: S2's supervised regularisers R_s (``--supervised-loss``; welavae.objectives.s2).
SUPERVISED_LOSSES = ("xent", "l2", "embed", "cov")
ENCODERS = ("mlp", "conv")
ARCHS = ("mlp", "conv")
COLORS = ("gray", "rgb")
TC_ESTIMATORS = ("mss", "mws")
#: The objective's terms (welavae.objectives.objective_terms), in the column order of a run's history.csv.
TERMS = ("loss", "image_nll", "label_nll", "kl", "tc", "reg")

#: Table 1's γ for 64×64 images ("image dimension ≈ γ × label dimension", §4.3).
PAPER_GAMMA = {2: 2000.0, 3: 1500.0, 4: 1000.0, 5: 800.0, 6: 750.0, 7: 600.0, 8: 500.0}


def paper_gamma(label_dim: float, image_dim: int = 4096) -> float:
    """γ by the paper's rule, "image dimension ≈ γ × label dimension" (§4.3).

    Table 1's values for 64×64 images and p = 2…8, else image_dim / label_dim.
    With labels of different class counts, ``label_dim`` is their mean p.
    """
    if image_dim == 4096 and label_dim in PAPER_GAMMA:
        return PAPER_GAMMA[int(label_dim)]
    return float(image_dim) / float(label_dim)


#: What ``--gamma auto`` aims at unless told (``--gamma-target``): the gradient balance, which measured
#: better than GECO's ``acc:0.99`` (GECO winds up while the labels cannot yet be fitted; docs/gamma.md).
DEFAULT_GAMMA_TARGET = "grad:1"
TARGET_KINDS = ("acc", "nll", "grad")
_FORMS = ("acc:A (a training label accuracy, 0 < A < 1, e.g. acc:0.99), "
          "nll:K (a mean NLL per observed label entry, K > 0, e.g. nll:0.05) "
          "or grad:F (the labels' gradient at z, F > 0 times the image's, e.g. grad:1)")


@dataclass(frozen=True)
class GammaTarget:
    """What γ keeps: ``acc`` (a label accuracy on the training batches) or ``nll`` (a mean NLL per label)."""

    kind: str
    value: float

    def __post_init__(self):
        object.__setattr__(self, "value", float(self.value))
        text = str(self)
        if self.kind not in TARGET_KINDS:
            raise ValueError(f"--gamma-target: unknown kind {self.kind!r} in {text!r}; expected {_FORMS}")
        if self.kind == "acc" and not 0.0 < self.value < 1.0:
            raise ValueError(f"--gamma-target: the accuracy in {text!r} must lie strictly between 0 and 1 "
                             "(an accuracy of 1 leaves no error rate to aim at)")
        if self.kind == "nll" and not (math.isfinite(self.value) and self.value > 0.0):
            raise ValueError(f"--gamma-target: the NLL in {text!r} must be a finite number greater than 0")
        if self.kind == "grad" and not (math.isfinite(self.value) and self.value > 0.0):
            raise ValueError(f"--gamma-target: the gradient fraction in {text!r} must be a finite number "
                             "greater than 0")

    @classmethod
    def parse(cls, text: str) -> GammaTarget:
        """``"acc:0.99"`` or ``"nll:0.05"`` → a target; anything else is refused in one sentence."""
        kind, sep, number = str(text).strip().partition(":")
        try:
            value = float(number)
        except ValueError:
            value = None
        if not sep or value is None:
            raise ValueError(f"--gamma-target: expected {_FORMS}, got {text!r}")
        return cls(kind.strip(), value)

    def __str__(self) -> str:
        v = repr(self.value)
        return f"{self.kind}:{v[:-2] if v.endswith('.0') else v}"  # grad:1, not grad:1.0

    @property
    def level(self) -> float:
        """τ, the value the moving average is driven to: κ, or the error rate ε = 1 − accuracy."""
        return self.value if self.kind == "nll" else 1.0 - self.value



def auto_gamma_start(label_dims, image_dim: int) -> float:
    """Where ``--gamma auto`` starts γ (docs/gamma.md, "Constants"): :data:`AUTO_GAMMA_START`."""
    if AUTO_GAMMA_START == "rule":
        return paper_gamma(sum(label_dims) / len(label_dims), image_dim)
    return float(AUTO_GAMMA_START)


#: The γ ``--gamma auto`` starts from: "rule" (the paper's rule, :func:`paper_gamma`) or a number.
AUTO_GAMMA_START = "rule"


def _fail(cls: str, field_: str, msg: str):
    raise ValueError(f"{cls}.{field_}: {msg}")


SOURCES = ("blobs", "npz", "images", "arrays", "benchmark")  # arrays: given in memory (welavae.fit)
ENCODER_INPUTS = ("image+labels", "image")
#: The label decoders p(y_j|z) of the WeLa models (``--label-head``); ``"none"``: S2 and CCVAE decode no label.
DECODER_HEADS = ("dense", "diagonal")
LABEL_HEADS = DECODER_HEADS + ("none",)

#: γ_sup in disentanglement_lib's reduction: its S2 code has no default (``gin.REQUIRED``); its one gin
#: config that sets it (``config/tests/methods/semi_supervised/train_test.gin``, and every model of
#: ``train_semi_supervised_test.py``) uses 4.
DLIB_GAMMA_SUP = 4.0


def s2_gamma_sup(loss: str, batch_size: int) -> float:
    """The default γ_sup of ``--supervised-loss loss``: :data:`DLIB_GAMMA_SUP` in our per-sample reduction.

    disentanglement_lib sums ``xent`` and ``l2`` over its labelled batch and averages ``embed`` (and ``cov``
    is a batch statistic); here R_s is a per-sample value averaged over the batch (docs/peers.md), so
    with every sample labelled γ_sup = B · 4 for xent and l2, and 4 for embed and cov.
    """
    return DLIB_GAMMA_SUP * (batch_size if loss in ("xent", "l2") else 1)


@dataclass(frozen=True)
class DataConfig:
    """Which data set: generated Blobs (``"blobs"``), a user's ``.npz`` (``"npz"``, ``path``)
    or a folder of image files with a CSV of labels (``"images"``, ``path`` and ``labels_path``).

    ``label_fraction`` < 1 keeps the weak labels of a random subset of
    round(f·N) samples (the others become missing, −1), drawn from
    ``label_seed``: the same subset for every seed of a run.  ``color``: how
    an image folder is read, ``"gray"`` (one channel, the default) or
    ``"rgb"`` (three channels).

    ``"benchmark"``: a file of :data:`welavae.data.published.BENCHMARKS`
    (``dataset``, ``data_path``: the file, or a folder holding it under its
    published name, or None for the data directory; made absolute by
    :func:`welavae.data.load.resolve_paths`), ``subset`` images of it drawn from
    ``subset_seed`` (None = all), weak labels from the ``weak_labels`` spec
    (:mod:`welavae.data.spec`; None = no labels); ``grid``: the factor sizes of
    a reduced grid (a twin written with ``write_sprites_npz(keep=...)``), None =
    the published grid.  Blobs takes a ``weak_labels`` spec too, over its centre
    (c1, c2) on the canvas [0, size] (e.g. ``"sum(c1,c2):3, diff(c1,c2):3"``),
    instead of the model's p for angle and distance; without one a Blobs config
    (and its hash) is what it was.

    ``fingerprint``: what the data's content was when the run was configured
    (:func:`welavae.data.fingerprint.fingerprint`; made by
    :func:`welavae.resolve.resolve` as the data are read, None for Blobs, which
    its config determines).  It is recorded, and compared by
    :meth:`RunConfig.same_run`, but not hashed (:data:`_NOT_HASHED`).
    """

    source: str = "blobs"
    variants: int = 25
    size: int = 64
    seed: int = 0
    shape: str = "gaussian"
    sigma_range: tuple[float, float] = (2.0, 4.0)
    path: str | None = None
    labels_path: str | None = None
    label_fraction: float = 1.0
    label_seed: int = 0
    color: str = "gray"
    dataset: str | None = None
    data_path: str | None = None
    subset: int | None = None
    subset_seed: int = 0
    weak_labels: str | None = None
    grid: tuple[int, ...] | None = None
    fingerprint: str | None = None

    def __post_init__(self):
        if self.color not in COLORS:
            _fail("data", "color", f"must be one of {COLORS}, got {self.color!r}")
        if self.source not in SOURCES:
            _fail("data", "source", f"must be one of {SOURCES}, got {self.source!r}")
        if self.source in ("npz", "images") and not self.path:
            _fail("data", "path", f"a {self.source!r} data set needs a path")
        if self.source == "benchmark" and not self.dataset:
            _fail("data", "dataset", "a 'benchmark' data set needs a dataset name")
        if self.source != "benchmark" and (self.dataset or self.data_path or self.grid or self.subset is not None):
            _fail("data", "dataset", f"dataset, data_path, subset and grid go with source "
                                     f"'benchmark', not {self.source!r}")
        if self.weak_labels is not None and self.source not in ("benchmark", "blobs"):
            _fail("data", "weak_labels", f"a weak-label spec goes with source 'benchmark' or 'blobs', "
                                         f"not {self.source!r} (its labels are its own)")
        if self.subset is not None and (isinstance(self.subset, bool) or int(self.subset) < 1):
            _fail("data", "subset", f"must be an integer >= 1 or None, got {self.subset!r}")
        if self.grid is not None:
            object.__setattr__(self, "grid", tuple(int(s) for s in self.grid))
        if self.variants < 1:
            _fail("data", "variants", f"must be >= 1, got {self.variants}")
        if not (math.isfinite(self.label_fraction) and 0.0 <= self.label_fraction <= 1.0):
            _fail("data", "label_fraction", f"must lie in [0, 1], got {self.label_fraction}")
        object.__setattr__(self, "sigma_range", tuple(float(s) for s in self.sigma_range))


@dataclass(frozen=True)
class ModelConfig:
    """Network shapes.  Encoder q(z|x, y) or q(z|x), decoder p(x|z) ∏_j p(y_j|z) (paper §3).

    ``label_dims`` = (p_1, …, p_m), the classes of each weak label; () for a
    model without labels.  ``encoder_input``: ``"image+labels"`` is the
    paper's q(z|x, y) (one-hot labels concatenated to the input, a missing
    label an all-zero block); ``"image"`` is the label-free encoder q(z|x)
    that §5 proposes.  ``label_head``: ``"dense"`` (the paper's: every label
    decoded from all of z) or ``"diagonal"`` (label j from latent j alone
    through a per-class affine map, as in CCVAE, Joy et al. 2021; needs
    K ≥ m) or ``"none"`` (S2 and CCVAE, which decode no label: their labels'
    parameters are the objective's, :attr:`ObjectiveConfig.label_side`).
    ``label_names`` / ``label_classes`` name the labels and, for labels read
    as strings, their classes in index order.

    ``image_shape`` = (H, W, C); a 0.2.0 config's (H, W) reads as C = 1.
    ``arch``: ``"mlp"`` (``hidden`` sizes; ``encoder="conv"`` puts the conv
    network's encoder in front of them, as 0.2.0's ``--encoder conv``) or
    ``"conv"`` (disentanglement_lib's conv encoder and transposed-conv
    decoder, :mod:`welavae.nn.conv`; ``hidden`` unused; H, W divisible by 16).
    """

    latent_dim: int = 2
    hidden: tuple[int, ...] = (1200, 1200)
    label_dims: tuple[int, ...] = ()
    image_shape: tuple[int, ...] = (64, 64, 1)
    encoder: str = "mlp"
    encoder_input: str = "image+labels"
    label_head: str = "dense"
    label_names: tuple[str, ...] = ()
    label_classes: tuple[tuple[str, ...], ...] = ()
    arch: str = "mlp"

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        object.__setattr__(self, "label_dims", tuple(int(p) for p in self.label_dims))
        shape = tuple(int(s) for s in self.image_shape)
        object.__setattr__(self, "image_shape", shape + (1,) if len(shape) == 2 else shape)
        object.__setattr__(self, "label_names", tuple(str(s) for s in self.label_names))
        object.__setattr__(self, "label_classes", tuple(tuple(str(c) for c in cl) for cl in self.label_classes))
        if self.latent_dim < 1:
            _fail("model", "latent_dim", f"must be >= 1, got {self.latent_dim}")
        if not self.hidden or min(self.hidden) < 1:
            _fail("model", "hidden", f"needs at least one layer of size >= 1, got {self.hidden}")
        if any(p < 2 for p in self.label_dims):
            _fail("model", "label_dims", f"every label needs >= 2 classes, got {self.label_dims}")
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            _fail("model", "image_shape", f"must be (H, W, C) with H, W, C >= 1, got {self.image_shape}")
        if self.encoder not in ENCODERS:
            _fail("model", "encoder", f"must be one of {ENCODERS}, got {self.encoder!r}")
        if self.arch not in ARCHS:
            _fail("model", "arch", f"must be one of {ARCHS}, got {self.arch!r}")
        h, w = self.image_shape[:2]
        if self.arch == "conv" and (h % 16 or w % 16):
            _fail("model", "arch", f"the conv network needs H and W divisible by 16 (64x64 is the reference), "
                  f"got {h}x{w}")
        if self.arch == "mlp" and self.encoder == "conv" and min(h, w) < 16:
            _fail("model", "encoder", f"the conv encoder needs H, W >= 16, got {self.image_shape}")
        if self.encoder_input not in ENCODER_INPUTS:
            _fail("model", "encoder_input", f"must be one of {ENCODER_INPUTS}, got {self.encoder_input!r}")
        if self.label_head not in LABEL_HEADS:
            _fail("model", "label_head", f"must be one of {LABEL_HEADS}, got {self.label_head!r}")
        if self.has_labels and self.latent_dim < self.num_labels:  # WeLa: each label needs a latent of its own
            _fail("model", "latent_dim", f"{self.num_labels} weak labels need K >= m = {self.num_labels} latents "
                  f"(--latent-dim), got K = {self.latent_dim}")
        if self.label_head == "diagonal" and self.latent_dim < self.num_labels:
            _fail("model", "label_head",
                  f"the diagonal head needs K >= m = {self.num_labels} latents, got K = {self.latent_dim}")
        if self.label_names and len(self.label_names) != self.num_labels:
            _fail("model", "label_names", f"needs {self.num_labels} names, got {self.label_names}")
        if self.label_classes and [len(c) for c in self.label_classes] != list(self.label_dims):
            _fail("model", "label_classes", f"class names do not match label_dims {self.label_dims}")

    @property
    def image_dim(self) -> int:
        """D = H·W·C, the Bernoulli values of one image."""
        h, w, c = self.image_shape
        return h * w * c

    @property
    def channels(self) -> int:
        return self.image_shape[2]

    @property
    def has_labels(self) -> bool:
        return bool(self.label_dims)

    @property
    def num_labels(self) -> int:
        return len(self.label_dims)

    @property
    def labels_in_encoder(self) -> bool:
        return self.has_labels and self.encoder_input == "image+labels"

    @property
    def classes(self) -> tuple[tuple[str, ...], ...]:
        """Each label's class names: ``label_classes``, or the indices "0" … "p−1" when it has none."""
        return self.label_classes or tuple(tuple(str(c) for c in range(p)) for p in self.label_dims)

    @property
    def label_dim(self) -> int | None:
        """p when every label has p classes (Blobs), else None."""
        return self.label_dims[0] if self.has_labels and len(set(self.label_dims)) == 1 else None


@dataclass(frozen=True)
class ObjectiveConfig:
    """Terms of eq. 4 and its variants.  ``beta`` in the paper's convention (see module doc).

    ``gamma_target``: None, γ is ``gamma`` throughout; a target (``"acc:0.99"``,
    ``"nll:0.05"``, :class:`GammaTarget`), γ is found during training, per seed,
    starting from ``gamma`` (``--gamma auto``, :mod:`welavae.train.gamma`).

    The peers of docs/peers.md: ``supervised_loss`` (one of :data:`SUPERVISED_LOSSES`) adds S2's
    γ_sup · R_s(μ, y) with ``gamma_sup``; ``regulariser="ccvae"`` is CCVAE's bound instead of the
    VAE's terms.  Either decodes no label (:attr:`label_side`).
    """

    regulariser: str = "tc"
    beta: float = 40.0
    gamma: float = 1.0
    tc_estimator: str = "mss"
    dip_lambda_od: float = 10.0
    dip_lambda_d: float = 10.0
    gamma_target: str | None = None
    supervised_loss: str | None = None
    gamma_sup: float = 0.0

    @property
    def gamma_auto(self) -> bool:
        return self.gamma_target is not None

    @property
    def label_side(self) -> str | None:
        """The labels' parameters without a label decoder (:class:`welavae.nn.labelside.LabelSide`):
        ``"s2-<loss>"``, ``"ccvae"``, or None (a label decoder weighed by γ, or no labels)."""
        if self.regulariser == "ccvae":
            return "ccvae"
        return None if self.supervised_loss is None else f"s2-{self.supervised_loss}"

    def __post_init__(self):
        if self.gamma_target is not None:
            object.__setattr__(self, "gamma_target", str(GammaTarget.parse(self.gamma_target)))
        if self.regulariser not in REGULARISERS:
            _fail("objective", "regulariser", f"must be one of {REGULARISERS}, got {self.regulariser!r}")
        if self.tc_estimator not in TC_ESTIMATORS:
            _fail("objective", "tc_estimator", f"must be one of {TC_ESTIMATORS}, got {self.tc_estimator!r}")
        if self.supervised_loss is not None and self.supervised_loss not in SUPERVISED_LOSSES:
            _fail("objective", "supervised_loss", f"must be one of {SUPERVISED_LOSSES}, got {self.supervised_loss!r}")
        if self.supervised_loss is not None and self.regulariser == "ccvae":
            _fail("objective", "supervised_loss", "S2's supervised loss does not go with CCVAE's bound")
        if self.supervised_loss is None and self.gamma_sup != 0:
            _fail("objective", "gamma_sup", f"weighs S2's supervised loss, and there is none (got {self.gamma_sup})")
        for name in ("beta", "gamma", "dip_lambda_od", "dip_lambda_d", "gamma_sup"):  # NaN fails every comparison
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                _fail("objective", name, f"must be a finite number >= 0, got {value}")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation (paper §4.3: Adam 1e-4, batch 256, 150 epochs)."""

    epochs: int = 150
    batch_size: int = 256
    lr: float = 1e-4
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    data_seed: int = 0  # shuffling order, shared by all seeds of a run
    checkpoint_every: int = 10  # epochs
    eval_batch_size: int = 2048
    # When set: a checkpoint every this many minutes of wall time (and at the end) instead of every
    # checkpoint_every epochs.  Cadence only, no effect on the result: not part of RunConfig.hash().
    checkpoint_minutes: float | None = None
    # Schedules of issue 23 (docs/conjectures.md; welavae.train.trainer, init_from, tracking): labels observed only in
    # epochs A … B−1; the weights of a finished run directory as the start; the polar and Cartesian
    # MSE of every seed every E epochs into tracking.csv (0: off).
    label_epochs: tuple[int, int] | None = None
    init_from: str | None = None
    track_every: int = 0

    def __post_init__(self):
        object.__setattr__(self, "adam_betas", tuple(float(b) for b in self.adam_betas))
        if self.epochs < 1 and not (self.epochs == 0 and self.init_from):  # 0 with init_from: a copy
            _fail("train", "epochs", f"must be >= 1 (0 only with init_from), got {self.epochs}")
        if self.batch_size < 2:
            _fail("train", "batch_size", f"must be >= 2 (the TC estimator needs pairs), got {self.batch_size}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            _fail("train", "lr", f"must be a finite number > 0, got {self.lr}")
        if not (math.isfinite(self.adam_eps) and self.adam_eps > 0):
            _fail("train", "adam_eps", f"must be a finite number > 0, got {self.adam_eps}")
        if len(self.adam_betas) != 2 or not all(0.0 <= b < 1.0 for b in self.adam_betas):
            _fail("train", "adam_betas", f"must be two numbers in [0, 1), got {self.adam_betas}")
        if self.checkpoint_every < 1:
            _fail("train", "checkpoint_every", f"must be >= 1, got {self.checkpoint_every}")
        if self.checkpoint_minutes is not None and not self.checkpoint_minutes > 0:
            _fail("train", "checkpoint_minutes", f"must be > 0 (or None: every checkpoint_every epochs), "
                  f"got {self.checkpoint_minutes}")
        if self.label_epochs is not None:
            window = tuple(int(e) for e in self.label_epochs)
            object.__setattr__(self, "label_epochs", window)
            if len(window) != 2 or not 0 <= window[0] <= window[1] <= self.epochs:
                _fail("train", "label_epochs", f"must be A:B with 0 <= A <= B <= epochs ({self.epochs}), "
                      f"got {':'.join(map(str, window))}")
        if self.track_every < 0:
            _fail("train", "track_every", f"must be >= 0 (0: off), got {self.track_every}")


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run, but the seed.  ``kind`` names the model kind
    (:data:`welavae.models.MODELS`); ``name`` is the run's own name (a Table-1 key)."""

    name: str = "wela"
    kind: str = "wela"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        if self.kind not in MODELS:
            _fail("run", "kind", f"must be one of {sorted(MODELS)}, got {self.kind!r}")
        if self.train.label_epochs is not None and not self.model.has_labels:
            _fail("train", "label_epochs", f"model {self.name!r} has no weak labels to observe in a window")
        side, m = self.objective.label_side, self.model
        if side is not None and (not m.has_labels or m.labels_in_encoder or m.label_head != "none"):
            _fail("model", "label_head", f"an S2 or CCVAE objective ({side}) needs weak labels, a label-free encoder "
                  "(encoder_input 'image') and no label decoder (label_head 'none')")
        if side is None and m.has_labels and m.label_head == "none":
            _fail("model", "label_head", "'none' (no label decoder) goes with an S2 or CCVAE objective only")
        if side is not None and self.objective.gamma_auto:
            _fail("objective", "gamma_target", "--gamma auto finds the γ of a label decoder; S2 and CCVAE have none")

    @property
    def label_weight(self) -> float | None:
        """The weight of the labels' term: γ (a label decoder), γ_sup (S2), or None (no labels; CCVAE,
        whose bound weighs its labels itself)."""
        if not self.model.has_labels or self.objective.regulariser == "ccvae":
            return None
        return self.objective.gamma_sup if self.objective.supervised_loss else self.objective.gamma

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        parts = {"data": DataConfig, "model": ModelConfig, "objective": ObjectiveConfig, "train": TrainConfig}
        unknown = set(d) - set(parts) - {"name", "kind"}
        if unknown:
            raise ValueError(f"config: unknown fields {sorted(unknown)}")
        kwargs = {"name": d.get("name", "wela"), "kind": d.get("kind") or _legacy_kind(d)}
        for key, klass in parts.items():
            sub = dict(d.get(key, {}))
            if key == "model":
                sub = _legacy_model(sub)
            names = {f.name for f in dataclasses.fields(klass)}
            bad = set(sub) - names
            if bad:
                raise ValueError(f"config.{key}: unknown fields {sorted(bad)}")
            kwargs[key] = klass(**sub)
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return cls.from_dict(json.loads(text))

    def same_run(self, other: RunConfig) -> bool:
        """Whether ``other`` configures the same computation on the same data: equal but for the checkpoint
        cadence (:data:`_NOT_HASHED`), label classes written out as their indices "0" … "p−1" or left empty
        (the same labels), and with the same data fingerprint (:meth:`same_data`)."""
        return self.same_config(other) and self.same_data(other)

    def same_config(self, other: RunConfig) -> bool:
        """:meth:`same_run` without the data's fingerprint: the same computation, whatever the files hold now."""
        return _comparable(self.to_dict()) == _comparable(other.to_dict())

    def same_data(self, other: RunConfig) -> bool:
        """Whether the data fingerprints agree; a config without one (Blobs, or a run configured before
        fingerprints were recorded) agrees with any."""
        a, b = self.data.fingerprint, other.data.fingerprint
        return a is None or b is None or a == b

    def hash(self) -> str:
        """Stable 16-hex digest of the resolved configuration, without the fields that cannot change a result.

        Those fields (:data:`_NOT_HASHED`) were added after runs were stored
        under their hashes, so leaving them out also keeps those hashes; fields
        added after 0.2.0 enter it only when they differ from 0.2.0's behaviour
        (:func:`_as_0_2_0`), so a 0.2.0 configuration keeps its hash (its sweep
        results and status files stay valid).
        """
        d = _as_0_2_0(self.to_dict())
        for part, name in _NOT_HASHED:
            d[part].pop(name, None)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


#: (section, field) of RunConfig that RunConfig.hash() leaves out: the checkpoint cadence (it cannot change a
#: result), and the data's fingerprint.  The hash names a configuration; the fingerprint says what its files
#: held, and RunConfig.same_data compares it.  Hashing it would give every sweep stored before fingerprints
#: existed (results.sqlite keys its rows by the hash) a new key, and retrain it.
_NOT_HASHED = (("train", "checkpoint_minutes"), ("data", "fingerprint"))


def _comparable(d: dict) -> dict:
    """A config dict with what :meth:`RunConfig.same_run` ignores removed."""
    d = {k: dict(v) if isinstance(v, dict) else v for k, v in d.items()}
    for part, name in _NOT_HASHED:
        d[part].pop(name, None)
    model = d["model"]
    if all(list(c) == [str(i) for i in range(len(c))] for c in model.get("label_classes", ())):
        model["label_classes"] = ()
    return d


def _as_0_2_0(d: dict) -> dict:
    """The config dict as 0.2.0 wrote it where the new fields hold 0.2.0's behaviour:
    gray folders and no benchmark (``data``: :data:`_LATER_DATA_FIELDS`), the MLP (``model.arch``),
    one channel (``image_shape`` (H, W)), no label window, initial weights or tracking
    (``train``: :data:`_LATER_TRAIN_FIELDS`)."""
    model = dict(d["model"])
    data, train, objective = (_without_later(d[part], later) for part, later in (
        ("data", _LATER_DATA_FIELDS), ("train", _LATER_TRAIN_FIELDS), ("objective", _LATER_OBJECTIVE_FIELDS)))
    if model.get("arch") == "mlp":
        del model["arch"]
    if len(model["image_shape"]) == 3 and model["image_shape"][2] == 1:
        model["image_shape"] = model["image_shape"][:2]
    return dict(d, data=data, model=model, train=train, objective=objective)


#: TrainConfig fields added after 0.2.0 with their 0.2.0 behaviour (left out of the hash when they hold it).
_LATER_TRAIN_FIELDS = {"label_epochs": None, "init_from": None, "track_every": 0}
#: ObjectiveConfig fields added after 0.2.0 with their 0.2.0 behaviour (left out of the hash when they hold it).
_LATER_OBJECTIVE_FIELDS = {"gamma_target": None, "supervised_loss": None, "gamma_sup": 0.0}
#: DataConfig fields added after 0.2.0 with their 0.2.0 behaviour (left out of the hash when they hold it).
_LATER_DATA_FIELDS = {"color": "gray", "dataset": None, "data_path": None, "subset": None, "subset_seed": 0,
                      "weak_labels": None, "grid": None}


def _without_later(section: dict, later: dict) -> dict:
    """``section`` less the fields of ``later`` that hold their 0.2.0 value."""
    return {k: v for k, v in section.items() if later.get(k, object()) != v}


def _legacy_model(m: dict) -> dict:
    """welavae 0.1.0 wrote ``label_dim``/``num_labels``/``image_size``/``labels_in_encoder``."""
    m = dict(m)
    if "label_dim" in m or "num_labels" in m:
        p, count = int(m.pop("label_dim", 0) or 0), int(m.pop("num_labels", 2))
        m["label_dims"] = (p,) * count if p else ()
    if "image_size" in m:
        s = int(m.pop("image_size"))
        m["image_shape"] = (s, s)
    if "labels_in_encoder" in m:
        m["encoder_input"] = "image+labels" if m.pop("labels_in_encoder") else "image"
    return m


def _legacy_kind(d: dict) -> str:
    reg = d.get("objective", {}).get("regulariser", "tc")
    labelled = bool(d.get("model", {}).get("label_dim") or d.get("model", {}).get("label_dims"))
    return {"tc": "wela" if labelled else "tcvae", "kl": "betavae"}.get(reg, "dipvae")


def make_run_config(
    model: str,
    *,
    label_dim: int | None = None,
    label_dims=None,
    latent_dim: int | None = None,
    beta: float | None = None,
    gamma: float | str | None = None,
    gamma_target: str | None = None,
    hidden=(1200, 1200),
    encoder: str = "mlp",
    arch: str = "mlp",
    encoder_input: str | None = None,
    label_head: str | None = None,
    tc_estimator: str = "mss",
    supervised_loss: str | None = None,
    gamma_sup: float | None = None,
    image_shape=None,
    label_names=(),
    label_classes=(),
    data: DataConfig | None = None,
    train: TrainConfig | None = None,
    name: str | None = None,
) -> RunConfig:
    """Resolve a model kind of :data:`welavae.models.MODELS` into a full :class:`RunConfig`.

    ``tcvae`` is the β-TCVAE baseline (K=5, β=40, no labels); ``wela`` is
    WeLa-VAE (K=2, β=40, γ by :func:`paper_gamma`).  Weak labels: ``label_dims``
    (p_1, …, p_m), or ``label_dim`` = p for Blobs' two labels (angle,
    distance).  ``betavae`` and ``dipvae`` (DIP-VAE-II) take labels too when
    given (their WeLa versions).  ``image_shape`` defaults to the Blobs size.
    ``gamma="auto"``: γ found during training (:mod:`welavae.train.gamma`) to keep the
    labels at ``gamma_target`` (default :data:`DEFAULT_GAMMA_TARGET`), starting from
    :func:`auto_gamma_start`.  ``encoder_input`` and ``label_head`` default to the paper's
    (``"image+labels"``, ``"dense"``).

    The peers (docs/peers.md): ``s2tcvae`` takes ``supervised_loss`` (default ``"xent"``) and
    ``gamma_sup`` (default :func:`s2_gamma_sup`), ``ccvae`` neither; both read images only
    (``encoder_input="image"``) and decode no label (``label_head="none"``), so γ, ``--label-head``
    and, for CCVAE, β are refused.
    """
    kind = model_kind(model)
    if label_dims is not None and label_dim:
        raise ValueError("give label_dim (Blobs' two labels) or label_dims, not both")
    dims = tuple(int(p) for p in label_dims) if label_dims is not None else ((int(label_dim),) * 2 if label_dim else ())
    if kind.labels == "required" and not dims:
        raise ValueError(f"model {model!r} needs weak labels: give label_dim >= 2 (or label_dims)")
    if kind.labels == "never" and dims:
        raise ValueError(f"model {model!r} is the unsupervised baseline and takes no labels; use 'wela'")
    _check_peer_options(kind, encoder_input=encoder_input, label_head=label_head, gamma=gamma, beta=beta,
                        supervised_loss=supervised_loss, gamma_sup=gamma_sup)
    peer = kind.supervision != "decoder"
    encoder_input = encoder_input or ("image" if peer else "image+labels")
    label_head = label_head or ("none" if peer else "dense")
    if kind.supervision == "s2":
        supervised_loss = supervised_loss or "xent"
        if gamma_sup is None:
            gamma_sup = s2_gamma_sup(supervised_loss, (train or TrainConfig()).batch_size)
    data = data or DataConfig()
    shape = tuple(image_shape) if image_shape is not None else (data.size, data.size)
    mcfg = ModelConfig(
        latent_dim=int(latent_dim if latent_dim is not None else max(kind.latent_dim, len(dims))),
        hidden=tuple(hidden),
        label_dims=dims,
        image_shape=shape,
        encoder=encoder,
        arch=arch,
        encoder_input=encoder_input,
        label_head=label_head,
        label_names=tuple(label_names),
        label_classes=tuple(label_classes),
    )
    if beta is None:
        beta = kind.beta
    auto = isinstance(gamma, str) and gamma.strip().lower() == "auto"
    if isinstance(gamma, str) and not auto:
        raise ValueError(f"gamma (--gamma) must be a number or 'auto', got {gamma!r}")
    if gamma_target is not None and not auto:
        raise ValueError("--gamma-target goes with --gamma auto (a fixed γ has no target)")
    if auto and not dims:
        raise ValueError(f"--gamma auto: model {model!r} has no weak labels, so no γ to find")
    if auto:
        gamma_target = str(GammaTarget.parse(gamma_target or DEFAULT_GAMMA_TARGET))
        gamma = auto_gamma_start(dims, mcfg.image_dim)
    elif gamma is None:
        gamma = paper_gamma(sum(dims) / len(dims), mcfg.image_dim) if dims and not peer else 1.0
    obj = ObjectiveConfig(regulariser=kind.regulariser, beta=float(beta), gamma=float(gamma), tc_estimator=tc_estimator,
                          gamma_target=gamma_target, supervised_loss=supervised_loss,
                          gamma_sup=float(gamma_sup or 0.0))
    if name is None:
        p = mcfg.label_dim
        name = f"{model}_p{p}" if p and len(dims) == 2 else model
    return RunConfig(name=name, kind=model, data=data, model=mcfg, objective=obj, train=train or TrainConfig())


def _check_peer_options(kind, *, encoder_input, label_head, gamma, beta, supervised_loss, gamma_sup) -> None:
    """Refuse, in one sentence, an option that does not fit the kind's use of its labels (docs/peers.md)."""
    if kind.supervision != "s2":
        for flag, value in (("--supervised-loss", supervised_loss), ("--gamma-sup", gamma_sup)):
            if value is not None:
                raise ValueError(f"{flag} goes with --model s2tcvae (S2's supervised regulariser), not {kind.name!r}")
    if kind.supervision == "decoder":
        return
    if encoder_input == "image+labels":
        raise ValueError(f"--encoder-input image+labels: {kind.display}'s encoder reads the images only, q(z|x) "
                         "(drop the flag)")
    if label_head is not None and label_head != "none":
        raise ValueError(f"--label-head {label_head}: {kind.display} has no label decoder (its labels enter "
                         "through its own objective; drop the flag)")
    if gamma is not None:
        instead = (": its labels' weight is --gamma-sup" if kind.supervision == "s2"
                   else " (its bound weighs its labels)")
        raise ValueError(f"--gamma weighs a label decoder, which {kind.display} has not{instead}")
    if kind.supervision == "ccvae" and beta is not None:
        raise ValueError("--beta: CCVAE's bound has no total-correlation term to weigh")
