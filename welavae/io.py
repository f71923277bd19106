"""Atomic file output: a reader sees either the old file, nothing, or the whole new one.

Every file the package writes (data cache, run directories, tables, figures,
checkpoints) goes through :func:`atomic_write`: the bytes go to a temporary
file beside the target, are flushed to disk, and the file is renamed into
place with ``os.replace``.  An interrupted write leaves no partial file.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np

__all__ = ["atomic_write", "write_npy", "write_text"]


def atomic_write(path, write) -> Path:
    """Call ``write(binary_file)`` on a temporary file beside ``path``, then rename it into place.

    Parent directories are created.  The file gets the usual permissions
    (0o666 less the umask).  Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_npy(path, array) -> Path:
    """An array as ``.npy`` (no pickles), atomically."""
    return atomic_write(path, lambda f: np.save(f, np.asarray(array), allow_pickle=False))


def write_text(path, text: str) -> Path:
    """UTF-8 text, atomically."""
    return atomic_write(path, lambda f: f.write(text.encode()))
