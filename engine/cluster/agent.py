"""The node agent: one Ray actor per node that runs a candidate's containers with that node's
own Docker engine, under the same hardened Sandbox as on one machine (runner, reaper, owner
labels, uid leases, capped /out, GPU leases: engine/sandbox).

It receives recipes, not images (engine/cluster/images.py), /in as a tar, read-only inputs by
content hash (shipped once per node and verified), and the LLM mount as "the relay": the agent
serves a NodeRelay (engine/cluster/relay.py) on a socket of its own and mounts that instead. It
sends back the RunResult and /out as a tar capped at `wire_max_bytes` (after the sandbox's own
/out caps). The agent holds no key and no budget; it never sees the head's files.

The sandbox's run id is the run's, suffixed with the node: the run lock is per node, so two
agents on one machine (a test cluster) do not take each other's lock, and the reaper of every
node still removes what a dead agent left.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import structlog

from engine.cluster.images import ImageRecipe, materialize
from engine.cluster.relay import NodeRelay
from engine.cluster.wire import WireError, pack, tree_digest, unpack
from engine.llm.httpserver import ServerLimits
from engine.sandbox import owner
from engine.sandbox.images import ImageBuilder
from engine.sandbox.limits import SandboxLimits
from engine.sandbox.naming import ContainerSpec, Stage
from engine.sandbox.runner import Mount, RunResult, Sandbox

log = structlog.get_logger()

LLM_MOUNT = "llm"  # a mount spec's kind: the node's relay socket dir
TREE_MOUNT = "tree"  # a mount spec's kind: a read-only tree shipped by content hash
_WORKDIR_PREFIX = "evobox-node-"  # + the agent's pid and start time: a dead agent's dir is swept


def sweep_workdirs() -> None:
    """Remove the work directories of agents that died (a node killed mid-run) on this machine."""
    for path in Path(tempfile.gettempdir()).glob(f"{_WORKDIR_PREFIX}*"):
        try:
            pid, start = (int(part) for part in path.name[len(_WORKDIR_PREFIX):].split("-")[:2])
        except ValueError:
            continue
        if owner.process_start(pid) != start:
            shutil.rmtree(path, ignore_errors=True)


def node_run_id(run_id: str, node_id: str) -> str:
    return f"{run_id[:110]}.node-{node_id[:12]}"


class NodeAgent:
    """Created by the Ray executor on each node it places an evaluation on (num_cpus=0, pinned)."""

    def __init__(self, run_id: str, node_id: str, bridge: Any | None, relay_limits: ServerLimits,
                 wire_max_bytes: int, mount_max_bytes: int):
        self.node_id = node_id
        sweep_workdirs()
        me = owner.current()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{_WORKDIR_PREFIX}{me.pid}-{me.start}-"))
        self.sandbox = Sandbox(node_run_id(run_id, node_id))
        self.images = ImageBuilder(progress=lambda line: log.info("images.progress", line=line))
        self.relay = NodeRelay(self.workdir / "llm", bridge, relay_limits).__enter__() if bridge is not None else None
        self._wire_max, self._mount_max = wire_max_bytes, mount_max_bytes
        self._built: dict[str, tuple[str, str]] = {}
        self._trees: dict[str, Path] = {}
        self._build_lock = threading.Lock()
        self._tree_lock = threading.Lock()

    def info(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "pid": os.getpid(), "workdir": str(self.workdir)}

    def work(self, stage: Stage, candidate_id: str | None) -> ContainerSpec:
        return self.sandbox.work(stage, candidate_id)

    def materialize(self, recipe: ImageRecipe) -> tuple[str, str]:
        """(tag, content id) of the recipe's image on this node, built and verified once per agent."""
        key = recipe.key()
        with self._build_lock:
            if key not in self._built:
                self._built[key] = materialize(self.images, recipe)
                log.info("cluster.image_ready", tag=self._built[key][0], id=self._built[key][1][:19])
            return self._built[key]

    def has_tree(self, digest: str) -> bool:
        with self._tree_lock:
            return digest in self._trees

    def put_tree(self, digest: str, data: bytes) -> None:
        """Keep a read-only input tree; its content must hash to `digest` (never trust the name)."""
        target = self.workdir / "trees" / digest
        with self._tree_lock:
            if digest in self._trees:
                return
            unpack(data, target, self._mount_max)
            if tree_digest(target) != digest:
                shutil.rmtree(target)
                raise WireError(f"a shipped input tree does not hash to {digest[:16]}")
            self._trees[digest] = target

    def run(self, recipe: ImageRecipe, command: list[str], limits: SandboxLimits, in_tar: bytes | None,
            want_out: bool, mounts: list[tuple[str, str, str]], env: dict[str, str], labels: dict[str, str],
            stage: Stage, candidate_id: str | None) -> tuple[RunResult, bytes | None]:
        """One hardened container run; /out comes back as a capped tar."""
        _, image_id = self.materialize(recipe)
        with tempfile.TemporaryDirectory(dir=self.workdir, prefix="run-") as tmp:
            in_dir = out_dir = None
            if in_tar is not None:
                in_dir = Path(tmp) / "in"
                unpack(in_tar, in_dir, self._wire_max)
            if want_out:
                out_dir = Path(tmp) / "out"
                out_dir.mkdir()
            result = self.sandbox.run(image_id, command, limits=limits, out_dir=out_dir, in_dir=in_dir,
                                      mounts=[self._mount(*spec) for spec in mounts], env=env, labels=labels,
                                      stage=stage, candidate_id=candidate_id)
            out_tar = pack(out_dir, self._wire_max) if out_dir is not None else None
        result.out_dir = None
        return result, out_tar

    def _mount(self, kind: str, digest: str, target: str) -> Mount:
        if kind == LLM_MOUNT:
            if self.relay is None:
                raise WireError("an LLM mount was asked of a node agent started without the gateway relay")
            return Mount(self.relay.socket_dir, target, read_only=True)
        with self._tree_lock:
            source = self._trees.get(digest)
        if kind != TREE_MOUNT or source is None:
            raise WireError(f"unknown mount {kind}:{digest[:16]} (the tree was not shipped to this node)")
        return Mount(source, target, read_only=True)

    def close(self) -> None:
        """Stop the relay, remove this agent's containers and files. Idempotent."""
        try:
            if self.relay is not None:
                self.relay.close()
            self.sandbox.close()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)
