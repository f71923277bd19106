"""Custom autograd functions under ``torch.autocast``: run them in float32.

A hand-written backward combines saved tensors with the incoming gradient;
under autocast (bf16/fp16) those would have different dtypes and ``bmm``
refuses to mix them.  :func:`autocast_safe` gives a function's float32
version for one device type: its floating inputs are cast to float32, its
forward runs with autocast off, and its backward with the forward's autocast
state (``torch.amp.custom_fwd(cast_inputs=torch.float32)`` / ``custom_bwd``).
Outside autocast nothing changes: the same kernels on the same inputs.
"""
from __future__ import annotations

import functools

import torch

__all__ = ["autocast_safe"]


@functools.cache
def autocast_safe(function: type[torch.autograd.Function], device_type: str) -> type[torch.autograd.Function]:
    """``function`` made autocast-safe on ``device_type`` ("cpu", "cuda", …): call its ``.apply``.

    A device type without autocast (``meta``, used to check a step for host reads) gets ``function`` itself.
    """
    if not torch.amp.is_autocast_available(device_type):
        return function

    class Float32(function):
        @staticmethod
        @torch.amp.custom_fwd(device_type=device_type, cast_inputs=torch.float32)
        def forward(ctx, *args):
            return function.forward(ctx, *args)

        @staticmethod
        @torch.amp.custom_bwd(device_type=device_type)
        def backward(ctx, *grads):
            return function.backward(ctx, *grads)

    Float32.__name__ = Float32.__qualname__ = f"{function.__name__}_float32_{device_type}"
    return Float32
