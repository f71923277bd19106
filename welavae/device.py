"""The device a user names (``--device``, ``device=``): validated once, in one sentence.

``cpu``, ``cuda`` (the current CUDA device), ``cuda:N`` (N below
``torch.cuda.device_count()``) or ``mps``.  :func:`check_device` checks the
name and, where the work runs in this process, that the device exists;
:func:`parse_device` only the name (for a device on other machines, e.g.
Ray workers, whose GPUs this process cannot see).
"""
from __future__ import annotations

import re

import torch

__all__ = ["parse_device", "check_device", "DEVICE_HELP"]

DEVICE_HELP = "cpu, cuda, cuda:N or mps"
_PATTERN = re.compile(r"(cpu|cuda|mps)(?::(\d+))?")


def parse_device(device) -> torch.device:
    """``device`` (str or torch.device) as a torch.device, or ValueError naming the accepted forms."""
    if isinstance(device, torch.device):
        device = str(device)
    m = _PATTERN.fullmatch(str(device).strip().lower())
    if m is None or (m.group(2) is not None and m.group(1) != "cuda"):
        raise ValueError(f"--device {device!r} is not a device: use {DEVICE_HELP}")
    return torch.device(m.group(0))


def check_device(device) -> torch.device:
    """:func:`parse_device`, and the device exists on this machine (ValueError in one sentence if not)."""
    dev = parse_device(device)
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {str(device)!r} requested but this machine has no CUDA device "
                             f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'})")
        if dev.index is not None and dev.index >= count:
            names = ", ".join(f"cuda:{i}" for i in range(count))
            raise ValueError(f"device {str(device)!r} does not exist: this machine has {count} CUDA "
                             f"device{'s' if count > 1 else ''} ({names})")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(device)!r} requested but MPS is not available on this machine")
    return dev
