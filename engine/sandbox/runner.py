"""One hardened container run: create, start, wait with a timeout, kill, collect, remove.

The hardening lives here in code (never a pass-through dict): no network, read-only root,
size-capped tmpfs, no capabilities, no-new-privileges, non-root uid, pids/memory/CPU/file-size
limits, capped logs, and no environment beyond the image's ENV and what the caller passes on
purpose. Results come back only through the /out bind mount, which a watcher keeps under its
caps while the container runs; stdout/stderr come back as capped tails of the json-file log.
The container is removed in `finally` (killing a client does not stop a container).
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import docker
import docker.errors
import docker.types
import requests.exceptions
import structlog

from engine.sandbox.client import connect
from engine.sandbox.errors import OutFileError, SandboxError
from engine.sandbox.gpu import GpuLease, GpuLeaser
from engine.sandbox.limits import SandboxLimits
from engine.sandbox.reaper import RUN_LABEL, RunLock, check_run_id, reap, remove_container

__all__ = ["Mount", "OutFileError", "RunResult", "Sandbox", "SandboxError", "read_out_file"]

log = structlog.get_logger()

_WATCH_INTERVAL_S = 0.05


@dataclass(frozen=True)
class Mount:
    """An extra bind mount (e.g. the LLM gateway's socket dir at /run/llm, read-only)."""

    source: Path
    target: str
    read_only: bool = True


@dataclass
class RunResult:
    """What one run produced. `out_files` lists regular files only (no symlinks, FIFOs)."""

    exit_code: int | None
    timed_out: bool
    oom_killed: bool
    duration_s: float
    stdout_tail: str
    stderr_tail: str
    out_files: dict[str, int]
    out_dir: Path | None
    out_overflow: str | None = None  # set when /out went over its caps and the run was killed
    limits: SandboxLimits = field(default_factory=SandboxLimits)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.oom_killed and self.out_overflow is None

    def failure_reason(self) -> str:
        """One line for the archive and the repair prompt; '' when the run was ok."""
        if self.timed_out:
            return f"timed out after {self.limits.timeout_s:g}s"
        if self.oom_killed:
            return f"out of memory ({_human(self.limits.memory_bytes)})"
        if self.out_overflow:
            return self.out_overflow
        if self.exit_code != 0:
            lines = [ln for ln in self.stderr_tail.splitlines() if ln.strip()]
            return f"exit {self.exit_code}: {lines[-1].strip()[:300] if lines else '(no stderr)'}"
        return ""


class Sandbox:
    """Runs containers for one run id; holds the run's liveness lock until `close()`."""

    def __init__(self, run_id: str, *, client: docker.DockerClient | None = None,
                 gpu_lock_dir: Path | None = None, lock_dir: Path | None = None) -> None:
        self.run_id = check_run_id(run_id)
        self._client = connect(client)
        self._lock_dir = lock_dir
        self._lock = RunLock(run_id, lock_dir)
        self._gpus = GpuLeaser(gpu_lock_dir)
        self._closed = False
        reap(self._client, lock_dir)  # leftovers of runs that died

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove this run's containers, release its lock, and reap every dead run (this one included)."""
        if self._closed:
            return
        self._closed = True
        try:
            reap(self._client, self._lock_dir, run_id=self.run_id)
        finally:
            self._lock.release()
        reap(self._client, self._lock_dir)

    def run(self, image: str, command: list[str], *, limits: SandboxLimits = SandboxLimits(),
            out_dir: Path | None = None, in_dir: Path | None = None, mounts: Sequence[Mount] = (),
            env: Mapping[str, str] = {}, labels: Mapping[str, str] = {}, name: str | None = None) -> RunResult:
        """Run `command` in `image` under `limits`; never pulls; always removes the container."""
        if self._closed:
            raise SandboxError(f"sandbox of run {self.run_id} is closed")
        if out_dir is not None:
            _prepare_out_dir(out_dir, limits.uid)
        lease = self._gpus.lease(limits.gpus) if limits.gpus else None
        try:
            spec = _container_spec(image, command, limits, out_dir, in_dir, mounts, env, lease,
                                   {**labels, RUN_LABEL: self.run_id},
                                   name or f"evobox-{self.run_id}-{secrets.token_hex(4)}")
            return self._run(spec, limits, out_dir)
        finally:
            if lease is not None:
                lease.release()

    def _run(self, spec: dict, limits: SandboxLimits, out_dir: Path | None) -> RunResult:
        container = None
        try:
            try:
                container = self._client.containers.create(**spec)
            except docker.errors.ImageNotFound as exc:
                raise SandboxError(f"image {spec['image']} is not present (images are built locally, never pulled)") from exc
            except docker.errors.APIError as exc:
                raise SandboxError(f"docker create failed: {exc}") from exc
            watcher = _OutWatcher(out_dir, limits, container) if out_dir is not None else None
            started = time.monotonic()
            try:
                container.start()
            except docker.errors.APIError as exc:
                raise SandboxError(f"docker start failed: {exc}") from exc
            if watcher:
                watcher.start()
            timed_out, exit_code = self._wait(container, limits.timeout_s)
            duration = time.monotonic() - started
            if watcher:
                watcher.stop()
            return self._collect(container, limits, out_dir, timed_out, exit_code, duration,
                                 watcher.overflow if watcher else None)
        finally:
            if container is not None and not remove_container(container):
                log.error("sandbox.container_left", container=container.name, run=self.run_id)

    def _wait(self, container: docker.models.containers.Container, timeout_s: float) -> tuple[bool, int | None]:
        """(timed_out, exit code). On timeout the container is killed, not just abandoned."""
        started = time.monotonic()
        try:
            status = container.wait(timeout=timeout_s)
            return False, int(status.get("StatusCode", -1))
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as exc:
            if time.monotonic() - started < timeout_s * 0.9:  # the engine went away, not the clock
                raise SandboxError(f"lost the Docker engine while waiting for {container.name}: {exc}") from exc
            _kill(container)
            return True, None

    def _collect(self, container: docker.models.containers.Container, limits: SandboxLimits,
                 out_dir: Path | None, timed_out: bool, exit_code: int | None, duration: float,
                 overflow: str | None) -> RunResult:
        try:
            container.reload()
            oom = bool(container.attrs["State"].get("OOMKilled"))
            stdout = _tail(container.logs(stdout=True, stderr=False), limits.log_tail_bytes)
            stderr = _tail(container.logs(stdout=False, stderr=True), limits.log_tail_bytes)
        except docker.errors.APIError as exc:
            raise SandboxError(f"collecting results of {container.name} failed: {exc}") from exc
        files: dict[str, int] = {}
        if out_dir is not None:
            overflow = overflow or _scan_out(out_dir, limits, files)
            if overflow:
                _empty_dir(out_dir)  # the results are void; free the host disk now
                files = {}
        return RunResult(exit_code=exit_code, timed_out=timed_out, oom_killed=oom and not timed_out,
                         duration_s=round(duration, 4), stdout_tail=stdout, stderr_tail=stderr,
                         out_files=files, out_dir=out_dir, out_overflow=overflow, limits=limits)


def _container_spec(image: str, command: list[str], limits: SandboxLimits, out_dir: Path | None,
                    in_dir: Path | None, mounts: Sequence[Mount], env: Mapping[str, str],
                    lease: GpuLease | None, labels: Mapping[str, str], name: str) -> dict:
    """The full hardened profile, as keyword arguments of `containers.create`."""
    binds = [docker.types.Mount(m.target, str(Path(m.source).resolve()), type="bind", read_only=m.read_only)
             for m in mounts]
    if out_dir is not None:
        binds.append(docker.types.Mount("/out", str(out_dir.resolve()), type="bind", read_only=False))
    if in_dir is not None:
        binds.append(docker.types.Mount("/in", str(in_dir.resolve()), type="bind", read_only=True))
    log_bytes = max(1 << 20, 16 * limits.log_tail_bytes)  # json-file overhead is large for short lines
    inodes = max(4096, limits.tmp_bytes // 1024)
    return dict(
        image=image, command=list(command), name=name, labels=dict(labels),
        environment=dict(env), user=f"{limits.uid}:{limits.uid}", hostname="sandbox",
        network_mode="none", read_only=True, mounts=binds,
        tmpfs={"/tmp": f"rw,nosuid,nodev,size={limits.tmp_bytes},nr_inodes={inodes},mode=1777"},
        cap_drop=["ALL"], security_opt=["no-new-privileges"], privileged=False,
        pids_limit=limits.pids, mem_limit=limits.memory_bytes, memswap_limit=limits.memory_bytes,
        nano_cpus=int(limits.cpus * 1e9), shm_size=limits.shm_bytes, ipc_mode="private",
        ulimits=[docker.types.Ulimit(name="fsize", soft=limits.fsize_bytes, hard=limits.fsize_bytes),
                 docker.types.Ulimit(name="nofile", soft=limits.nofile, hard=limits.nofile),
                 docker.types.Ulimit(name="core", soft=0, hard=0)],
        log_config=docker.types.LogConfig(type="json-file", config={"max-size": str(log_bytes), "max-file": "2"}),
        device_requests=[lease.device_request()] if lease else [],
        stdin_open=False, tty=False, detach=True,
    )


def _kill(container: docker.models.containers.Container) -> None:
    try:
        container.kill()
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:  # 409: already exited between the timeout and the kill
        log.debug("sandbox.kill_skipped", container=container.name, error=str(exc))


def _tail(data: bytes, limit: int) -> str:
    return data[-limit:].decode("utf-8", errors="replace")


def _human(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} B"


def _prepare_out_dir(out_dir: Path, uid: int) -> None:
    """Make /out writable for the candidate's uid (chown as root, else world-writable)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(out_dir, uid, uid)
        out_dir.chmod(0o755)
    else:
        out_dir.chmod(0o777)


def _empty_dir(path: Path) -> None:
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            try:
                os.unlink(entry.path)
            except OSError as exc:
                log.warning("sandbox.out_cleanup_failed", path=entry.path, error=str(exc))


def _scan_out(out_dir: Path, limits: SandboxLimits, files: dict[str, int] | None = None) -> str | None:
    """Walk /out without following links; fill `files` with regular files; the cap broken, if any."""
    entries = total = 0
    stack = [out_dir]
    while stack:
        current = stack.pop()
        try:
            it = os.scandir(current)
        except OSError:
            continue
        with it:
            for entry in it:
                entries += 1
                if entries > limits.out_max_files:
                    return f"wrote more than {limits.out_max_files} files to /out"
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    stack.append(Path(entry.path))
                elif stat.S_ISREG(st.st_mode):
                    total += st.st_size
                    if total > limits.out_max_bytes:
                        return f"wrote more than {_human(limits.out_max_bytes)} to /out"
                    if files is not None:
                        files[Path(entry.path).relative_to(out_dir).as_posix()] = st.st_size
    return None


class _OutWatcher:
    """Polls /out while the container runs and kills it when a cap is broken (host disk safety)."""

    def __init__(self, out_dir: Path, limits: SandboxLimits, container: docker.models.containers.Container) -> None:
        self._out_dir, self._limits, self._container = out_dir, limits, container
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="evobox-out-watcher", daemon=True)
        self.overflow: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(_WATCH_INTERVAL_S):
            overflow = _scan_out(self._out_dir, self._limits)
            if overflow:
                self.overflow = overflow
                _kill(self._container)
                return


def read_out_file(out_dir: Path, relpath: str, max_bytes: int) -> bytes:
    """Read a result file: a regular file, reached without following any symlink, at most `max_bytes`.

    FIFOs and devices are refused before any read (opened non-blocking), so a hostile
    candidate cannot make the engine hang or read host files through a link.
    """
    parts = PurePosixPath(relpath).parts
    if not parts or PurePosixPath(relpath).is_absolute() or any(p in ("..", ".") for p in parts):
        raise OutFileError(f"bad result path {relpath!r}")
    nofollow = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    dir_fd = os.open(out_dir, nofollow | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            try:
                next_fd = os.open(part, nofollow | os.O_DIRECTORY, dir_fd=dir_fd)
            except OSError as exc:
                raise OutFileError(f"result path {relpath!r}: {part!r} is not a plain directory ({exc.strerror})") from exc
            os.close(dir_fd)
            dir_fd = next_fd
        try:
            fd = os.open(parts[-1], nofollow | os.O_NONBLOCK, dir_fd=dir_fd)
        except FileNotFoundError as exc:
            raise OutFileError(f"result file {relpath!r} is missing") from exc
        except OSError as exc:  # ELOOP: a symlink
            raise OutFileError(f"result file {relpath!r} refused: {exc.strerror}") from exc
    finally:
        os.close(dir_fd)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OutFileError(f"result file {relpath!r} is not a regular file")
        if st.st_size > max_bytes:
            raise OutFileError(f"result file {relpath!r} is {st.st_size} bytes, over the {max_bytes} byte cap")
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise OutFileError(f"result file {relpath!r} is over the {max_bytes} byte cap")
    return data
