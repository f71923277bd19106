"""Atomic file output: a reader sees either the old file, nothing, or the whole new one.

Every file the package writes (data cache, run directories, tables, figures,
checkpoints) goes through :func:`atomic_write`: the bytes go to a temporary
file beside the target, are flushed to disk, and the file is renamed into
place with ``os.replace``.  An interrupted write leaves no partial file.

An OS error while writing (no space left, a read-only file system, no
permission) always carries the target's path, and :func:`os_error_sentence`
turns it into the one sentence the command line prints.
"""
from __future__ import annotations

import errno
import os
import uuid
from pathlib import Path

import numpy as np

__all__ = ["atomic_write", "write_npy", "write_text", "os_error_sentence"]


def atomic_write(path, write) -> Path:
    """Call ``write(binary_file)`` on a temporary file beside ``path``, then rename it into place.

    Parent directories are created.  The file gets the usual permissions
    (0o666 less the umask).  Returns ``path``.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:  # named by the target, not the temporary file
        raise OSError(e.errno, e.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.filename is None or str(e.filename) == str(tmp):  # a failed write(2) names no file
            raise type(e)(e.errno, e.strerror, str(path)) from None
        raise
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


def os_error_sentence(e: OSError) -> str:
    """One sentence for an OS error, naming its path and what to do (the command line's ``welavae: error:``)."""
    path = e.filename if e.filename is not None else "a file"
    what = {
        errno.ENOSPC: f"no space left on the device while writing {path}; free some space and run the same command "
                      "again (a run resumes from its last checkpoint)",
        errno.EDQUOT: f"disk quota exceeded while writing {path}; free some space and run the same command again",
        errno.EROFS: f"{path} is on a read-only file system; choose a writable --out",
        errno.EACCES: f"permission denied: {path}",
        errno.EPERM: f"operation not permitted on {path}",
        errno.EEXIST: f"{path} already exists" + (f" (while creating {e.filename2})" if e.filename2 else ""),
        errno.EISDIR: f"{path} is a directory, not a file",
        errno.ENOTDIR: f"{path}: a part of this path is a file, not a directory",
        errno.ENOENT: f"{path} does not exist",
    }.get(e.errno)
    if what is None:
        what = f"{e.strerror or type(e).__name__}: {path}" if e.filename is not None else str(e) or type(e).__name__
    return what
