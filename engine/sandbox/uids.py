"""A host uid of its own for every candidate container that runs at the same time.

Why: the kernel keeps many quotas per uid, machine-wide: inotify instances and watches, POSIX
message-queue bytes, pipe buffer pages, RLIMIT_NPROC. Candidates that share one uid share them,
so one candidate can exhaust them and starve another (measured: one took every inotify
instance and all mqueue space). And the old shared uid, 65534, is the host's `nobody`: host
daemons run as it and the root filesystem reserves blocks for it (resuid=65534).

A lease takes the lowest uid of the configured range that
- no passwd or group entry of the host names (so no host account, file ACL or daemon has it),
- lies in no /etc/subuid or /etc/subgid block (rootless containers' processes run as those),
- no live process on the host runs as (catches a container that outlived its killed engine,
  and a process leasing from another lock dir), and
- whose lock file `uid-<N>.lock` in the machine-wide lock dir this process can flock (held by
  every other live lease, in this process or another evobox process on the machine).
The container then runs as `uid:uid`. The flock goes on `release()` or when the process dies.

On a rootless engine the container's uids are namespace uids that the kernel maps onto the
user's subuid block (`Engine.uid_map`), and the configured range (host uids far above any
block) cannot be reached. There a lease takes a namespace uid of `ROOTLESS_NS_RANGE` (inside
every subuid block of 65536, above image accounts, below `nobody`), and every check above is
made on the host uid it maps to. Two users' blocks are disjoint (subuid blocks never overlap),
so their candidates never share a host uid, and the locks live in the user's own lock dir.
"""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Iterable
from pathlib import Path

from engine.flock import try_lock
from engine.sandbox.engine import Engine
from engine.sandbox.errors import UidUnavailableError
from engine.sandbox.reaper import lock_dir

SUBID_FILES = (Path("/etc/subuid"), Path("/etc/subgid"))
ROOTLESS_NS_RANGE = (10_000, 60_000)


class UidLease:
    """One uid, held until `release()` (or the end of a `with` block)."""

    def __init__(self, uid: int, fd: int) -> None:
        self.uid = uid
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> UidLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lease_uid(uid_range: tuple[int, int], directory: Path | None = None, engine: Engine | None = None) -> UidLease:
    """Lease the lowest free uid of `uid_range` (inclusive), or of ROOTLESS_NS_RANGE on a rootless
    `engine`; the uid is the one the container runs as. UidUnavailableError when none is free."""
    rootless = engine is not None and engine.rootless
    first, last = ROOTLESS_NS_RANGE if rootless else uid_range
    locks = lock_dir(directory)
    taken = [] if rootless else _subid_blocks(SUBID_FILES)  # rootless: the subuid block is where they must be
    running = _running_uids()
    for uid in range(first, last + 1):
        host = engine.host_uid(uid) if engine is not None else uid
        if host is None or host in running or _host_owns(host) or any(lo <= host < hi for lo, hi in taken):
            continue
        fd = try_lock(locks / f"uid-{host}.lock")
        if fd is not None:
            return UidLease(uid, fd)
    where = "the rootless engine's subuid block (make shared-host gives each user 65536)" if rootless \
        else "widen sandbox.uid_range"
    raise UidUnavailableError(
        f"no free uid in {first}-{last}: every one is leased, in use, unmapped or a host account "
        f"(locks in {locks}); {where}")


def _host_owns(uid: int) -> bool:
    """True when a passwd or group entry of the host has this id (through NSS: files, LDAP...)."""
    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(uid)
            return True
        except KeyError:
            pass
    return False


def _subid_blocks(paths: Iterable[Path]) -> list[tuple[int, int]]:
    """[start, end) of every subordinate id block (`name:start:count` lines)."""
    blocks = []
    for path in paths:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            parts = line.strip().split(":")
            if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                blocks.append((int(parts[1]), int(parts[1]) + int(parts[2])))
    return blocks


def _running_uids() -> set[int]:
    """Real, effective, saved and fs uids and gids of every process this host shows in /proc."""
    found: set[int] = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
                for line in status:
                    if line.startswith(("Uid:", "Gid:")):
                        found.update(int(field) for field in line.split()[1:])
        except OSError:  # the process ended while we looked
            continue
    return found
