"""A real local Ray cluster on loopback, for the tests, the scaling benchmark and trying cluster mode on one machine: a head and workers, each a
separate `ray start --block` process in its own session, so that stopping (or killing) a node
ends exactly the processes it started and nothing else on the machine.

Token authentication is on (a token file of its own, never ~/.ray), the dashboard is off, and
every node advertises 127.0.0.2: loopback, but not the literal 127.0.0.1 or `localhost`, which
`ray start` replaces with the host's own address. The nodes' environment holds no LLM key: the
tests check that none reaches them.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_KEY_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")


@dataclass
class NodeSpec:
    name: str  # also a custom resource of 1 on the node, so tests can find it
    cpus: float = 1
    gpus: int = 0
    head: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)


def _free_port() -> int:
    with socket.socket() as sock:  # a port free on every loopback address
        sock.bind(("127.0.0.2", 0))
        return sock.getsockname()[1]


class LocalCluster:
    """`with LocalCluster(root, [NodeSpec("head", head=True), NodeSpec("w1"), ...]) as c: c.address`."""

    def __init__(self, root: Path, nodes: list[NodeSpec]):
        self.root = root
        self.nodes = {spec.name: spec for spec in nodes}
        self.port = _free_port()
        self.address = f"127.0.0.2:{self.port}"
        self.token_path = root / "auth_token"

    def client_env(self) -> dict[str, str]:
        """What a driver (evobox) needs to reach this cluster: token auth on loopback."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(self.token_path),
                "RAY_USAGE_STATS_ENABLED": "0"}

    def _node_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _KEY_VARS}
        return {**env, **self.client_env(), "PYTHONPATH": str(REPO),
                "RAY_health_check_period_ms": "500", "RAY_health_check_failure_threshold": "4",
                "RAY_health_check_initial_delay_ms": "500"}

    def __enter__(self) -> LocalCluster:
        self.root.mkdir(parents=True, exist_ok=True)
        self.token_path.write_text(secrets.token_hex(32))
        self.token_path.chmod(0o600)
        try:
            for spec in sorted(self.nodes.values(), key=lambda s: not s.head):  # one at a time: a loaded
                self.start(spec.name)  # 2-core machine times out raylets that start together
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, name: str, *, wait: bool = True) -> None:
        """Start (or restart) one node; with `wait`, until the cluster counts it alive."""
        spec = self.nodes[name]
        ray = str(Path(sys.executable).parent / "ray")
        args = [ray, "start", "--block", "--node-ip-address", "127.0.0.2", "--num-cpus", str(spec.cpus),
                "--num-gpus", str(spec.gpus), "--resources", json.dumps({name: 1}), "--disable-usage-stats"]
        if spec.head:
            args += ["--head", "--port", str(self.port), "--include-dashboard", "false",
                     "--temp-dir", str(self.root / "ray")]
        else:
            args += ["--address", self.address]
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the node
        spec.process = subprocess.Popen(args, env=self._node_env(), stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        if wait:
            self.wait_alive([name])

    def wait_alive(self, names: list[str], timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for name in names:
                if self.nodes[name].process.poll() is not None:  # type: ignore[union-attr]
                    raise RuntimeError(f"ray node {name} exited: {(self.root / f'{name}.log').read_text()[-2000:]}")
            if set(names) <= set(self.node_ids()):
                return
            time.sleep(0.5)
        raise RuntimeError(f"ray nodes {names} did not all join within {timeout_s:g}s")

    def node_ids(self) -> dict[str, str]:
        """Ray node id of every live node, by name (asked in a child process: this one stays unconnected)."""
        script = ("import ray, json; ray.init(address=%r, logging_level='ERROR'); "
                  "print(json.dumps({k: n['NodeID'] for n in ray.nodes() if n['Alive'] for k in n['Resources']}))"
                  % self.address)
        done = subprocess.run([sys.executable, "-c", script], env={**os.environ, **self.client_env()},
                              capture_output=True, text=True, timeout=60)
        try:
            found = json.loads(done.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {}
        return {name: node for name, node in found.items() if name in self.nodes}

    def kill(self, name: str) -> None:
        """SIGKILL every process of one node (its session): a machine that died."""
        spec = self.nodes[name]
        if spec.process is not None and spec.process.poll() is None:
            os.killpg(spec.process.pid, signal.SIGKILL)
            spec.process.wait(timeout=30)

    def pids(self, name: str) -> list[int]:
        """The live processes of one node (every process in its session)."""
        spec = self.nodes[name]
        if spec.process is None:
            return []
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getsid(int(entry.name)) == spec.process.pid:
                        found.append(int(entry.name))
                except OSError:
                    continue
        return found

    def close(self) -> None:
        """Stop the workers, then the head: SIGTERM to each node's session, SIGKILL what is left."""
        ordered = sorted(self.nodes.values(), key=lambda s: s.head)
        for spec in ordered:
            if spec.process is not None and spec.process.poll() is None:
                os.killpg(spec.process.pid, signal.SIGTERM)
        for spec in ordered:
            if spec.process is None:
                continue
            try:
                spec.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            for pid in self.pids(spec.name):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
