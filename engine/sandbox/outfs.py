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
reaping process uses. Mounting needs root; rootless engines are issue 15.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from enum import Enum
from pathlib import Path

import structlog

from engine.sandbox.errors import SandboxError
from engine.sandbox.limits import SandboxLimits
from engine.sandbox.owner import Owner, current, process_start
from engine.sandbox.reaper import run_alive

log = structlog.get_logger()

_MOUNT_TIMEOUT_S = 60
_SLACK_MIN = 1 << 20
_INODE_SLACK = 16  # the root dir, and room to see that a candidate went past the file cap
_IMAGE = "fs.img"
_MOUNT_POINT = "mnt"


class OutFsKind(Enum):
    TMPFS = "tmpfs"
    EXT4_IMAGE = "ext4-image"


def staging_root() -> Path:
    """Where /out filesystems are mounted: $EVOBOX_OUTFS_DIR or /var/lib/evobox/outfs (root only)."""
    return Path(os.environ.get("EVOBOX_OUTFS_DIR", "/var/lib/evobox/outfs"))


def fs_bytes(limits: SandboxLimits) -> int:
    """The filesystem's size: the cap plus a slack in which going past the cap shows."""
    return limits.out_max_bytes + max(_SLACK_MIN, limits.out_max_bytes // 16)


def fs_kind(limits: SandboxLimits) -> OutFsKind:
    return OutFsKind.TMPFS if limits.out_max_bytes <= limits.out_tmpfs_max_bytes else OutFsKind.EXT4_IMAGE


class OutFs:
    """One mounted, size-capped /out; `close()` (idempotent) unmounts it and removes its staging dir."""

    def __init__(self, run_id: str, limits: SandboxLimits, owner: Owner | None = None) -> None:
        if os.geteuid() != 0:
            raise SandboxError("the engine needs root to mount a size-capped /out; rootless support is issue 15")
        self.kind = fs_kind(limits)
        owner = owner or current()
        self._dir = _run_dir(run_id) / f"{owner.pid}-{owner.start}-{secrets.token_hex(8)}"
        self._dir.mkdir(mode=0o700)
        self.path = self._dir / _MOUNT_POINT
        self.path.mkdir(mode=0o700)
        try:
            if self.kind is OutFsKind.TMPFS:
                _mount_tmpfs(self.path, limits)
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

    def close(self) -> None:
        _remove(self._dir)


def reap_outfs(lock_dir: Path | None = None) -> int:
    """Unmount and remove the staging dirs whose owner process is gone (its engine died)."""
    root = staging_root()
    if os.geteuid() != 0 or not root.is_dir():
        return 0
    reaped = 0
    for run_dir in root.iterdir():
        try:
            stagings = list(run_dir.iterdir())
        except FileNotFoundError:  # another engine reaped it just now
            continue
        doomed = [staging for staging in stagings if _dead(staging, run_dir.name, lock_dir)]
        reaped += sum(_remove(staging) for staging in doomed)
        if len(doomed) == len(stagings):
            _rmdir(run_dir)
    if reaped:
        log.info("sandbox.outfs_reaped", count=reaped)
    return reaped


def _dead(staging: Path, run_id: str, lock_dir: Path | None) -> bool:
    """`<pid>-<start>-<token>` names its owner, checked against the process table; a dir named
    before owners were (a bare token) falls back on its run's lock."""
    pid, start, _token = (staging.name.split("-", 2) + ["", ""])[:3]
    if pid.isdigit() and start.isdigit():
        return process_start(int(pid)) != int(start)
    return not run_alive(run_id, lock_dir)


def _run_dir(run_id: str) -> Path:
    """The run's staging dir, below a root that no one but root may enter (the mounts are candidates')."""
    root = staging_root()
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


def _remove(staging: Path) -> int:
    """Detach the mount (if any) and delete the staging dir; 1 if it is gone."""
    mount_point = staging / _MOUNT_POINT
    if os.path.ismount(mount_point):
        try:
            _run(["umount", "--lazy", str(mount_point)], "unmounting /out")
        except SandboxError as exc:
            log.error("sandbox.outfs_left", path=str(mount_point), error=str(exc))
            return 0
    shutil.rmtree(staging, ignore_errors=True)
    return int(not staging.exists())


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
