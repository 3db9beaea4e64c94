"""A container's stdout and stderr, each kept as its own capped tail.

Why not the json-file log: both streams share one capped log there, so a flood of short
stdout lines evicts the stderr line that says why the candidate crashed, and dockerd writes
everything to the host disk first. Instead the engine attaches to the container before it
starts (so nothing is missed), containers run with the `none` log driver (dockerd stores
nothing), and a reader thread keeps the last `limit` bytes of each stream in memory: the
engine's memory stays bounded however much the candidate prints.
"""

from __future__ import annotations

import threading
from enum import Enum

import docker
import docker.errors
import docker.models.containers
import docker.utils.socket
import structlog

from engine.sandbox.errors import SandboxError

log = structlog.get_logger()


class Stream(Enum):
    STDOUT = "stdout"
    STDERR = "stderr"


class _Tail:
    """The last `limit` bytes written, in amortised O(1) per chunk."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._buf = bytearray()

    def add(self, chunk: bytes) -> None:
        self._buf += chunk[-self._limit:]
        if len(self._buf) > 2 * self._limit:
            del self._buf[:-self._limit]

    def text(self) -> str:
        return bytes(self._buf[-self._limit:]).decode("utf-8", errors="replace")


class StreamTails:
    """Attach to a created (not yet started) container and keep a capped tail of each stream."""

    def __init__(self, client: docker.DockerClient, container: docker.models.containers.Container,
                 limit: int) -> None:
        try:
            self._stream = client.api.attach(container.id, stdout=True, stderr=True, stream=True, demux=True)
        except docker.errors.APIError as exc:
            raise SandboxError(f"attaching to {container.name} failed: {exc}") from exc
        self._name = container.name
        self._tails = {Stream.STDOUT: _Tail(limit), Stream.STDERR: _Tail(limit)}
        self._thread = threading.Thread(target=self._pump, name="evobox-streams", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            for out, err in self._stream:
                if out:
                    self._tails[Stream.STDOUT].add(out)
                if err:
                    self._tails[Stream.STDERR].add(err)
        except (OSError, ValueError, docker.utils.socket.SocketError) as exc:  # closed under us
            log.debug("sandbox.streams_closed", container=self._name, error=str(exc))

    def tails(self, wait_s: float) -> dict[Stream, str]:
        """The tails once the streams end (the container exited), waiting at most `wait_s`."""
        self._thread.join(timeout=wait_s)
        if self._thread.is_alive():
            log.warning("sandbox.streams_unfinished", container=self._name)
        return {name: tail.text() for name, tail in self._tails.items()}

    def close(self) -> None:
        self._stream.close()
