"""Directory trees as bytes for Ray's object store: /in before a run, /out after it, and the
read-only inputs (reference models, data) a node caches by content hash.

Only regular files and directories travel: a symlink, FIFO or device in a tree is an error on
the sending side (the trees are the engine's own; /out was already copied by `outcopy`, which
keeps only regular files). The receiving side unpacks with tarfile's `data` filter (no absolute
paths, no `..`, no links out) into a fresh directory. Both sides cap the size, so a tree over
the cap never reaches the object store, and a forged one never reaches the disk.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import tarfile
from pathlib import Path

from engine.sandbox.errors import SandboxError
from engine.sandbox.limits import human_size


class WireError(SandboxError):
    """A tree could not be shipped (too large, or holding something other than files and directories)."""


def _entries(root: Path) -> list[tuple[str, Path, os.stat_result]]:
    """(relative path, path, lstat) of every entry under root, sorted, directories first in each level."""
    found: list[tuple[str, Path, os.stat_result]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in [*dirnames, *sorted(filenames)]:
            path = Path(dirpath) / name
            info = path.lstat()
            if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                raise WireError(f"{path} is neither a regular file nor a directory; only those are shipped")
            found.append((str(path.relative_to(root)), path, info))
    return found


def pack(root: Path, max_bytes: int) -> bytes:
    """The tree under `root` as an uncompressed tar (fixed owner and times: the same tree is the
    same bytes); WireError if its files hold more than `max_bytes`."""
    entries = _entries(root)
    total = sum(info.st_size for _, _, info in entries if stat.S_ISREG(info.st_mode))
    if total > max_bytes:
        raise WireError(f"{root} holds {human_size(total)}, over the {human_size(max_bytes)} that may be shipped")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, path, info in entries:
            member = tarfile.TarInfo(rel)
            member.mtime, member.uid, member.gid = 0, 0, 0
            if stat.S_ISDIR(info.st_mode):
                member.type, member.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(member)
            else:
                member.size, member.mode = info.st_size, 0o644 | (info.st_mode & 0o111)
                with path.open("rb") as handle:
                    tar.addfile(member, handle)
    return buffer.getvalue()


def unpack(data: bytes, dest: Path, max_bytes: int) -> None:
    """Extract `data` (from `pack`) into `dest`, emptied first; WireError past `max_bytes` or on
    any member that is not a plain file or directory inside `dest`."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    dest.chmod(0o755)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            members = tar.getmembers()
            if any(not (m.isfile() or m.isdir()) for m in members):
                raise WireError("a shipped tree holds a member that is not a file or directory")
            if sum(m.size for m in members) > max_bytes:
                raise WireError(f"a shipped tree is over {human_size(max_bytes)}")
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise WireError(f"a shipped tree could not be unpacked: {exc}") from exc


def tree_digest(root: Path) -> str:
    """sha256 over the tree's relative paths, kinds and file contents: its identity on every node."""
    digest = hashlib.sha256()
    for rel, path, info in _entries(root):
        digest.update(rel.encode() + b"\0" + (b"d" if stat.S_ISDIR(info.st_mode) else b"f") + b"\0")
        if stat.S_ISREG(info.st_mode):
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
            digest.update(b"\0")
    return digest.hexdigest()


def tree_signature(root: Path) -> tuple[tuple[str, int, int], ...]:
    """Relative path, size and mtime of every entry: cheap to read, changes when the tree does
    (the head hashes a tree again only when this changes)."""
    return tuple((rel, info.st_size, info.st_mtime_ns) for rel, _, info in _entries(root))
