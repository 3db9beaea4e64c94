"""Machine-wide advisory locks: one file per resource in a directory every user can write.

Why flock: the kernel drops the lock when its holder dies, however it dies, so a lease never
outlives its process and nothing has to clean up stale pid files. Two opens of one file are two
open file descriptions, so two holders in the same process exclude each other too. Used for
run liveness (reaper), GPU leases (gpu) and uid leases (uids).
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


def open_lock_file(path: Path) -> int:
    """Open (creating with mode 0666) a lock file that any user may lock."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        os.fchmod(fd, 0o666)
    except PermissionError:  # someone else's file, already 0666
        pass
    return fd


def try_lock(path: Path) -> int | None:
    """An exclusive flock on `path`, as the fd that holds it (close it to release); None if held elsewhere."""
    fd = open_lock_file(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
