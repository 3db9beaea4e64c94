"""GPU leases on a machine shared by several runs and users.

One lock file per device index in a lock dir every user can reach. On a shared machine the
administrator makes it (`make shared-host`: /var/lib/evobox/gpu-locks, root's, mode 0755, lock
files root's, mode 0666): every user can flock a device, no user can delete or replace a lock
file, so none can steal or free a lease another holds. Without it, /tmp/evobox-gpu-locks (mode
1777, files 0666) serves one user, or users who trust each other: in a sticky dir the user who
made a lock file can unlink it and lock a fresh one while another holds the old. A lease holds an exclusive flock on each of its devices; the kernel drops the flocks when the
process dies, so a crashed run's GPUs come back without anyone cleaning up. The container
then gets exactly the leased indices, as a device request and as NVIDIA_VISIBLE_DEVICES; a
container without a lease gets NVIDIA_VISIBLE_DEVICES=void, so a host whose default runtime is
nvidia (which reads that variable) shows it no GPU at all.

A busy device is waited for (bounded, with backoff and a progress line), because another run
will release it; a device that does not exist is an immediate error, because none will.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import docker.types
import structlog

from engine.sandbox.errors import GpuUnavailableError
from engine.flock import shared_dir, try_lock

log = structlog.get_logger()

SHARED_LOCK_DIR = Path("/var/lib/evobox/gpu-locks")  # made by `make shared-host`
DEFAULT_LOCK_DIR = Path("/tmp/evobox-gpu-locks")
NO_GPU = "void"  # NVIDIA_VISIBLE_DEVICES value that exposes neither GPUs nor driver libraries
_FIRST_DELAY_S = 0.2
_MAX_DELAY_S = 10.0
_REPORT_EVERY_S = 60.0


def detect_gpus() -> list[int]:
    """Indices of the NVIDIA GPUs of this machine (nvidia-smi order), [] when there are none."""
    if shutil.which("nvidia-smi"):
        proc = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30)
        if proc.returncode == 0:
            return sorted(int(line) for line in proc.stdout.split() if line.strip().isdigit())
    proc_dir = Path("/proc/driver/nvidia/gpus")
    return list(range(len(list(proc_dir.iterdir())))) if proc_dir.is_dir() else []


def default_lock_dir() -> Path:
    """$EVOBOX_GPU_LOCK_DIR, else the administrator's shared dir when it exists, else /tmp's."""
    env = os.environ.get("EVOBOX_GPU_LOCK_DIR")
    if env:
        return Path(env)
    return SHARED_LOCK_DIR if SHARED_LOCK_DIR.is_dir() else DEFAULT_LOCK_DIR


class GpuLease:
    """Devices held by one run until `release()` (or the end of a `with` block)."""

    def __init__(self, indices: tuple[int, ...], fds: list[int]) -> None:
        self.indices = indices
        self._fds = fds

    def device_request(self) -> docker.types.DeviceRequest:
        return docker.types.DeviceRequest(driver="nvidia", device_ids=[str(i) for i in self.indices],
                                          capabilities=[["gpu"]])

    @property
    def visible_devices(self) -> str:
        """The NVIDIA_VISIBLE_DEVICES value naming exactly the leased indices."""
        return ",".join(str(i) for i in self.indices)

    def release(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []

    def __enter__(self) -> GpuLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class GpuLeaser:
    """Hands out device indices that no other lease on this machine holds."""

    def __init__(self, lock_dir: Path | None = None, devices: Sequence[int] | None = None) -> None:
        self.lock_dir = lock_dir or default_lock_dir()
        self._devices = list(devices) if devices is not None else None

    @property
    def devices(self) -> list[int]:
        if self._devices is None:
            self._devices = detect_gpus()
        return self._devices

    def lease(self, n: int, *, wait_s: float = 0.0) -> GpuLease:
        """Lease `n` free devices, waiting up to `wait_s` (backing off) while other leases hold them."""
        if n <= 0:
            raise ValueError(f"a lease needs at least one GPU, got {n}")
        if n > len(self.devices):
            found = f"{len(self.devices)} GPU(s)" if self.devices else "no GPU (no NVIDIA driver found)"
            raise GpuUnavailableError(f"asked for {n} GPU(s) but this machine has {found}; set gpus = 0 to run on CPU")
        shared_dir(self.lock_dir)
        started = time.monotonic()
        delay, next_report = _FIRST_DELAY_S, started
        while (lease := self._try(n)) is None:
            now = time.monotonic()
            if now - started >= wait_s:
                raise GpuUnavailableError(
                    f"asked for {n} GPU(s) but only {self.free_count()} of {len(self.devices)} are free "
                    f"after waiting {wait_s:g}s (leased by other runs; locks in {self.lock_dir})")
            if now >= next_report:
                log.info("sandbox.gpu_wait", wanted=n, free=self.free_count(), devices=len(self.devices),
                         waited_s=round(now - started), max_wait_s=wait_s)
                next_report = now + _REPORT_EVERY_S
            time.sleep(min(delay, started + wait_s - now))
            delay = min(delay * 2, _MAX_DELAY_S)
        return lease

    def free_count(self) -> int:
        lease = self._try(len(self.devices), partial=True)
        count = len(lease.indices) if lease else 0
        if lease:
            lease.release()
        return count

    def _try(self, n: int, *, partial: bool = False) -> GpuLease | None:
        held: list[tuple[int, int]] = []
        for index in self.devices:
            if len(held) == n:
                break
            try:
                fd = try_lock(self.lock_dir / f"gpu{index}.lock")
            except PermissionError as exc:  # a shared dir without this device's lock file
                for _, held_fd in held:
                    os.close(held_fd)
                raise GpuUnavailableError(f"cannot take the lock of GPU {index} in {self.lock_dir} ({exc.strerror}): "
                                          "the administrator runs make shared-host") from exc
            if fd is not None:
                held.append((index, fd))
        if len(held) < n and not partial:
            for _, fd in held:
                os.close(fd)
            return None
        return GpuLease(tuple(i for i, _ in held), [fd for _, fd in held]) if held else None
