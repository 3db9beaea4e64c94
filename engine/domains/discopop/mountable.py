"""Model and dataset directories that still read right once bind-mounted into a container.

A Hugging Face hub snapshot (`.../models--org--name/snapshots/<rev>/`) holds relative symlinks
into `../../blobs/`; mounted alone, every one of them dangles inside the container. Such a
directory is rebuilt once as a tree of hard links to the blobs (a copy across file systems),
under the run's hub cache, and that tree is what gets mounted. Directories without symlinks
pointing out of them are mounted as they are.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import structlog

log = structlog.get_logger()

MARKER = ".evobox-mountable"


def mountable(path: Path, cache: Path) -> Path:
    """`path` itself if everything in it resolves inside it; else a self-contained copy made of
    hard links, rebuilt only when the files it stands for changed."""
    if not path.is_dir() or not _escaping_links(path):
        return path
    manifest = _manifest(path)
    dest = cache / "mountable" / hashlib.sha256(str(path).encode()).hexdigest()[:16]
    if (dest / MARKER).is_file() and (dest / MARKER).read_text() == manifest:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".build-"))
    staging.chmod(0o755)  # mkdtemp's 0700 would shut out the container's unprivileged user
    try:
        for relative, target in _files(path):
            _link_or_copy(target, staging / relative)
        (staging / MARKER).write_text(manifest)
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("discopop.mountable_built", source=str(path), dest=str(dest))
    return dest


def _escaping_links(root: Path) -> bool:
    for directory, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            entry = Path(directory) / name
            if entry.is_symlink() and not entry.resolve().is_relative_to(root):
                return True
    return False


def _files(root: Path) -> list[tuple[Path, Path]]:
    """(path relative to root, the regular file it stands for), symlinks followed."""
    found = []
    for directory, _dirs, files in os.walk(root, followlinks=True):
        for name in files:
            entry = Path(directory) / name
            target = entry.resolve()
            if target.is_file():
                found.append((entry.relative_to(root), target))
    return sorted(found)


def _manifest(root: Path) -> str:
    return "\n".join(f"{rel}\t{target}\t{target.stat().st_size}\t{target.stat().st_mtime_ns}"
                     for rel, target in _files(root))


def _link_or_copy(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, dest)
    except OSError:  # another file system, or links not allowed there
        shutil.copy2(source, dest)
