"""Advisory file locks (flock): the run directory's lock and the machine-wide leases.

Why flock: the kernel drops the lock when its holder dies, however it dies, so a lease never
outlives its process and nothing has to clean up stale pid files. Two opens of one file are two
open file descriptions, so two holders in the same process exclude each other too. Used for
the run directory (engine.search.rundir), run liveness (sandbox reaper), GPU leases (gpu) and
uid leases (uids); machine-wide locks live in a directory every user can write.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


def shared_dir(path: Path) -> None:
    """mkdir with mode 1777 so every user of the machine can create locks in it."""
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        try:
            path.chmod(0o1777)
        except PermissionError:  # created concurrently by another user: theirs is fine
            pass


def open_lock_file(path: Path, *, any_user: bool = True) -> int:
    """Open (creating) a lock file: mode 0666 so that any user may lock it, else 0644 (umask applies)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666 if any_user else 0o644)
    if any_user:
        try:
            os.fchmod(fd, 0o666)
        except PermissionError:  # someone else's file, already 0666
            pass
    return fd


def lock_nb(fd: int, *, shared: bool = False) -> bool:
    """Take an exclusive (or shared) flock on `fd` without waiting; False if another holder has it."""
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def try_lock(path: Path, *, any_user: bool = True) -> int | None:
    """An exclusive flock on `path`, as the fd that holds it (close it to release); None if held elsewhere."""
    fd = open_lock_file(path, any_user=any_user)
    if lock_nb(fd):
        return fd
    os.close(fd)
    return None


def is_held(path: Path) -> bool:
    """True while some process (this one included) holds an exclusive flock on `path`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        return not lock_nb(fd, shared=True)
    finally:
        os.close(fd)
