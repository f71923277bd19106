"""Process-wide speed settings for training, entered and left by one context manager.

A library import changes nothing global (STYLE 11): :func:`speed_settings`
sets, for the duration of a training run, and restores on exit:

* **flush-denormal** on the CPU: denormal numbers in late-training gradients
  slow CPU kernels many-fold;
* **TF32** matmuls and convolutions on CUDA (``tf32=True``);
* **glibc heap reuse** (:func:`heap_reuse`): torch's CPU allocator does not
  cache, so every step frees and allocates the same activations and
  gradients; by default glibc maps and unmaps such blocks and each new
  mapping is page-faulted and zeroed by the kernel.  Within the block every
  block comes from the heap and the heap is never trimmed, so the same pages
  are reused.  ``WELAVAE_MALLOPT=0`` turns it off.

Transparent huge pages for torch's allocator (``THP_MEM_ALLOC_ENABLE=1``)
are read by torch once, at its first allocation, so no context manager can
set them: the ``welavae`` command sets the variable (unless the user did)
before torch is imported; a Python user sets it before importing torch.  The measured effect of each setting is in the README.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import platform

import torch

__all__ = ["speed_settings", "heap_reuse"]

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


@contextlib.contextmanager
def _tf32(enabled: bool):
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


@contextlib.contextmanager
def speed_settings(device="cpu", *, tf32: bool = True):
    """Flush-denormal and heap reuse (CPU) or TF32 (CUDA) for the block; everything restored on exit."""
    with contextlib.ExitStack() as stack:
        if torch.device(device).type == "cuda":
            stack.enter_context(_tf32(tf32))
        else:
            stack.enter_context(_flush_denormal())
            stack.enter_context(heap_reuse())
        yield
