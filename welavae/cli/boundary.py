"""The command line's one error boundary: what becomes one sentence, and SIGTERM as an interrupt.

What becomes a sentence is decided by the kind of cause (:func:`one_sentence`): bad input
(``ValueError``, ``OSError``), the machine's memory (``MemoryError``, torch's allocator), a missing
optional extra, an integer too large, a file's bytes (an exception raised inside a file-reading
library).  Anything else is a bug in welavae and keeps its traceback.
"""
from __future__ import annotations

import contextlib
import re
import signal
import zipfile
import zlib

from PIL import Image

from ..io import os_error_sentence
from ..memory import size_text

__all__ = ["one_sentence", "Terminated", "sigterm_interrupts"]


#: The optional extras (pyproject.toml): a missing one is the user's install, said in its package's sentence.
_EXTRAS = frozenset({"h5py", "ray", "tensorboard"})
#: torch's words for an allocation that failed (CPU allocator, CUDA caching allocator, MPS).
_NO_MEMORY = ("can't allocate memory", "out of memory", "not enough memory")
#: Exceptions that only a file's bytes raise (compressed streams, zip archives, image decoders).
_UNREADABLE = (zlib.error, zipfile.BadZipFile, EOFError, Image.DecompressionBombError)
#: Libraries that read files: any other exception raised inside them (zipfile's RuntimeError for an
#: encrypted member, NotImplementedError for an unknown compression, h5py's KeyError) is about the file read.
_READERS = ("zipfile", "zlib", "gzip", "PIL", "h5py", "numpy.lib.format")


def one_sentence(e: Exception, args) -> str | None:
    """The ``welavae: error:`` line of an exception a user's input or machine can cause; None for a bug.

    Exit status (:func:`main`): 1 when the exception was raised while a run or results folder was being
    written (:func:`welavae.lock.during_work`: what was finished is kept), else 2 (refused: nothing written).
    """
    if isinstance(e, OSError) and e.errno is not None:  # before ValueError: FileNotFoundError is an OSError too
        return os_error_sentence(e)
    if isinstance(e, (ValueError, OSError)):
        return str(e)
    if isinstance(e, ModuleNotFoundError) and (e.name is None or e.name.partition(".")[0] in _EXTRAS):
        return str(e) if e.name is None else (f"{e}: this needs an optional extra: pip install "
                                              f"'wela-vae[{'benchmarks' if e.name == 'h5py' else e.name}]'")
    if isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and any(w in str(e) for w in _NO_MEMORY)):
        return _out_of_memory(e)
    if isinstance(e, OverflowError):
        return f"a number is too large for the machine ({e}); check the integers given"
    if isinstance(e, _UNREADABLE) or _raised_in(e, _READERS):
        return f"{_inputs(args)}: a file could not be read ({type(e).__name__}: {e})"
    return None


def _out_of_memory(e: Exception) -> str:
    """One sentence for an allocation the machine refused, with its size when the allocator said it."""
    text = str(e)
    asked = re.search(r"allocate (\d+) bytes", text)
    size = size_text(int(asked.group(1))) if asked else None
    if size is None and (asked := re.search(r"[Tt]ried to allocate ([\d.]+ [KMGTP]iB)", text)):
        size = asked.group(1)
    where = "the CUDA device" if "CUDA" in text else "this machine"
    return (f"out of memory: {where} could not allocate {size or 'what the run asked for'}; use fewer --seeds, "
            "smaller --hidden layers, a smaller --batch-size or a --subset of the data")


def _raised_in(e: BaseException, modules) -> bool:
    """Whether the innermost Python frame of ``e``'s traceback belongs to one of ``modules`` (or their submodules)."""
    tb, name = e.__traceback__, ""
    while tb is not None:
        name = tb.tb_frame.f_globals.get("__name__", "")
        tb = tb.tb_next
    return any(name == m or name.startswith(m + ".") for m in modules)


def _inputs(args) -> str:
    """The files the command was given to read, as flags ("--npz d.npz"), or "a data file"."""
    given = [f"--{flag.replace('_', '-')} {getattr(args, flag)}" for flag in ("npz", "images", "labels", "data_path")
             if getattr(args, flag, None)]
    if getattr(args, "run_dir", None):
        given.append(str(args.run_dir))
    return ", ".join(given) or "a data file"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so locks are released and files left whole as on Ctrl-C."""


@contextlib.contextmanager
def sigterm_interrupts():
    """SIGTERM behaves as SIGINT for the command's duration; the previous handler is restored after."""
    def handler(signum, frame):
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
