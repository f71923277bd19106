"""Process-wide speed settings for training, entered and left by one context manager.

A library import changes nothing global (STYLE 11): :func:`speed_settings`
sets, for the duration of a training run, and restores on exit:

* **flush-denormal** on the CPU: denormal numbers in late-training gradients
  slow CPU kernels many-fold;
* on CUDA, **TF32** matmuls and convolutions on or off (``tf32``; off by
  default, as PyTorch's own default for matmuls: exact float32), and
  **deterministic cuDNN** (no autotuning, deterministic algorithms), so the
  same seed on the same device and software gives the same bits;
* **glibc heap reuse** (:func:`heap_reuse`): torch's CPU allocator does not
  cache, so every step frees and allocates the same activations and
  gradients; by default glibc maps and unmaps such blocks and each new
  mapping is page-faulted and zeroed by the kernel.  Within the block every
  block comes from the heap and the heap is never trimmed, so the same pages
  are reused.  ``WELAVAE_MALLOPT=0`` turns it off.

Transparent huge pages for torch's allocator (``THP_MEM_ALLOC_ENABLE=1``)
are read by torch once, at its first allocation, so no context manager can
set them: the ``welavae`` command sets the variable (unless the user did)
as it starts, before its first tensor; a Python user sets it before importing
torch.  The measured effect of each setting is in docs/performance.md.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import platform

import torch

__all__ = ["speed_settings", "heap_reuse", "environment_record", "describe_change"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
_heap_depth = 0
_denormal_depth = 0


@contextlib.contextmanager
def heap_reuse():
    """Within the block, glibc keeps freed memory for reuse instead of returning it to the kernel.

    On exit glibc's documented default values are set again (freed memory is
    returned then; glibc's dynamic mmap threshold stays off, and settings
    made through ``MALLOC_*_`` variables are not restored).  A no-op on
    other C libraries, or with ``WELAVAE_MALLOPT=0``.  Re-entrant.
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


@contextlib.contextmanager
def _flush_denormal():
    """Flush denormals to zero within the block; off again on exit (torch has no getter: off is its default)."""
    global _denormal_depth
    if _denormal_depth == 0:
        torch.set_flush_denormal(True)
    _denormal_depth += 1
    try:
        yield
    finally:
        _denormal_depth -= 1
        if _denormal_depth == 0:
            torch.set_flush_denormal(False)


def _has_fp32_precision() -> bool:
    return hasattr(torch.backends.cuda.matmul, "fp32_precision") and hasattr(torch.backends.cudnn, "conv")


@contextlib.contextmanager
def _tf32(enabled: bool):
    """TF32 for CUDA matmuls and cuDNN convolutions on or off within the block; the previous state restored.

    torch >= 2.9 has ``fp32_precision`` ("tf32" / "ieee"; "none" = inherit);
    once a process has set it, reading the legacy ``allow_tf32`` flags raises,
    so where it exists only it is read and written.  Older torch: the legacy flags.
    """
    b = torch.backends
    if _has_fp32_precision():
        saved = b.cuda.matmul.fp32_precision, b.cudnn.conv.fp32_precision
        b.cuda.matmul.fp32_precision = b.cudnn.conv.fp32_precision = "tf32" if enabled else "ieee"
        try:
            yield
        finally:
            b.cuda.matmul.fp32_precision, b.cudnn.conv.fp32_precision = saved
        return
    saved = b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32  # pragma: no cover - torch < 2.9
    b.cuda.matmul.allow_tf32 = b.cudnn.allow_tf32 = enabled  # pragma: no cover
    try:  # pragma: no cover
        yield
    finally:  # pragma: no cover
        b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32 = saved


@contextlib.contextmanager
def _cudnn_deterministic():
    """cuDNN's deterministic algorithms, no autotuning, within the block; the previous flags restored.

    Autotuning (``benchmark``) and cuDNN's non-deterministic backward
    algorithms (atomics in the transposed/strided convolutions' weight
    gradients) would make two runs of the same seed on the same GPU differ,
    and with them "a resumed run equals an uninterrupted one".
    """
    b = torch.backends.cudnn
    saved = b.deterministic, b.benchmark
    b.deterministic, b.benchmark = True, False
    try:
        yield
    finally:
        b.deterministic, b.benchmark = saved


@contextlib.contextmanager
def speed_settings(device="cpu", *, tf32: bool = False):
    """Flush-denormal and heap reuse (CPU), or TF32 on/off and deterministic cuDNN (CUDA), for the block.

    Everything is restored on exit.  ``tf32=False`` (the default, as PyTorch's
    own for matmuls) keeps CUDA matmuls and convolutions in exact float32.
    """
    with contextlib.ExitStack() as stack:
        if torch.device(device).type == "cuda":
            stack.enter_context(_tf32(tf32))
            stack.enter_context(_cudnn_deterministic())
        else:
            stack.enter_context(_flush_denormal())
            stack.enter_context(heap_reuse())
        yield


def environment_record(device, *, tf32: bool) -> dict:
    """What a run's numbers depend on beyond its config: device, TF32, torch, CUDA and cuDNN versions.

    Written into ``status.json``, the checkpoint and ``results.sqlite``; a
    run resumed under a different record says so (:func:`describe_change`).
    """
    device = torch.device(device)
    cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if cuda else device.type  # "cpu", "mps"
    return {
        "device": str(device),
        "device_name": name,
        "tf32": bool(tf32) if cuda else False,  # TF32 exists only on CUDA
        "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
    }


def describe_change(before: dict | None, now: dict) -> str | None:
    """One sentence naming what differs between two :func:`environment_record` s, or None.

    The trainer adds ``seed_layout`` to a run's record (a model with convolutions and S > 1): the same
    weights in another layout round differently, so it is compared too."""
    if not before:
        return None
    keys = ("device_name", "tf32", "torch", "cuda", "cudnn", "seed_layout")
    diff = [f"{k} {before.get(k)!r} -> {now.get(k)!r}" for k in keys if before.get(k) != now.get(k)]
    return "; ".join(diff) or None
