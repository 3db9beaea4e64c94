"""The machine's task secret: the key of every ordering a candidate must not be able to replay.

A candidate's container sees the public task (a question, its options, a task id) and the
engine's code is public, so anything derived from public values alone (a seed in the config, a
task id) can be recomputed inside the container: a GPQA option order seeded by the task id
gives the gold letter away. Orders and names that hide a gold answer or a reward (GPQA option
order, the DiscoPOP proxy's token names) are therefore keyed by this secret instead.

It is 32 random bytes in the evobox cache dir, created once (0600, atomically, so concurrent
runs agree) and never mounted into any container. Being per machine, it keeps orders stable
across `evobox resume` and keeps the cached baseline scores (same cache dir) comparable; a
one-way fingerprint goes into evaluation keys so scores made under another secret are not reused.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

SECRET_FILE = "task-secret"
SECRET_BYTES = 32


class TaskSecretError(Exception):
    """The secret file exists but is unusable (wrong size, unreadable): fix or delete it."""


@dataclass(frozen=True)
class TaskSecret:
    key: bytes = field(repr=False)

    def derive(self, purpose: str) -> bytes:
        """A key for one use (`purpose` names it), so no two uses share key material."""
        return hmac.new(self.key, purpose.encode(), hashlib.sha256).digest()

    @property
    def fingerprint(self) -> str:
        """Names the secret in evaluation keys and artifact keys without revealing it."""
        return self.derive("fingerprint").hex()[:16]

    @classmethod
    def load(cls, cache_dir: Path) -> TaskSecret:
        """The machine's secret, created on first use."""
        path = cache_dir / SECRET_FILE
        if not path.exists():
            _create(path)
        try:
            key = path.read_bytes()
        except OSError as exc:
            raise TaskSecretError(f"cannot read the task secret {path}: {exc}") from None
        if len(key) != SECRET_BYTES:
            raise TaskSecretError(f"the task secret {path} holds {len(key)} bytes, expected {SECRET_BYTES}; delete it")
        return cls(key)


def _create(path: Path) -> None:
    """Write a fresh secret to a private temp file, then link it into place: the first writer
    wins and every other process reads the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_bytes(SECRET_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temp, path)
    except FileExistsError:
        pass
    finally:
        temp.unlink()
