"""Run a function inside a rootless engine's user and mount namespaces, as that namespace's root.

A rootless engine lives in a user namespace its user owns, so the user may enter it (setns)
and holds every capability there, over that namespace's mounts and uids only: enough to mount a
tmpfs for /out where the engine will bind it, and to read back files a candidate's uid made,
which the user's own uid outside may not. setns into a user namespace needs a single-threaded
caller, so the function runs in a forked child (only the forking thread survives a fork); its
result comes back pickled through a pipe, its exception as a SandboxError.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import traceback
from collections.abc import Callable
from typing import TypeVar

from engine.sandbox.errors import SandboxError

T = TypeVar("T")

_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNS = 0x00020000
_libc = ctypes.CDLL(None, use_errno=True)


def call_in(pid: int, fn: Callable[..., T], *args: object) -> T:
    """fn(*args) in the user+mount namespaces of `pid`; SandboxError if it cannot enter or fn raises."""
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        os.close(read_fd)
        _child(pid, fn, args, write_fd)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    os.waitpid(child, 0)
    try:
        ok, value = pickle.loads(data)
    except Exception as exc:
        raise SandboxError(f"the helper in the engine's namespace died without an answer ({exc})") from exc
    if not ok:
        raise SandboxError(value)
    return value


def _child(pid: int, fn: Callable[..., object], args: tuple, write_fd: int) -> None:
    try:
        for ns, flag in (("user", _CLONE_NEWUSER), ("mnt", _CLONE_NEWNS)):
            fd = os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
            if _libc.setns(fd, flag) != 0:
                raise OSError(ctypes.get_errno(), f"setns({ns}) into pid {pid}: {os.strerror(ctypes.get_errno())}")
            os.close(fd)
        answer = (True, fn(*args))
    except BaseException as exc:  # everything goes back to the parent
        answer = (False, f"{type(exc).__name__}: {exc}" + ("" if isinstance(exc, OSError) else
                                                            f"\n{traceback.format_exc(limit=3)}"))
    try:
        payload = pickle.dumps(answer)
    except Exception as exc:
        payload = pickle.dumps((False, f"unpicklable answer: {exc}"))
    with os.fdopen(write_fd, "wb") as pipe:
        pipe.write(payload)
    os._exit(0)
