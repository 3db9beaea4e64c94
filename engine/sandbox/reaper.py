"""Liveness of runs and removal of what dead processes left behind.

Every container and candidate image carries `evobox.run` and its owner process's identity
(owner.py: host, boot, pid namespace, pid, start time). Liveness is decided from those labels
against the live process table, which every process on the machine shares, so a run with another
EVOBOX_LOCK_DIR or a private /tmp still sees that a neighbour is alive. What a dead owner left is
removed at start (a resumed run first removes its own killed predecessor's containers), at exit
and by `evobox sandbox gc`; what another host or pid namespace owns is never judged here.

A run also holds an exclusive flock on <lock dir>/run-<id>.lock while it lives (the kernel drops
it when the process dies): it keeps two processes from running one run id, and it decides the
liveness of containers made before owner labels existed.
"""

from __future__ import annotations

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
from engine.flock import is_held, lock_nb, open_lock_file, shared_dir
from engine.sandbox.naming import RUN_LABEL
from engine.sandbox.owner import PID_LABEL, START_LABEL, Liveness, Owner

__all__ = ["RUN_LABEL", "Reaped", "RunLock", "check_run_id", "lock_dir", "reap", "remove_container", "run_alive"]

log = structlog.get_logger()

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
        while not lock_nb(self._fd):
            if time.monotonic() > deadline:
                os.close(self._fd)
                self._fd = None
                raise SandboxError(f"run {run_id} is already active in another process")
            time.sleep(0.02)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def run_alive(run_id: str, directory: Path | None = None) -> bool:
    """True while some process holds the run's lock (this process included)."""
    return is_held(lock_dir(directory) / f"run-{run_id}.lock")


@dataclass
class Reaped:
    containers: int = 0
    images: int = 0


def reap(client: docker.DockerClient, directory: Path | None = None, *, run_id: str | None = None,
         owner: Owner | None = None) -> Reaped:
    """Remove containers and images whose owner process is dead; with `run_id` and `owner`, those
    that `owner` made for that run, alive or not (a closing run removes its own)."""
    if (run_id is None) != (owner is None):
        raise ValueError("reap: give both run_id and owner, or neither")
    verdicts: dict[tuple[str, Owner | None], bool] = {}

    def doomed(labels: dict[str, str] | None) -> bool:
        labels = labels or {}
        run = labels.get(RUN_LABEL)
        if run is None:
            return False
        made_by = Owner.from_labels(labels)
        if owner is not None:
            return run == run_id and made_by == owner
        if (run, made_by) not in verdicts:
            verdicts[(run, made_by)] = _dead(run, made_by, directory)
        return verdicts[(run, made_by)]

    done = Reaped()
    label_filter = {"label": [f"{RUN_LABEL}={run_id}", f"{PID_LABEL}={owner.pid}", f"{START_LABEL}={owner.start}"]
                    if owner is not None else [RUN_LABEL]}
    for container in client.containers.list(all=True, filters=label_filter, ignore_removed=True):
        if doomed(container.labels):
            done.containers += remove_container(container)
    # The low-level list: the high-level one inspects each image, and fails when another reaper
    # removes one in between.
    for image in client.api.images(filters=label_filter):
        if doomed(image.get("Labels")):
            done.images += _remove_image(client, image)
    if done.containers or done.images:
        log.info("sandbox.reaped", containers=done.containers, images=done.images, run=run_id)
    return done


def _dead(run: str, made_by: Owner | None, directory: Path | None) -> bool:
    """Owner labels decide; only what predates them falls back on the run's lock."""
    if made_by is not None:
        return made_by.liveness() is Liveness.DEAD
    return _RUN_ID_RE.match(run) is not None and not run_alive(run, directory)


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


def _remove_image(client: docker.DockerClient, image: dict) -> int:
    """`image` as the engine lists it (Id, RepoTags); 1 if it is gone."""
    tags = [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"]
    try:
        for tag in tags or [image["Id"]]:
            client.images.remove(tag, noprune=False)
        return 1
    except docker.errors.NotFound:
        return 1
    except docker.errors.APIError as exc:  # in use by a live container, or a parent of another image
        log.info("sandbox.image_kept", image=image["Id"][:19], error=str(exc))
        return 0
