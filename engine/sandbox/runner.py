"""One hardened container run: create, start, wait with a timeout, kill, collect, remove.

The hardening lives here in code (never a pass-through dict): no network, read-only root,
size-capped tmpfs, no capabilities, no-new-privileges, pids/memory/CPU/file-size limits, no
log kept by dockerd, and no environment beyond the image's ENV and what the caller passes on
purpose. Five pieces live in modules of their own:

- each run leases a host uid no concurrent candidate has (`uids`), and the container runs
  as it;
- every container runs under evobox's seccomp profile (`seccomp`) and sees no GPU but the
  ones leased for it (`gpu`: NVIDIA_VISIBLE_DEVICES is the leased indices or `void`);
- /out is a filesystem the kernel caps, mounted per run (`outfs`); after the run the engine
  reads it back with fd-relative calls and copies what it accepts into the caller's
  `out_dir` (`outcopy`); the container never sees a host directory it can write;
- stdout and stderr each come back as their own capped tail, read from an attach made
  before the start (`streams`);
- PID 1 of the container is the engine's init (`boxinit`), which ends the container at its
  deadline even if the engine died; the engine still kills at its own timeout.

The container is removed and /out unmounted in `finally` (killing a client does not stop a
container).
"""

from __future__ import annotations

import enum
import math
import os
import stat
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import docker
import docker.errors
import docker.types
import requests.exceptions
import structlog

from engine.sandbox import boxinit
from engine.sandbox.client import connect
from engine.sandbox.engine import Engine, describe, msgqueue_share, share_quotas
from engine.sandbox.errors import OutFileError, SandboxError
from engine.sandbox.gpu import NO_GPU, GpuLease, GpuLeaser
from engine.sandbox.limits import SandboxLimits, human_size
from engine.sandbox import owner
from engine.sandbox.naming import ContainerSpec, Stage
from engine.sandbox.outfs import OutFs, reap_outfs
from engine.sandbox.reaper import RunLock, check_run_id, reap, remove_container
from engine.sandbox.seccomp import profile_json
from engine.sandbox.streams import Stream, StreamTails
from engine.sandbox.uids import lease_uid

__all__ = ["ContainerSpec", "Mount", "OutFileError", "Outcome", "RunResult", "Sandbox", "SandboxError", "Stage",
           "read_out_file"]

log = structlog.get_logger()

# The init's deadline is this much past the engine's timeout, so a live engine kills first.
_INIT_GRACE_S = 5.0
_STREAMS_WAIT_S = 10.0  # after the exit, for the last bytes of stdout/stderr to arrive
_INIT_SOURCE = str(Path(boxinit.__file__).resolve())
_INIT_PYTHON = "/usr/bin/python3"  # the base image's, under every runtime image


@dataclass(frozen=True)
class Mount:
    """An extra bind mount (e.g. the LLM gateway's socket dir at /run/llm, read-only)."""

    source: Path
    target: str
    read_only: bool = True


class Outcome(str, enum.Enum):
    """How a container's run ended, in the order they are decided: a killed run is a timeout
    whatever its exit code, a run the kernel killed for memory is OOM, a clean exit whose /out
    broke a cap (or could not be read back) is refused, any other non-zero exit crashed."""

    OK = "ok"
    TIMEOUT = "timeout"  # the engine's (or the init's) deadline killed it
    OOM = "oom"  # the memory cgroup killed it
    OUTPUT_REFUSED = "output-refused"  # /out over a cap, or unreadable: nothing of it is kept (fail closed)
    CRASHED = "crashed"  # exited non-zero


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
    out_overflow: str | None = None  # set when /out broke a cap or could not be read back (fail closed)
    limits: SandboxLimits = field(default_factory=SandboxLimits)

    @property
    def outcome(self) -> Outcome:
        if self.timed_out:
            return Outcome.TIMEOUT
        if self.oom_killed:
            return Outcome.OOM
        if self.out_overflow:
            return Outcome.OUTPUT_REFUSED
        if self.exit_code != 0:
            return Outcome.CRASHED
        return Outcome.OK

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    def failure_reason(self) -> str:
        """One line for the archive and the repair prompt; '' when the run was ok."""
        outcome = self.outcome
        if outcome is Outcome.TIMEOUT:
            return f"timed out after {self.limits.timeout_s:g}s"
        if outcome is Outcome.OOM:
            return f"out of memory ({human_size(self.limits.memory_bytes)})"
        if outcome is Outcome.OUTPUT_REFUSED:
            return self.out_overflow or ""
        if outcome is Outcome.CRASHED:
            lines = [ln for ln in self.stderr_tail.splitlines() if ln.strip()]
            return f"exit {self.exit_code}: {lines[-1].strip()[:300] if lines else '(no stderr)'}"
        return ""


class Sandbox:
    """Runs containers for one run id; holds the run's lock until `close()`.

    Everything it creates is labelled with this process as owner (naming.py, owner.py). Opening
    takes the run's lock, then removes what dead owners left, this run's killed predecessor
    included, before anything new can start."""

    # The engine's later writes to a running container's /in reach it (a bind mount of the host
    # dir): a domain may signal a started container through /in. A remote node's sandbox ships
    # /in once at start (engine/cluster) and says False.
    live_inputs: bool = True

    def __init__(self, run_id: str, *, client: docker.DockerClient | None = None,
                 gpu_lock_dir: Path | None = None, lock_dir: Path | None = None) -> None:
        self.run_id = check_run_id(run_id)
        self.owner = owner.current()
        self._client = connect(client)
        self.engine = describe(self._client, getattr(self._client, "evobox_source", "given client"))
        log.info("sandbox.engine", url=self.engine.url, source=self.engine.source, rootless=self.engine.rootless,
                 cgroup_limits=self.engine.cgroup_limits)
        self._lock_dir = lock_dir or self.engine.lock_dir()
        share_quotas(self.engine)
        self._lock = RunLock(run_id, lock_dir)
        self._gpus = GpuLeaser(gpu_lock_dir)
        self._closed = False
        reap(self._client, self._lock_dir)  # leftovers of dead processes, this run's earlier ones included
        reap_outfs(self._lock_dir, self.engine)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove what this sandbox made, release the run's lock, and reap every dead owner's leftovers."""
        if self._closed:
            return
        self._closed = True
        try:
            reap(self._client, self._lock_dir, run_id=self.run_id, owner=self.owner)
        finally:
            self._lock.release()
        reap(self._client, self._lock_dir)
        reap_outfs(self._lock_dir, self.engine)

    def work(self, stage: Stage, candidate_id: str | None = None) -> ContainerSpec:
        """Name and labels of this run's work (`labels()` also labels candidate images)."""
        return ContainerSpec(run_id=self.run_id, owner=self.owner, stage=stage, candidate_id=candidate_id)

    def run(self, image: str, command: list[str], *, limits: SandboxLimits = SandboxLimits(),
            out_dir: Path | None = None, in_dir: Path | None = None, mounts: Sequence[Mount] = (),
            env: Mapping[str, str] = {}, labels: Mapping[str, str] = {}, stage: Stage = Stage.EXEC,
            candidate_id: str | None = None) -> RunResult:
        """Run `command` in `image` under `limits`; never pulls; always removes the container.

        With `out_dir`, the container gets a fresh size-capped /out, and afterwards `out_dir`
        (emptied first) holds the regular files it left there, unless /out broke a cap. The
        name and the run/candidate/stage/owner labels come from `work(stage, candidate_id)`;
        `labels` only adds to them.
        """
        if self._closed:
            raise SandboxError(f"sandbox of run {self.run_id} is closed")
        work = self.work(stage, candidate_id)
        uid = lease_uid(limits.uid_range, self._lock_dir, self.engine)  # a uid no concurrent candidate shares
        limits = limits.model_copy(update={"uid": uid.uid})
        lease = None
        try:
            lease = self._gpus.lease(limits.gpus, wait_s=limits.gpu_wait_s) if limits.gpus else None
            with ExitStack() as stack:
                outfs = stack.enter_context(OutFs(self.run_id, limits, self.owner, self.engine)) if out_dir is not None else None
                spec = _container_spec(image, command, limits, outfs.path if outfs else None, in_dir, mounts, env,
                                       lease, {**labels, **work.labels()}, work.container_name(), self.engine)
                result = self._run(spec, limits)
                if outfs is not None and out_dir is not None:
                    copied = outfs.copy_out(out_dir, limits)
                    result.out_files, result.out_overflow, result.out_dir = copied.files, copied.overflow, out_dir
                return result
        finally:
            if lease is not None:
                lease.release()
            uid.release()

    def _run(self, spec: dict, limits: SandboxLimits) -> RunResult:
        container = None
        streams = None
        try:
            try:
                container = self._client.containers.create(**spec)
            except docker.errors.ImageNotFound as exc:
                raise SandboxError(f"image {spec['image']} is not present (images are built locally, never pulled)") from exc
            except docker.errors.APIError as exc:
                raise SandboxError(f"docker create failed: {exc}") from exc
            streams = StreamTails(self._client, container, limits.log_tail_bytes)
            started = time.monotonic()
            try:
                container.start()
            except docker.errors.APIError as exc:
                raise SandboxError(f"docker start failed: {exc}") from exc
            timed_out, exit_code = self._wait(container, limits.timeout_s)
            duration = time.monotonic() - started
            if exit_code == boxinit.DEADLINE_EXIT and duration >= limits.timeout_s:
                timed_out, exit_code = True, None  # the init's deadline came before the engine's kill
            return self._collect(container, limits, streams, timed_out, exit_code, duration)
        finally:
            if streams is not None:
                streams.close()
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
                 streams: StreamTails, timed_out: bool, exit_code: int | None, duration: float) -> RunResult:
        try:
            container.reload()
            oom = bool(container.attrs["State"].get("OOMKilled"))
        except docker.errors.APIError as exc:
            raise SandboxError(f"collecting results of {container.name} failed: {exc}") from exc
        tails = streams.tails(_STREAMS_WAIT_S)
        return RunResult(exit_code=exit_code, timed_out=timed_out, oom_killed=oom and not timed_out,
                         duration_s=round(duration, 4), stdout_tail=tails[Stream.STDOUT],
                         stderr_tail=tails[Stream.STDERR], out_files={}, out_dir=None, limits=limits)


def _container_spec(image: str, command: list[str], limits: SandboxLimits, out_fs: Path | None,
                    in_dir: Path | None, mounts: Sequence[Mount], env: Mapping[str, str],
                    lease: GpuLease | None, labels: Mapping[str, str], name: str,
                    engine: Engine | None = None) -> dict:
    """The full hardened profile, as keyword arguments of `containers.create`.

    `out_fs` is the run's mounted, size-capped /out filesystem (`outfs`), never a plain host dir.
    """
    binds = [docker.types.Mount(m.target, str(Path(m.source).resolve()), type="bind", read_only=m.read_only)
             for m in mounts]
    binds.append(docker.types.Mount(boxinit.INIT_PATH, _INIT_SOURCE, type="bind", read_only=True))
    if out_fs is not None:
        binds.append(docker.types.Mount("/out", str(out_fs), type="bind", read_only=False))
    if in_dir is not None:
        binds.append(docker.types.Mount("/in", str(in_dir.resolve()), type="bind", read_only=True))
    inodes = max(4096, limits.tmp_bytes // 1024)
    cgroups = engine is None or engine.cgroup_limits
    return dict(
        image=image, command=list(command), name=name, labels=dict(labels),
        entrypoint=[_INIT_PYTHON, "-I", "-S", boxinit.INIT_PATH, f"{limits.timeout_s + _INIT_GRACE_S:g}"],
        environment={**env, "NVIDIA_VISIBLE_DEVICES": lease.visible_devices if lease else NO_GPU},
        user=f"{limits.uid}:{limits.uid}", hostname="sandbox",
        network_mode="none", read_only=True, mounts=binds,
        tmpfs={"/tmp": f"rw,nosuid,nodev,size={limits.tmp_bytes},nr_inodes={inodes},mode=1777"},
        cap_drop=["ALL"], security_opt=["no-new-privileges", f"seccomp={profile_json()}"], privileged=False,
        **(_cgroup_limits(limits) if cgroups else {}), shm_size=limits.shm_bytes, ipc_mode="private",
        ulimits=[docker.types.Ulimit(name="fsize", soft=limits.fsize_bytes, hard=limits.fsize_bytes),
                 docker.types.Ulimit(name="nofile", soft=limits.nofile, hard=limits.nofile),
                 docker.types.Ulimit(name="core", soft=0, hard=0),
                 *([] if cgroups else _rlimits(limits)),
                 *([docker.types.Ulimit(name="msgqueue", soft=msgqueue_share(), hard=msgqueue_share())]
                   if engine is not None and engine.rootless else [])],
        log_config=docker.types.LogConfig(type="none"),  # streams are read from the attach (`streams`)
        device_requests=[lease.device_request()] if lease else [],
        stdin_open=False, tty=False, detach=True,
    )


def _cgroup_limits(limits: SandboxLimits) -> dict:
    """pids, memory (no swap) and CPU quota: the engine's cgroups, for the whole container."""
    return dict(pids_limit=limits.pids, mem_limit=limits.memory_bytes, memswap_limit=limits.memory_bytes,
                nano_cpus=int(limits.cpus * 1e9))


def _rlimits(limits: SandboxLimits) -> list[docker.types.Ulimit]:
    """What stands in for the cgroups an engine cannot apply (rootless on cgroup v1).

    - RLIMIT_NPROC = pids: the kernel counts it per uid (in the engine's user namespace), and the
      candidate's uid is its own (`uids`), so it caps the container's processes and threads as
      the pids cgroup did; a fork bomb stops with EAGAIN;
    - RLIMIT_DATA = memory: heap and private writable mappings, per process (no cgroup sums the
      processes, and tmpfs pages are not counted; /tmp, /dev/shm and /out have their own sizes);
      an allocation past it fails (MemoryError), nothing is OOM-killed;
    - RLIMIT_CPU = cpus x timeout: CPU seconds per process; no quota on the rate, the wall-clock
      deadline stays the bound on time.
    """
    cpu_s = math.ceil(limits.cpus * limits.timeout_s) + 1
    return [docker.types.Ulimit(name="nproc", soft=limits.pids, hard=limits.pids),
            docker.types.Ulimit(name="data", soft=limits.memory_bytes, hard=limits.memory_bytes),
            docker.types.Ulimit(name="cpu", soft=cpu_s, hard=cpu_s)]


def _kill(container: docker.models.containers.Container) -> None:
    try:
        container.kill()
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:  # 409: already exited between the timeout and the kill
        log.debug("sandbox.kill_skipped", container=container.name, error=str(exc))


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
