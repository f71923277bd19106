"""The memory a run may use on this machine, read when it is checked (:mod:`welavae.train.preflight`).

* host memory: Linux's ``MemAvailable`` (``/proc/meminfo``: free memory plus
  the page cache and reclaimable slabs the kernel can give back without
  swapping), elsewhere ``os.sysconf``'s available physical pages (free pages
  only: stricter).  Swap is not counted: a run that pages to disk is not one
  that finishes.
* a CUDA device: ``torch.cuda.mem_get_info`` (free bytes on that device).
* MPS shares the host's memory.

psutil would give the same numbers; it is not a dependency for two reads.
"""
from __future__ import annotations

import os

import torch

__all__ = ["available", "host_available", "size_text"]


def host_available() -> int:
    """Bytes of host memory available to a new allocation without swapping."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def available(device="cpu") -> tuple[int, str]:
    """(bytes, where) of the memory ``device`` (a checked device name) can still hold; ``where`` as said in a
    sentence ("available on this machine", "free on cuda:0")."""
    dev = torch.device(device)
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        free, _ = torch.cuda.mem_get_info(index)
        return int(free), f"free on cuda:{index}"
    return host_available(), "available on this machine"


def size_text(n: float) -> str:
    """Bytes as a person reads them: '512 MiB', '20.1 GiB', '3.4 TiB'."""
    for unit, scale in (("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n / (1 << 20):.2f} MiB"
