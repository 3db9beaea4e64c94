"""/out as a filesystem whose size the kernel caps: one per container run, mounted by the engine.

A bind-mounted host directory has no quota: a candidate filled the host disk through /out
with paths past PATH_MAX that a path-string scanner could not see, and with
`fallocate(FALLOC_FL_KEEP_SIZE)` blocks that `st_size` and RLIMIT_FSIZE never count. So the
engine (root) mounts a fresh filesystem per run in a private staging dir (mode 0700 under
`staging_root()`) and bind-mounts that into the container at /out:

- caps up to `limits.out_tmpfs_max_bytes`: tmpfs (`size=`, `nr_inodes=`); its pages are RAM,
  charged to the container's memory cgroup while it runs;
- larger caps (DiscoPOP's GPU settings bring back 20-40 GB of weights): a sparse ext4 image on
  the staging disk, loop-mounted; it takes only the disk that is written, and the engine
  refuses the run when the disk has less free space than the image could grow to.

Both are mounted nosuid,nodev,noexec and owned by the candidate's uid, both count reserved
blocks, so no trick writes more than the filesystem's size. The size is the cap plus a slack,
so that a candidate that tries to write past the cap leaves more than the cap behind, which
the engine's read-back (`outcopy`) reports as an overflow instead of a silent ENOSPC.

After the run the engine copies the accepted files out (`outcopy`) and `close()` detaches the
filesystem (lazy umount: the kernel frees it once no process uses it) and removes the staging
dir, in `finally`. A staging dir is named after its owner process (pid and start time, as in
owner.py), so `reap_outfs` removes one only when that process is gone, whatever lock dir the
reaping process uses.

Mounting needs root over the mount namespace the engine binds from. On a rootless engine that
is the engine's own user+mount namespace, which its user owns: the tmpfs is mounted there
(`userns.call_in`, the namespace of `Engine.ns_pid`), below a staging root in the user's home
(`~/.local/share/evobox/outfs`; /run is copied up in that namespace), and the read-back runs
there too, as that namespace's root, because the candidate's files belong to its uid. A loop
mount needs real root (a loop device is no namespace's), so a rootless engine refuses caps
over `out_tmpfs_max_bytes` with a clear error: raise that setting to take /out in RAM, or run
on the root engine.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Callable
from enum import Enum
from typing import TypeVar
from pathlib import Path

import structlog

from engine.sandbox.engine import Engine
from engine.sandbox.errors import SandboxError
from engine.sandbox.limits import SandboxLimits
from engine.sandbox.outcopy import OutCopy, copy_out
from engine.sandbox.owner import Owner, current, process_start
from engine.sandbox.reaper import run_alive
from engine.sandbox.userns import call_in

log = structlog.get_logger()
T = TypeVar("T")

_MOUNT_TIMEOUT_S = 60
_SLACK_MIN = 1 << 20
_INODE_SLACK = 16  # the root dir, and room to see that a candidate went past the file cap
_IMAGE = "fs.img"
_MOUNT_POINT = "mnt"


class OutFsKind(Enum):
    TMPFS = "tmpfs"
    EXT4_IMAGE = "ext4-image"


def staging_root(engine: Engine | None = None) -> Path:
    """Where /out filesystems are mounted: $EVOBOX_OUTFS_DIR, else /var/lib/evobox/outfs (root
    engine) or ~/.local/share/evobox/outfs (rootless engine)."""
    if os.environ.get("EVOBOX_OUTFS_DIR"):
        return Path(os.environ["EVOBOX_OUTFS_DIR"])
    if engine is not None and engine.rootless:
        return Path.home() / ".local" / "share" / "evobox" / "outfs"
    return Path("/var/lib/evobox/outfs")


def fs_bytes(limits: SandboxLimits) -> int:
    """The filesystem's size: the cap plus a slack in which going past the cap shows."""
    return limits.out_max_bytes + max(_SLACK_MIN, limits.out_max_bytes // 16)


def fs_kind(limits: SandboxLimits) -> OutFsKind:
    return OutFsKind.TMPFS if limits.out_max_bytes <= limits.out_tmpfs_max_bytes else OutFsKind.EXT4_IMAGE


class OutFs:
    """One mounted, size-capped /out; `close()` (idempotent) unmounts it and removes its staging dir."""

    def __init__(self, run_id: str, limits: SandboxLimits, owner: Owner | None = None,
                 engine: Engine | None = None) -> None:
        self.kind = fs_kind(limits)
        self._ns = _namespace(engine)
        if self._ns is None and os.geteuid() != 0:
            raise SandboxError("mounting a size-capped /out needs root, or a rootless engine of your own (make rootless)")
        if self._ns is not None and self.kind is OutFsKind.EXT4_IMAGE:
            raise SandboxError(
                f"/out of {limits.out_max_bytes} bytes is over out_tmpfs_max_bytes ({limits.out_tmpfs_max_bytes}) "
                "and would need a loop-mounted ext4 image, which a rootless engine cannot mount: raise "
                "sandbox.out_tmpfs_max_bytes to take it as a tmpfs (RAM), or use the root engine")
        owner = owner or current()
        self._dir = _run_dir(run_id, engine) / f"{owner.pid}-{owner.start}-{secrets.token_hex(8)}"
        self._dir.mkdir(mode=0o700)
        self.path = self._dir / _MOUNT_POINT
        self.path.mkdir(mode=0o700)
        try:
            if self.kind is OutFsKind.TMPFS:
                _in_ns(self._ns, _mount_tmpfs, self.path, limits)
            else:
                _mount_image(self._dir / _IMAGE, self.path, limits)
        except BaseException:
            self.close()
            raise
        log.debug("sandbox.outfs_mounted", path=str(self.path), kind=self.kind.value, size=fs_bytes(limits))

    def __enter__(self) -> OutFs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def copy_out(self, dest: Path, limits: SandboxLimits) -> OutCopy:
        """Read /out back into `dest` (`outcopy`), where the mount is and as whom can read it."""
        return _in_ns(self._ns, copy_out, self.path, dest, limits)

    def close(self) -> None:
        _remove(self._dir, self._ns)


def reap_outfs(lock_dir: Path | None = None, engine: Engine | None = None) -> int:
    """Unmount and remove the staging dirs whose owner process is gone (its engine died)."""
    root = staging_root(engine)
    ns = _namespace(engine)
    if (ns is None and os.geteuid() != 0) or not root.is_dir():
        return 0
    reaped = 0
    for run_dir in root.iterdir():
        try:
            stagings = list(run_dir.iterdir())
        except FileNotFoundError:  # another engine reaped it just now
            continue
        doomed = [staging for staging in stagings if _dead(staging, run_dir.name, lock_dir)]
        reaped += sum(_remove(staging, ns) for staging in doomed)
        if len(doomed) == len(stagings):
            _rmdir(run_dir)
    if reaped:
        log.info("sandbox.outfs_reaped", count=reaped)
    return reaped


def _namespace(engine: Engine | None) -> int | None:
    """The pid whose namespaces a rootless engine binds from; None for a root engine."""
    if engine is None or not engine.rootless:
        return None
    if engine.ns_pid is None:
        raise SandboxError(f"rootless engine at {engine.url}: cannot find its namespace (no rootlesskit "
                           "child_pid beside the socket, no single dockerd of yours in a user namespace)")
    return engine.ns_pid


def _in_ns(ns: int | None, fn: Callable[..., T], *args: object) -> T:
    """fn(*args) here (root engine) or in the rootless engine's namespaces, as their root."""
    return fn(*args) if ns is None else call_in(ns, fn, *args)


def _dead(staging: Path, run_id: str, lock_dir: Path | None) -> bool:
    """`<pid>-<start>-<token>` names its owner, checked against the process table; a dir named
    before owners were (a bare token) falls back on its run's lock."""
    pid, start, _token = (staging.name.split("-", 2) + ["", ""])[:3]
    if pid.isdigit() and start.isdigit():
        return process_start(int(pid)) != int(start)
    return not run_alive(run_id, lock_dir)


def _run_dir(run_id: str, engine: Engine | None) -> Path:
    """The run's staging dir, below a root that no one but its owner may enter (the mounts are candidates')."""
    root = staging_root(engine)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    root.chmod(0o700)
    path = root / run_id
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def _mount_tmpfs(target: Path, limits: SandboxLimits) -> None:
    uid = limits.uid
    options = (f"size={fs_bytes(limits)},nr_inodes={limits.out_max_files + _INODE_SLACK},mode=0700,"
               f"uid={uid},gid={uid},nosuid,nodev,noexec")
    _run(["mount", "-t", "tmpfs", "-o", options, "evobox-out", str(target)], "mounting the /out tmpfs")


def _mount_image(image: Path, target: Path, limits: SandboxLimits) -> None:
    size = fs_bytes(limits)
    free = shutil.disk_usage(image.parent).free
    if free < size:
        raise SandboxError(f"/out of {limits.out_max_bytes} bytes needs up to {size} bytes at {image.parent}, "
                           f"only {free} free")
    with open(image, "xb") as handle:
        handle.truncate(size)  # sparse: disk is used only as the candidate writes
    uid = limits.uid
    _run(["mkfs.ext4", "-q", "-F", "-b", "4096", "-m", "0", "-O", "^has_journal,^resize_inode",
          "-N", str(limits.out_max_files + _INODE_SLACK),
          "-E", f"root_owner={uid}:{uid},lazy_itable_init=1,nodiscard", str(image)], "formatting the /out image")
    _run(["mount", "-t", "ext4", "-o", "loop,nosuid,nodev,noexec,noatime", str(image), str(target)],
         "mounting the /out image")
    (target / "lost+found").rmdir()  # mkfs's, root's: not the candidate's output
    target.chmod(0o700)


def _remove(staging: Path, ns: int | None = None) -> int:
    """Detach the mount (if any) and delete the staging dir; 1 if it is gone."""
    mount_point = staging / _MOUNT_POINT
    try:
        _in_ns(ns, _unmount, mount_point)
    except SandboxError as exc:
        log.error("sandbox.outfs_left", path=str(mount_point), error=str(exc))
        return 0
    shutil.rmtree(staging, ignore_errors=True)
    return int(not staging.exists())


def _unmount(mount_point: Path) -> None:
    if os.path.ismount(mount_point):
        _run(["umount", "--lazy", str(mount_point)], "unmounting /out")


def _rmdir(path: Path) -> None:
    try:
        path.rmdir()
    except FileNotFoundError:
        pass
    except OSError as exc:  # not empty: a mount that would not go, kept for the next reap
        log.warning("sandbox.outfs_run_dir_kept", path=str(path), error=str(exc))


def _run(cmd: list[str], what: str) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_MOUNT_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxError(f"{what} failed: {exc}") from exc
    if proc.returncode != 0:
        raise SandboxError(f"{what} failed: {proc.stderr.strip() or f'exit {proc.returncode}'}")
