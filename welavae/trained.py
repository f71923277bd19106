"""A trained model you can load and use: :func:`load` a run directory, or :func:`fit` one.

    import welavae
    model = welavae.fit(images, labels, label_dims=(3, 2), seeds=range(8), out="runs/mine",
                        encoder_input="image", epochs=50)
    z = model.encode(new_images, seed=0)          # (N, K) encoder means
    probs = model.decode(z, seed=0)               # (N, H, W) pixel probabilities, (N, H, W, C) in colour
    classes = model.predict_labels(z, seed=0)     # (N, m) label predictions

Encoding needs the labels only when the encoder reads them (the paper's
q(z|x, y), ``encoder_input="image+labels"``); a label-free encoder
(``encoder_input="image"``) encodes new, unlabelled images.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from .config import DataConfig, RunConfig, TrainConfig
from .data.dataset import check_images, check_labels, from_arrays
from .nn.encode import encode_dataset
from .resolve import resolve
from .run import Run
from .selection import DEFAULT_CRITERION, rank_seeds
from .train.rundir import train_run

__all__ = ["TrainedModel", "load", "fit"]

_TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


class TrainedModel:
    """The seeds of a trained run.  Arrays in and out are numpy; seed axis first, or dropped with ``seed=``."""
    def __init__(self, ensemble, config: RunConfig, run: Run | None = None):
        self.ensemble = ensemble.eval()
        self.config = config
        self.run = run
        self._one_seed: dict[int, object] = {}  # seed → its one-seed network, built once (decode/predict_labels)

    def __repr__(self) -> str:
        return f"TrainedModel({self.config.name!r}, seeds={self.seeds}, K={self.config.model.latent_dim})"

    @property
    def seeds(self) -> list[int]:
        return list(self.ensemble.seeds)

    @property
    def device(self) -> torch.device:
        return next(self.ensemble.parameters()).device

    def to(self, device) -> TrainedModel:
        self.ensemble = self.ensemble.to(device)
        self._one_seed.clear()
        return self

    def _index(self, seed) -> int | None:
        if seed is None:
            return None
        if int(seed) not in self.seeds:
            raise ValueError(f"seed {seed} is not in this model (seeds: {self.seeds})")
        return self.seeds.index(int(seed))

    def _images(self, images) -> np.ndarray:
        x = check_images(images)
        m = self.config.model
        if x[0].size != m.image_dim:
            h, w, c = m.image_shape
            raise ValueError(f"images are {x.shape[1:]} but the model was trained on {h}x{w}x{c} images (H x W x C)")
        return torch.from_numpy(np.ascontiguousarray(x.reshape(len(x), m.image_dim)))

    def posterior(self, images, labels=None, *, seed=None, batch_size: int = 2048):
        """Encoder means and log-variances, each (S, N, K), or (N, K) for one ``seed``
        (batched by :func:`welavae.nn.encode.encode_dataset`)."""
        x = self._images(images)
        m = self.config.model
        # Without labels, a label-conditioned encoder refuses in EnsembleVAE.one_hot, naming --encoder-input image.
        y = check_labels(labels, len(x), m.label_dims) if m.labels_in_encoder and labels is not None else None
        mu, logvar, _ = encode_dataset(self.ensemble, x, y, batch_size=batch_size, predict=False)
        i = self._index(seed)
        return (mu, logvar) if i is None else (mu[i], logvar[i])

    def encode(self, images, labels=None, *, seed=None, batch_size: int = 2048) -> np.ndarray:
        """images (N, H, W) or (N, H, W, C) in [0, 1] (labels (N, m) if the encoder reads them) → μ (S, N, K),
        or (N, K) for ``seed``."""
        return self.posterior(images, labels, seed=seed, batch_size=batch_size)[0]

    def _latents(self, z, seed):
        """z (N, K) or (S, N, K) → (the latents as the network's input, the network): all seeds, or ``seed`` alone."""
        z = np.asarray(z, dtype=np.float32)
        k, s = self.config.model.latent_dim, len(self.seeds)
        if z.shape[-1] != k or z.ndim not in (2, 3):
            raise ValueError(f"z must have shape (N, {k}) or (S, N, {k}), got {z.shape}")
        if z.ndim == 3 and z.shape[0] != s:
            raise ValueError(f"z has {z.shape[0]} seeds, the model {s}")
        i = self._index(seed)
        t = torch.from_numpy(z).to(self.device)
        if i is None:
            return (t.expand(s, -1, -1) if z.ndim == 2 else t), self.ensemble
        if int(seed) not in self._one_seed:
            self._one_seed[int(seed)] = self.ensemble.subset([seed])
        return (t if z.ndim == 2 else t[i])[None], self._one_seed[int(seed)]

    @torch.no_grad()
    def decode(self, z, *, seed=None) -> np.ndarray:
        """z (N, K) or (S, N, K) → Bernoulli probabilities (S, N, H, W[, C]), or (N, H, W[, C]) for ``seed``.

        The channel axis is there for C > 1 only, so that grayscale models return (…, H, W) as before.
        """
        t, net = self._latents(z, seed)
        logits, _ = net.decode(t)
        h, w, c = self.config.model.image_shape
        probs = torch.sigmoid(logits).cpu().numpy().reshape(*logits.shape[:2], h, w, *((c,) if c > 1 else ()))
        return probs if seed is None else probs[0]

    @torch.no_grad()
    def predict_labels(self, z, *, seed=None) -> np.ndarray:
        """z (N, K) or (S, N, K) → the most probable class of each label, (S, N, m), or (N, m) for ``seed``
        (S2 and CCVAE: each method's own predictor, docs/peers.md)."""
        if not self.config.model.has_labels:
            raise ValueError(f"model {self.config.name!r} has no weak labels to predict")
        t, net = self._latents(z, seed)
        logits = net.label_logits(t)
        if logits is None:
            raise ValueError(f"model {self.config.name!r} (S2 with the cov regulariser) has no label predictor")
        pred = torch.stack([lg.argmax(-1) for lg in logits], dim=-1).cpu().numpy()
        return pred if seed is None else pred[0]

    def select(self, by: str | None = None, **kwargs):
        """The run's seeds ranked without ground truth (:func:`welavae.selection.rank_seeds`);
        ``by`` defaults to :data:`welavae.selection.DEFAULT_CRITERION`."""
        if self.run is None:
            raise ValueError("select() needs a model loaded from a run directory")
        return rank_seeds(self.run, by=by or DEFAULT_CRITERION, **kwargs)


def load(run_dir, *, device="cpu", allow_unfinished: bool = False) -> TrainedModel:
    """The trained model of a run directory (all its seeds), read without executing code.

    A run whose training stopped before the end is refused unless
    ``allow_unfinished`` (then its last checkpoint's weights are used).
    """
    run = Run(run_dir)
    run.require_finished(allow_unfinished)
    config = run.config
    return TrainedModel(run.load_model(device), config, run)


def fit(images, labels=None, *, label_dims=None, seeds=(0,), out, model: str = "wela", label_names=(),
        factors=None, device="cpu", progress=None, label_fraction: float = 1.0, label_seed: int = 0,
        tf32: bool = False, **hyperparameters) -> TrainedModel:
    """Train ``seeds`` on in-memory data, write the run directory ``out``, and return the trained model.

    images (N, H, W) or (N, H, W, C) in [0, 1]; labels (N, m) class indices, −1 = missing;
    ``label_dims`` (p_1 … p_m), default 1 + the largest class of each label.
    Hyperparameters: any of :func:`welavae.config.make_run_config`'s
    (``latent_dim``, ``beta``, ``gamma``, ``hidden``, ``arch``, ``encoder``,
    ``encoder_input``, ``label_head``, ``tc_estimator``) and of
    :class:`~welavae.config.TrainConfig` (``epochs``, ``batch_size``, ``lr`` …).

    The run's data source is ``"arrays"``: the arrays trained on are kept in
    ``out/data.npz`` (:attr:`welavae.run.Run.arrays_file`), so the run is evaluated,
    plotted (with ``factors`` (N, 2)) and resumed like any other.
    ``device``: cpu, cuda, cuda:N or mps; ``tf32``: TF32 CUDA matmuls (default off: exact float32).
    """
    data = from_arrays(images, labels, label_dims=label_dims, label_names=label_names, factors=factors)
    train = TrainConfig(**{k: hyperparameters.pop(k) for k in list(hyperparameters) if k in _TRAIN_FIELDS})
    source = DataConfig(source="arrays", size=data.images.shape[1], label_fraction=label_fraction,
                        label_seed=label_seed)
    config, data = resolve(source, model, arrays=data, train=train, **hyperparameters)
    train_run(config, list(seeds), out, device=device, progress=progress, data=data, tf32=tf32)
    return load(out, device=device)
