"""Which Docker engine evobox talks to, found the way Docker's own tools find it, and what it enforces.

Order (first match wins): `DOCKER_HOST` as set (TLS variables included, never second-guessed);
then the user's rootless socket, `$XDG_RUNTIME_DIR/docker.sock` (or `/run/user/<uid>` and
`~/.docker/run`, where `make rootless` puts it when XDG_RUNTIME_DIR is unset); then the root
engine's `/var/run/docker.sock`. A run logs the one it uses (`sandbox.engine`).

A rootless engine (Docker's rootless mode; Podman's Docker API is refused, see `describe`) runs as the user, in a user
namespace that maps namespace uid 0 to the user and namespace uids 1..N to the user's subuid
block. Three things differ there, and the sandbox adapts (`runner`, `uids`, `outfs`):
- candidate uids are leased inside that block (`uid_map`), so two users never share one;
- /out is mounted inside the engine's namespaces (`ns_pid`), where mounting a tmpfs is allowed;
- on cgroup v1 the engine cannot apply memory/pids/CPU cgroups (`cgroup_limits` False): the
  runner sets per-process rlimits instead (see `runner._rlimits`);
- the kernel charges a namespace uid's per-uid quotas (inotify instances and watches, POSIX
  message-queue bytes) to the namespace's owner too, so all of one user's candidates draw on that
  user's quotas: `share_quotas` caps each namespace uid at 1/QUOTA_SHARES of them (the
  namespace's own sysctls; RLIMIT_MSGQUEUE per container in `runner`), so one candidate cannot
  take them all from its concurrent siblings.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

import docker

from engine.sandbox.errors import SandboxError

ROOT_SOCKET = "/var/run/docker.sock"
STATE_DIR = "dockerd-rootless"  # rootlesskit's state dir, beside the socket (holds child_pid)
QUOTA_SHARES = 8  # a rootless candidate gets this fraction of its user's per-uid kernel quotas
_SHARED_SYSCTLS = ("max_inotify_instances", "max_inotify_watches")  # /proc/sys/user, per user namespace


@dataclass(frozen=True)
class Engine:
    """One engine: where it is, why it was chosen, and what the sandbox must do differently."""

    url: str
    source: str
    rootless: bool = False
    cgroup_limits: bool = True
    ns_pid: int | None = None                       # a process in the rootless engine's user+mount ns
    uid_map: tuple[tuple[int, int, int], ...] = ()  # (ns first, host first, count) lines of that ns

    def host_uid(self, ns_uid: int) -> int | None:
        """The host uid a container uid runs as (itself on a root engine), None when unmapped."""
        if not self.rootless:
            return ns_uid
        for inside, outside, count in self.uid_map:
            if inside <= ns_uid < inside + count:
                return outside + ns_uid - inside
        return None

    def lock_dir(self) -> Path | None:
        """A rootless engine's locks are its user's alone (None: the machine-wide default)."""
        if not self.rootless:
            return None
        path = runtime_dir() / "evobox-locks"
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path


def msgqueue_share() -> int:
    """RLIMIT_MSGQUEUE for one rootless candidate: its share of the user's own."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_MSGQUEUE)
    return max(8192, (soft if soft != resource.RLIM_INFINITY else 819200) // QUOTA_SHARES)


def share_quotas(engine: Engine) -> None:
    """Cap every uid of a rootless engine's namespace at 1/QUOTA_SHARES of the user's inotify quotas."""
    from engine.sandbox.userns import call_in  # late: userns forks, engine is imported everywhere
    if engine.rootless and engine.ns_pid is not None:
        limits = {name: max(1, int(Path(f"/proc/sys/user/{name}").read_text()) // QUOTA_SHARES)
                  for name in _SHARED_SYSCTLS}
        call_in(engine.ns_pid, _write_user_sysctls, limits)


def _write_user_sysctls(limits: dict[str, int]) -> None:
    for name, value in limits.items():
        Path(f"/proc/sys/user/{name}").write_text(str(value))


def runtime_dir() -> Path:
    """$XDG_RUNTIME_DIR, else /run/user/<uid> when it is ours, else ~/.docker/run (the rootless socket's dir)."""
    env = os.environ.get("XDG_RUNTIME_DIR")
    if env:
        return Path(env)
    run_user = Path(f"/run/user/{os.getuid()}")
    if run_user.is_dir() and run_user.stat().st_uid == os.getuid():
        return run_user
    return Path.home() / ".docker" / "run"


def find_url() -> tuple[str, str]:
    """(url, where it came from): DOCKER_HOST, the rootless socket, or the root socket."""
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"], "DOCKER_HOST"
    rootless = runtime_dir() / "docker.sock"
    if rootless.is_socket():
        return f"unix://{rootless}", "rootless socket"
    return f"unix://{ROOT_SOCKET}", "root socket"


def client_for(url: str, source: str, timeout: int) -> docker.DockerClient:
    if source == "DOCKER_HOST":
        return docker.from_env(timeout=timeout)  # honours DOCKER_TLS_VERIFY / DOCKER_CERT_PATH as Docker does
    return docker.DockerClient(base_url=url, timeout=timeout)


def describe(client: docker.DockerClient, source: str = "client") -> Engine:
    """What `client`'s engine is: rootless or not, whether it applies cgroup limits, its namespace.

    Podman's Docker API (4.3, Debian 12) is refused: it reads `seccomp=` as a file name, rejects
    `nr_inodes` on a tmpfs, claims memory and pids limits on a rootless cgroup v1 host, and its
    crun cannot start containers on this hybrid cgroup layout (measured 2026-12-05)."""
    info = client.info()
    socket = _socket_path(client)
    url = f"unix://{socket}" if socket else str(client.api.base_url)  # docker-py shows a socket as http+docker://localhost
    if _is_podman(client):
        raise SandboxError(f"the engine at {url} is Podman, whose Docker API evobox does not support yet "
                           "(seccomp profile, tmpfs options, cgroups): use rootless Docker (make rootless)")
    rootless = any("rootless" in opt for opt in info.get("SecurityOptions") or [])
    cgroups = bool(info.get("MemoryLimit")) and bool(info.get("PidsLimit")) and info.get("CgroupDriver") != "none"
    if not rootless:
        return Engine(url=url, source=source, cgroup_limits=cgroups)
    pid = _ns_pid(socket)
    return Engine(url=url, source=source, rootless=True, cgroup_limits=cgroups, ns_pid=pid,
                  uid_map=_uid_map(pid) if pid else ())


def _is_podman(client: docker.DockerClient) -> bool:
    components = client.version().get("Components") or []
    return any("podman" in str(c.get("Name", "")).lower() for c in components)


def _socket_path(client: docker.DockerClient) -> Path | None:
    adapter = client.api.get_adapter(client.api.base_url)
    path = getattr(adapter, "socket_path", None)
    return Path(path) if path else None


def _ns_pid(socket: Path | None) -> int | None:
    """A process in the engine's namespaces: rootlesskit's child_pid file beside the socket, else
    the dockerd of this user that runs in a user namespace other than ours."""
    if socket is not None:
        try:
            pid = int((socket.parent / STATE_DIR / "child_pid").read_text())
            if _in_other_userns(pid):
                return pid
        except (OSError, ValueError):
            pass
    found = [pid for pid in _own_pids() if _comm(pid) == "dockerd" and _in_other_userns(pid)]
    namespaces = {(_ns(pid, "user"), _ns(pid, "mnt")) for pid in found}
    return found[0] if len(namespaces) == 1 else None


def _ns(pid: int, kind: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return ""


def _own_pids() -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == os.getuid():
                    pids.append(int(name))
            except OSError:
                continue
    return pids


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _in_other_userns(pid: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")
    except OSError:
        return False


def _uid_map(pid: int) -> tuple[tuple[int, int, int], ...]:
    lines = Path(f"/proc/{pid}/uid_map").read_text().split("\n")
    return tuple(tuple(int(f) for f in line.split()) for line in lines if line.strip())  # type: ignore[misc]
