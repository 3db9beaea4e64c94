"""Liveness of runs and removal of what dead runs left behind.

A run holds an exclusive flock on <lock dir>/run-<id>.lock for as long as it lives; the kernel
drops it when the process dies, however it dies. So "is run X alive?" is "is its lock held?",
with no pid files to go stale. Containers and candidate images carry the label `evobox.run`;
those of a run whose lock is free are leftovers and are removed at start, at exit and by
`evobox sandbox gc`.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import requests.exceptions
import structlog

from engine.sandbox.errors import SandboxError
from engine.sandbox.locks import open_lock_file, shared_dir

log = structlog.get_logger()

RUN_LABEL = "evobox.run"
_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def lock_dir(path: Path | None = None) -> Path:
    """The shared lock dir ($EVOBOX_LOCK_DIR or /tmp/evobox-locks), created world-writable + sticky."""
    path = path or Path(os.environ.get("EVOBOX_LOCK_DIR", "/tmp/evobox-locks"))
    shared_dir(path)
    return path


def check_run_id(run_id: str) -> str:
    if not _RUN_ID_RE.match(run_id):
        raise ValueError(f"bad run id {run_id!r}: letters, digits, . _ - (max 128)")
    return run_id


class RunLock:
    """The exclusive lock that says a run is alive. Released on close or process death."""

    def __init__(self, run_id: str, directory: Path | None = None, *, wait_s: float = 0.5) -> None:
        self.run_id = check_run_id(run_id)
        self.path = lock_dir(directory) / f"run-{run_id}.lock"
        self._fd: int | None = open_lock_file(self.path)
        deadline = time.monotonic() + wait_s  # a reaper's probe holds the lock for microseconds
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self._fd)
                    self._fd = None
                    raise SandboxError(f"run {run_id} is already active in another process") from None
                time.sleep(0.02)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def run_alive(run_id: str, directory: Path | None = None) -> bool:
    """True while some process holds the run's lock (this process included)."""
    path = lock_dir(directory) / f"run-{run_id}.lock"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@dataclass
class Reaped:
    containers: int = 0
    images: int = 0


def reap(client: docker.DockerClient, directory: Path | None = None, *, run_id: str | None = None) -> Reaped:
    """Remove containers and images of dead runs (or, with `run_id`, of that run, alive or not)."""
    alive: dict[str, bool] = {}

    def doomed(labels: dict[str, str] | None) -> bool:
        owner = (labels or {}).get(RUN_LABEL)
        if owner is None:
            return False
        if run_id is not None:
            return owner == run_id
        if owner not in alive:
            alive[owner] = _RUN_ID_RE.match(owner) is not None and run_alive(owner, directory)
        return not alive[owner]

    done = Reaped()
    label_filter = {"label": f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL}
    for container in client.containers.list(all=True, filters=label_filter, ignore_removed=True):
        if doomed(container.labels):
            done.containers += remove_container(container)
    for image in client.images.list(filters=label_filter):
        if doomed(image.labels):
            done.images += _remove_image(client, image)
    if done.containers or done.images:
        log.info("sandbox.reaped", containers=done.containers, images=done.images, run=run_id)
    return done


def remove_container(container: docker.models.containers.Container) -> int:
    """Kill then force-remove, each step bounded and retried; 1 if it is gone."""
    for attempt in range(3):
        try:
            container.remove(force=True, v=True)
            return 1
        except docker.errors.NotFound:
            return 1
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:  # a slow kill, a busy engine
            log.warning("sandbox.remove_retry", container=container.name, attempt=attempt, error=str(exc))
            time.sleep(0.5 * (attempt + 1))
    return 0


def _remove_image(client: docker.DockerClient, image: docker.models.images.Image) -> int:
    try:
        for tag in image.tags or [image.id]:
            client.images.remove(tag, noprune=False)
        return 1
    except docker.errors.NotFound:
        return 1
    except docker.errors.APIError as exc:  # in use by a live container, or a parent of another image
        log.info("sandbox.image_kept", image=image.short_id, error=str(exc))
        return 0
