"""An exclusive lock on a directory: one command writes a run directory or a results folder at a time.

``with lock_dir(path, command=...):`` creates ``path/.welavae.lock`` holding
the owner's PID, host, command line and start time (JSON), and removes it on
leaving the block — also on an exception, ``KeyboardInterrupt`` or SIGTERM
(the command line turns SIGTERM into an exception, :mod:`welavae.cli`).  A
second command on the same directory gets :class:`Locked` (a ``ValueError``:
the command line prints it in one sentence and exits 2) naming the holder.

Why a lock *file* created with ``link(2)``, not ``flock``/``fcntl``:

* The sweep's Ray workers and a cluster's users reach a run directory over a
  shared filesystem (NFS, Lustre, CephFS).  ``flock`` there is emulated or
  local to one client on some of them, and silently succeeds twice; creating
  a name that does not yet exist is atomic on every POSIX filesystem and on
  NFS (the server decides), which is why mail spools and Git's ``index.lock``
  use it.  The owner's record is written to a private temporary file first
  and *linked* into place, so the lock never exists half-written; where the
  filesystem has no hard links we fall back to ``O_CREAT | O_EXCL``.
* A lock file survives its owner's death (SIGKILL, a power cut), so we
  detect a stale one: the holder's host is this host and ``os.kill(pid, 0)``
  says no such process.  Such a lock is taken over (renamed aside, checked,
  deleted).  A lock held on another host is never judged stale (we cannot
  see its processes): the refusal names the file to delete if that command
  is gone.

Within one process the lock is re-entrant (``fit`` calls ``train_run``; the
sweep plots into a chunk it trained), so nested blocks on one directory do not
refuse themselves.

A directory the lock created is removed again on release when nothing else
was written in it, so a command refused after taking the lock leaves no trace.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import functools
import inspect
import json
import os
import socket
import sys
import uuid
from pathlib import Path

__all__ = ["LOCK_NAME", "Locked", "lock_dir", "locking", "holder", "mark_during_work", "during_work"]

LOCK_NAME = ".welavae.lock"

# Directories this process holds: resolved path → nesting depth (re-entrance).
_held: dict[str, int] = {}


class Locked(ValueError):
    """The directory is locked by another live command; ``holder`` is its record (dict)."""

    def __init__(self, message: str, holder: dict):
        super().__init__(message)
        self.holder = holder

    def __reduce__(self):  # pickled with both arguments: a Ray task's refusal reaches the driver as itself
        return (type(self), (str(self), self.holder))


def _command() -> str:
    """This process's command line, as a person would recognise it (``python -m welavae.cli`` → ``welavae``)."""
    argv = [os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python", *sys.argv[1:]]
    if argv[0] == "cli.py":
        argv[0] = "welavae"
    return " ".join(argv)[:300]


def _record(command: str | None, owner: str | None = None) -> dict:
    rec = {"pid": os.getpid(), "host": socket.gethostname(), "command": command or _command(),
           "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
           "token": uuid.uuid4().hex}
    return rec if owner is None else dict(rec, owner=owner)


def holder(path) -> dict | None:
    """The record in ``path/.welavae.lock`` (``pid``, ``host``, ``command``, ``started``), {} if unreadable, None
    if unlocked."""
    try:
        data = (Path(path) / LOCK_NAME).read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        rec = json.loads(data)
    except ValueError:  # not JSON, or not text at all (UnicodeDecodeError): unreadable, named by the refusal
        return {}
    return rec if isinstance(rec, dict) else {}


def _alive(rec: dict) -> bool:
    """False only when the holder was on this host and its process is gone."""
    if rec.get("host") != socket.gethostname() or not isinstance(rec.get("pid"), int):
        return True
    try:
        os.kill(rec["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user: alive
        return True
    return True


def _create(lock: Path, rec: dict) -> bool:
    """Create ``lock`` holding ``rec`` atomically; False if it exists."""
    data = json.dumps(rec).encode()
    tmp = lock.with_name(f"{LOCK_NAME}.{rec['token']}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, lock)
            return True
        except FileExistsError:
            return False
        except OSError as e:  # no hard links here (some FUSE / SMB mounts): exclusive create instead
            if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.EXDEV):
                raise
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _take_over(lock: Path, stale: dict) -> None:
    """Remove a stale lock, unless another command replaced it meanwhile (then it is put back)."""
    aside = lock.with_name(f"{LOCK_NAME}.stale.{uuid.uuid4().hex}")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return  # another command took it over first
    try:
        moved = json.loads(aside.read_text())
    except (OSError, ValueError):
        moved = {}
    if moved.get("token") != stale.get("token"):  # a fresh lock, not the stale one: restore it
        with contextlib.suppress(FileExistsError):
            os.link(aside, lock)
    aside.unlink(missing_ok=True)


def _refusal(path: Path, rec: dict) -> Locked:
    lock = path / LOCK_NAME
    if not rec:
        return Locked(f"{path} is locked by another welavae command (its lock file {lock} is unreadable); "
                      f"if no command is running there, delete {lock}", rec)
    return Locked(f"{path} is in use by PID {rec.get('pid')} on {rec.get('host')} "
                  f"({rec.get('command')!r}, since {rec.get('started')}); wait for it to finish, "
                  f"or delete {lock} if that process is gone", rec)


@contextlib.contextmanager
def lock_dir(path, *, command: str | None = None, create: bool = True, owner: str | None = None):
    """Hold the exclusive lock of directory ``path`` (created if missing) for the block.

    Raises :class:`Locked` when another live command holds it, ``ValueError``
    when ``path`` is an existing file.  Yields the lock file's path.  With
    ``create=False`` a missing directory is neither created nor locked (the
    reader that follows says what is missing); yields None.

    ``owner``: the piece of work the lock is held for, when a scheduler may run
    it again elsewhere (a Ray task's retries: :mod:`welavae.experiments.executors`).
    A lock recorded with the same owner was left by an earlier attempt that the
    scheduler gave up on (Ray retries a task only once its worker or node is
    dead), so it is taken over even where its holder cannot be seen to be dead:
    on another host, or a process that has not yet noticed its node is gone.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is an existing file, not a directory; choose another output path")
    if not create and not path.exists():
        yield None
        return
    key = str(path.resolve())
    if key in _held:
        _held[key] += 1
        try:
            yield path / LOCK_NAME
        finally:
            _held[key] -= 1
        return
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    lock = path / LOCK_NAME
    rec = _record(command, owner)
    try:
        for _ in range(5):  # a take-over race with another command: look again
            if _create(lock, rec):
                break
            old = holder(path)
            if old is None:
                continue  # released in between
            mine = owner is not None and old.get("owner") == owner  # an earlier attempt of this same work
            if not mine and (not old or _alive(old)):  # unreadable, or its holder may still run: refuse
                raise _refusal(path, old)
            _take_over(lock, old)
        else:
            raise _refusal(path, holder(path) or {})
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                path.rmdir()
        raise
    _held[key] = 1
    try:
        yield lock
    except BaseException as e:
        mark_during_work(e)
        raise
    finally:
        del _held[key]
        if (holder(path) or {}).get("token") == rec["token"]:
            lock.unlink(missing_ok=True)
        if created:
            with contextlib.suppress(OSError):
                path.rmdir()  # only if empty: a refusal after locking leaves no folder


def locking(param: str, *, create: bool = True):
    """Decorator: the call holds the lock of the directory its argument ``param`` names (default included)."""

    def wrap(fn):
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def locked(*args, **kwargs):
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            with lock_dir(bound.arguments[param], create=create):
                return fn(*args, **kwargs)

        return locked

    return wrap


def mark_during_work(e: BaseException) -> None:
    """Mark an error of the machine raised while a lock was held: the command had begun writing (exit 1, not 2).

    Only errors of the operating system (with an errno: a full disk, an I/O
    error) and of memory (``MemoryError``, torch's allocator's ``RuntimeError``);
    a refusal (a ``ValueError``, or ``FileNotFoundError(message)``) stays a refusal.
    """
    if (isinstance(e, OSError) and e.errno is not None) or isinstance(e, (MemoryError, RuntimeError)):
        with contextlib.suppress(AttributeError):
            e.welavae_during_work = True


def during_work(e: BaseException) -> bool:
    """Whether :func:`mark_during_work` marked ``e``."""
    return bool(getattr(e, "welavae_during_work", False))
