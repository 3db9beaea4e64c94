"""Reading /out back: a walk of the run's capped filesystem, relative to open directory fds only.

A path-string walker was beaten by directories nested past PATH_MAX (it got ENAMETOOLONG and
skipped the subtree: bytes reached the host unseen) and by blocks reserved with
`fallocate(FALLOC_FL_KEEP_SIZE)` (`st_size` 0). So, once the container is dead, the engine
walks its /out filesystem (`outfs`) with `openat(O_NOFOLLOW | O_DIRECTORY)`, `scandir(fd)`
and `fstatat(AT_SYMLINK_NOFOLLOW)`, never a path string, and:

- counts every entry against `out_max_files` and both allocated blocks (`st_blocks * 512`)
  and sizes against `out_max_bytes`; refuses trees deeper than `MAX_DEPTH` or paths longer
  than `MAX_PATH_BYTES` (results that deep are never legitimate and would be unreadable by
  path on the host);
- treats ANY error on the candidate's side as an overflow: the run fails closed, nothing is
  skipped;
- copies the regular files it accepts into the caller's `out_dir` as new plain files the
  engine writes itself (0644, dirs 0755): symlinks, FIFOs, sockets and devices never reach the
  host. An error on the engine's side (host disk full) is the environment's: `SandboxError`.

`out_dir` is emptied first, so it holds exactly what this run left; after an overflow it is
left empty (the results are void).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from engine.sandbox.errors import SandboxError
from engine.sandbox.limits import SandboxLimits, human_size

MAX_DEPTH = 32
MAX_PATH_BYTES = 1024
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_HOST_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}  # the host disk, not the candidate
_CHUNK = 1 << 24

T = TypeVar("T")


@dataclass
class OutCopy:
    """What came back: regular files by relative path and size, or why nothing did."""

    files: dict[str, int] = field(default_factory=dict)
    overflow: str | None = None


class _Overflow(Exception):
    """The candidate's /out broke a cap or could not be read: the run fails closed."""


def copy_out(src: Path, dest: Path, limits: SandboxLimits) -> OutCopy:
    """Walk `src` (the dead container's /out), check it against `limits`, copy it into `dest`."""
    _dst(reset_dir, dest)
    walk = _Walk(limits)
    try:
        src_fd = _src(os.open, src, _DIR_FLAGS)
        try:
            dst_fd = _dst(os.open, dest, _DIR_FLAGS)
            try:
                walk.directory(src_fd, dst_fd, ())
            finally:
                os.close(dst_fd)
        finally:
            os.close(src_fd)
    except _Overflow as exc:
        _dst(reset_dir, dest)  # the results are void; free the host disk now
        return OutCopy(overflow=str(exc))
    except SandboxError:
        _dst(reset_dir, dest)
        raise
    return OutCopy(files=walk.files)


def reset_dir(path: Path) -> None:
    """Create `path` if missing and remove everything in it."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755)
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)


class _Walk:
    def __init__(self, limits: SandboxLimits) -> None:
        self.limits = limits
        self.files: dict[str, int] = {}
        self.entries = self.blocks = self.size = 0

    def directory(self, src_fd: int, dst_fd: int, rel: tuple[str, ...]) -> None:
        if len(rel) > MAX_DEPTH:
            raise _Overflow(f"nested directories in /out deeper than {MAX_DEPTH}")
        for name in _src(_names, src_fd):
            path = (*rel, name)
            st = _src(os.stat, name, dir_fd=src_fd, follow_symlinks=False)
            self._count(st, path)
            if stat.S_ISDIR(st.st_mode):
                self._subdir(src_fd, dst_fd, path, st)
            elif stat.S_ISREG(st.st_mode):
                self._file(src_fd, dst_fd, path, st)

    def _count(self, st: os.stat_result, path: tuple[str, ...]) -> None:
        self.entries += 1
        if self.entries > self.limits.out_max_files:
            raise _Overflow(f"wrote more than {self.limits.out_max_files} files to /out")
        self.blocks += st.st_blocks * 512
        self.size += st.st_size if stat.S_ISREG(st.st_mode) else 0
        if max(self.blocks, self.size) > self.limits.out_max_bytes:
            raise _Overflow(f"wrote more than {human_size(self.limits.out_max_bytes)} to /out")
        if len(os.fsencode("/".join(path))) > MAX_PATH_BYTES:
            raise _Overflow(f"a path in /out is longer than {MAX_PATH_BYTES} bytes")

    def _subdir(self, src_fd: int, dst_fd: int, path: tuple[str, ...], st: os.stat_result) -> None:
        child_src = _src(os.open, path[-1], _DIR_FLAGS, dir_fd=src_fd)
        try:
            _same(child_src, st)
            _dst(os.mkdir, path[-1], 0o755, dir_fd=dst_fd)
            child_dst = _dst(os.open, path[-1], _DIR_FLAGS, dir_fd=dst_fd)
            try:
                self.directory(child_src, child_dst, path)
            finally:
                os.close(child_dst)
        finally:
            os.close(child_src)

    def _file(self, src_fd: int, dst_fd: int, path: tuple[str, ...], st: os.stat_result) -> None:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        source = _src(os.open, path[-1], flags, dir_fd=src_fd)
        try:
            _same(source, st)
            target = _dst(os.open, path[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                          0o644, dir_fd=dst_fd)
            try:
                _copy(source, target, st.st_size)
            finally:
                os.close(target)
        finally:
            os.close(source)
        self.files["/".join(path)] = st.st_size


def _names(fd: int) -> list[str]:
    with os.scandir(fd) as entries:
        return [entry.name for entry in entries]


def _same(fd: int, st: os.stat_result) -> None:
    """The opened object is the one counted (nothing swapped it in between)."""
    now = os.fstat(fd)
    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or stat.S_IFMT(now.st_mode) != stat.S_IFMT(st.st_mode):
        raise _Overflow("/out changed while the engine read it back")


def _copy(source: int, target: int, size: int) -> None:
    """Copy at most `size` bytes (the size that was counted) in the kernel."""
    left = size
    while left > 0:
        try:
            sent = os.sendfile(target, source, None, min(left, _CHUNK))
        except OSError as exc:
            if exc.errno in _HOST_ERRNOS:
                raise SandboxError(f"copying /out to the host failed: {exc.strerror}") from exc
            raise _Overflow(f"/out could not be read back ({exc.strerror}); the run failed closed") from exc
        if sent == 0:
            return
        left -= sent


def _src(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """A call on the candidate's side: any error fails the run closed."""
    try:
        return fn(*args, **kwargs)
    except OSError as exc:
        raise _Overflow(f"/out could not be read back ({exc.strerror}); the run failed closed") from exc


def _dst(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """A call on the engine's side (the host's out_dir): an error is the environment's."""
    try:
        return fn(*args, **kwargs)
    except OSError as exc:
        raise SandboxError(f"copying /out to the host failed: {exc}") from exc
