"""Checkpoints: the weights, Adam state and history of a run, read back without executing code.

The file's place in a run directory is :class:`welavae.run.Run`'s (``Run.checkpoint``); this module
knows its format only.

A checkpoint is a ``torch.save`` file of plain tensors and strings, written
atomically, and read with ``torch.load(weights_only=True)``: loading one
runs no code from the file.  The randomness of a run is derived from
``(seed, epoch)`` and ``(data_seed, epoch)``, so the epoch is the RNG state.

:func:`export_safetensors` writes the trained weights of each seed in the
layout of ordinary ``nn.Linear`` / ``nn.Conv2d`` / ``nn.ConvTranspose2d`` layers to a
``.safetensors`` file with the config in its metadata, so another program
can use them without this package.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch

from .config import RunConfig
from .io import atomic_write
from .nn.vae import EnsembleVAE, seed_parameters

__all__ = ["save_checkpoint", "load_checkpoint", "model_from_checkpoint", "export_safetensors"]

FORMAT = 1


def save_checkpoint(path, *, model, optimizer, config: RunConfig, epoch: int, history, diverged_epoch,
                    environment=(), gamma: dict | None = None, gamma_history=None) -> None:
    """Write a weights-only checkpoint atomically.

    ``environment``: the run's :func:`welavae.train.platform.environment_record` s (JSON text in the file);
    ``gamma``: the state of the run's γ controller (``--gamma auto``: (S,) tensors), ``gamma_history``
    (epochs, S) the γ of every epoch.
    """
    state = {
        "format": FORMAT,
        "config": config.to_json(),
        "seeds": torch.tensor(model.seeds, dtype=torch.int64),
        # Randomness is derived from (seed, epoch) and (data_seed, epoch): the epoch is the RNG state.
        # (Checkpoints before 0.3 also hold an unused "rng" entry; they load as they are.)
        "epoch": int(epoch),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": _cpu_state(optimizer.state_dict()),
        "history": torch.as_tensor(np.asarray(history, dtype=np.float64)),
        "diverged_epoch": torch.as_tensor(np.asarray(diverged_epoch, dtype=np.int64)),
        "environment": json.dumps(list(environment)),
    }
    if gamma is not None:
        state["gamma"] = {k: v.detach().cpu() for k, v in gamma.items()}
    if gamma_history is not None:
        state["gamma_history"] = torch.as_tensor(np.asarray(gamma_history, dtype=np.float64))
    # Serialised in memory first: torch.save's zip writer turns a failed write (a full disk) into an
    # opaque RuntimeError; a plain write raises the OSError that names the file (welavae.io).
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write(path, lambda f: f.write(buf.getbuffer()))


def _cpu_state(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu_state(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu_state(v) for v in obj)
    return obj


def load_checkpoint(path, *, mmap: bool = False) -> dict:
    """Read a checkpoint without executing code; raise ValueError naming the file if it is unusable.

    ``mmap``: map the file instead of reading it, so tensors never touched
    (the Adam state, twice the weights, when only the model is wanted) are
    never read from disk.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as e:
        raise ValueError(f"checkpoint {path} is unreadable ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or "model" not in state:
        raise ValueError(f"checkpoint {path} is not a welavae checkpoint")
    return _split_legacy_heads(state)


def _split_legacy_heads(state: dict) -> dict:
    """Checkpoints of welavae 0.1.0 hold the decoder's output layer whole; split it (and its Adam state) into heads.

    (0.1.0's config fields are read by :meth:`RunConfig.from_dict`.)

    Parameters and their optimizer state are in ``model.parameters()`` order,
    which is the state dict's order; the layer's weight (S, H, D + L) and bias
    (S, 1, D + L) become ``weight0, bias0`` (…, D) and ``weight1, bias1`` (…, L),
    registered in that order.
    """
    model = state["model"]
    m = RunConfig.from_json(state["config"]).model
    if m.arch != "mlp":  # 0.1.0 had the MLP only; the conv decoder's last dense layer is whole by design
        return state
    last = max(int(k.split(".")[1]) for k in model if k.startswith("decoder."))
    weight, bias = f"decoder.{last}.weight", f"decoder.{last}.bias"
    if weight not in model:
        return state
    sizes = [m.image_dim] + ([sum(m.label_dims)] if m.has_labels else [])
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
    """The checkpoint's ensemble on ``device``, and its config.

    The module is built on the ``meta`` device (shapes only: a 50-seed
    paper-size ensemble would otherwise draw every initial weight on the CPU
    to throw it away) and takes the checkpoint's tensors as its parameters.
    """
    config = RunConfig.from_json(state["config"])
    with torch.device("meta"):
        model = EnsembleVAE(config.model, state["seeds"].tolist(), label_side=config.objective.label_side)
    model.load_state_dict(state["model"], assign=True)
    return model.to(device), config




def export_safetensors(path, model: EnsembleVAE, config: RunConfig) -> Path:
    """Every seed's weights as ``seed_<S>.<layer>.{weight,bias}`` in a safetensors file, atomically.

    Layers (:func:`welavae.nn.vae.seed_parameters`): ``conv.j`` (``nn.Conv2d``,
    4×4 stride 2 padding 1, ReLU), ``encoder.j`` (ReLU between layers; the
    last gives mean and log-variance, K each), ``decoder.j`` (ReLU between
    layers; for the MLP the last gives the D image logits, then, with the
    dense head, Σ p_j label logits), ``deconv.j`` (``nn.ConvTranspose2d``,
    4×4 stride 2 padding 1; the conv decoder after ``decoder.1``, its logits
    in (C, H, W) order), ``labels`` (the conv network's dense label head, on
    ``decoder.0``'s output), ``label_head`` for the diagonal head (label j's
    class c: weight[c]·z_j + bias[c]).  The metadata holds ``config`` (JSON)
    and ``seeds``.
    """
    from safetensors.torch import save

    tensors = {}
    with torch.no_grad():
        for i, s in enumerate(model.seeds):
            for name, t in seed_parameters(model, i).items():
                tensors[f"seed_{s}.{name}"] = t.detach().to("cpu", torch.float32).contiguous().clone()
    meta = {"config": config.to_json(), "seeds": json.dumps(model.seeds), "format": "welavae-1"}
    data = save(tensors, metadata=meta)
    return atomic_write(path, lambda f: f.write(data))
