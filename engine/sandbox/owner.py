"""Which process owns a container or image, and whether that process still lives.

Every container and candidate image carries its owner's identity as labels: host (hostname and
machine id), boot id, pid namespace, pid and the process's start time (field 22 of
/proc/<pid>/stat, in clock ticks since boot). Any process that talks to the same Docker engine
reads the same labels and the same process table, whatever its EVOBOX_LOCK_DIR or private /tmp,
so every reaper on the machine reaches the same verdict. The start time makes a reused pid look
dead; the boot id makes every owner of an earlier boot dead. An owner whose pid we cannot check
(another host, another pid namespace) is never judged dead.
"""

from __future__ import annotations

import enum
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

HOST_LABEL = "evobox.owner.host"
BOOT_LABEL = "evobox.owner.boot"
PIDNS_LABEL = "evobox.owner.pidns"
PID_LABEL = "evobox.owner.pid"
START_LABEL = "evobox.owner.start"


class Liveness(enum.Enum):
    ALIVE = "alive"
    DEAD = "dead"
    UNKNOWN = "unknown"  # no owner labels, or an owner this machine's process table cannot see


@dataclass(frozen=True)
class Owner:
    """One process's identity, as written on what it creates."""

    host: str
    boot: str
    pidns: str
    pid: int
    start: int

    def labels(self) -> dict[str, str]:
        return {HOST_LABEL: self.host, BOOT_LABEL: self.boot, PIDNS_LABEL: self.pidns,
                PID_LABEL: str(self.pid), START_LABEL: str(self.start)}

    @classmethod
    def from_labels(cls, labels: Mapping[str, str] | None) -> Owner | None:
        """The owner named by `labels`; None when they carry no (or a malformed) owner."""
        labels = labels or {}
        try:
            return cls(host=labels[HOST_LABEL], boot=labels[BOOT_LABEL], pidns=labels[PIDNS_LABEL],
                       pid=int(labels[PID_LABEL]), start=int(labels[START_LABEL]))
        except (KeyError, ValueError):
            return None

    def liveness(self) -> Liveness:
        """Checked against this machine's live process table."""
        host, boot, pidns = _machine()
        if self.host != host:
            return Liveness.UNKNOWN  # another machine sharing the engine: its own reaper decides
        if self.boot != boot:
            return Liveness.DEAD  # this machine has rebooted since: every process of then is gone
        if self.pidns != pidns:
            return Liveness.UNKNOWN  # a pid of another namespace means nothing in ours
        return Liveness.ALIVE if process_start(self.pid) == self.start else Liveness.DEAD


@cache
def _machine() -> tuple[str, str, str]:
    """(host, boot id, pid namespace) of this process; fixed for its lifetime."""
    machine_id = ""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            machine_id = Path(path).read_text().strip()
            break
        except OSError:
            continue
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    pidns = str(os.stat("/proc/self/ns/pid").st_ino)
    return f"{socket.gethostname()}/{machine_id}", boot, pidns


def current() -> Owner:
    """This process (the pid is read each time: a forked child is another owner)."""
    host, boot, pidns = _machine()
    pid = os.getpid()
    start = process_start(pid)
    if start is None:
        raise RuntimeError(f"/proc/{pid}/stat is unreadable: evobox needs Linux /proc")
    return Owner(host=host, boot=boot, pidns=pidns, pid=pid, start=start)


def process_start(pid: int) -> int | None:
    """Start time (clock ticks since boot) of a live process, None if there is none (or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may hold spaces and parentheses: the fields after it follow the last ')'
    fields = stat[stat.rindex(")") + 2:].split()
    state, start = fields[0], fields[19]  # fields 3 and 22
    return None if state in ("Z", "X") else int(start)
