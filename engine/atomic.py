"""Crash-safe file writes: a reader sees the old file or the new one, never half of either.

Ground floor (stdlib only): config snapshots, run bookkeeping, journal, ledgers and caches write
through it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace `path` with `data` as JSON: temp file, fsync, rename, fsync of the directory."""
    write_text_atomic(path, json.dumps(data, indent=2, default=str))


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` durably. The temp file's name is unique (mkstemp), so writers
    of one path in other threads or processes (the baseline cache is shared by every run on
    the machine) never write into or rename away each other's temp file: the last rename wins."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would make shared cache entries unreadable to other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in `path` durable."""
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
